/**
 * config.sh → a typed Config with defaults. Validation happens here, once:
 * everything downstream trusts these values (and still quotes them).
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { UserError, UserErrors } from '../errors.js';
import { ConfigSyntaxError, parseShellAssignments, type Assignment } from './parse-shell-assignments.js';
import { systemDirectoryProblem, SYSTEM_DIRECTORY_HINT } from './system-directories.js';
import { WAVE_PATTERN } from '../protocol/rollout-file.js';

export interface Config {
  /** Where the per-machine SFTP chroots live (absolute). */
  chrootDir: string;
  /** Host name or address the clients use to reach the SFTP server: the first of REMOTE_IP. */
  remoteIp: string;
  /** Every server of REMOTE_IP, in the order the clients try them (remoteHosts[0] === remoteIp). */
  remoteHosts: string[];
  remotePort: number;
  /** Seconds a client waits for the SFTP connection. */
  timeout: number;
  /** Only evaluate (dry-build) locally, never build. */
  noLocalBuild: boolean;
  /** Extra arguments the clients pass to every nixos-rebuild call. */
  rebuildArgs: string[];
  /** systemd OnCalendar of the client's update timer. */
  updateCalendar: string;
  /**
   * systemd RandomizedDelaySec of the update timer ("0": off). Unset in
   * config.sh: the interval of updateCalendar (pollSpreadOf), so a fleet's
   * polls spread over the whole interval.
   */
  updateRandomDelay: string;
  /** systemd OnCalendar of the optional reboot timer. */
  rebootCalendar: string;
  /** TCP port of the client's listen-update socket. */
  listenPort: number;
  /** SSHD_MAX_STARTUPS: sshd's MaxStartups (`begin:rate:full`); null: sized for the fleet (render/sshd-sizing.ts). */
  sshdMaxStartups: string | null;
  /** SSHD_LOGIN_GRACE_TIME: sshd's LoginGraceTime in seconds; null: sized for the fleet. */
  sshdLoginGraceTime: number | null;
  /** Logs kept per machine on the server (status/prune-logs.ts); 0: all. */
  logKeep: number;
  /** Seconds during which a client's run retries SFTP sessions that cannot connect, all its sessions together (0: no retry). */
  connectRetry: number;
  /** `bento trigger`: domain appended to a system name to make the machine's host name ('' : none). */
  triggerDomain: string;
  /** `bento trigger`: per-system address overrides, `host` or `host:port` (IPv6 in brackets), by system name. */
  triggerAddresses: Record<string, string>;
  /** Every system is prebuilt (PREBUILT=1): machines download the system the server built and never evaluate. */
  prebuilt: boolean;
  /** The server's Nix signing key (secret); its public key is next to it, with `.pub` appended. */
  signingKey: string;
  /** Where deploy copies prebuilt closures instead of the chroots (a Nix store URL); '' for the chroots. */
  cacheStore: string;
  /** Where the machines substitute those closures from; set with cacheStore. */
  cacheUrl: string;
  /**
   * Staged rollouts: the waves in order, each a list of system names or
   * shell globs; undefined: every changed system is published at once.
   */
  rolloutWaves?: string[][];
  /** Seconds a wave may take to report success before the rollout halts. */
  rolloutWait: number;
  /** Bytes a machine's log may take: clients cut theirs to fit, the server deletes bigger ones, status skips them. */
  logSizeLimit: number;
}

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

type KeySpec = {
  /** Converts and checks the raw value; throws a message on bad input. */
  parse: (raw: string) => unknown;
  field: keyof Config;
  required?: boolean;
};

export const DEFAULTS: Omit<Config, 'chrootDir' | 'remoteIp' | 'remoteHosts'> = {
  remotePort: 22,
  timeout: 20,
  noLocalBuild: false,
  rebuildArgs: [],
  updateCalendar: '*:0/15',
  // The interval of the default calendar: see pollSpreadOf.
  updateRandomDelay: '15min',
  rebootCalendar: '04:00',
  listenPort: 51337,
  sshdMaxStartups: null,
  sshdLoginGraceTime: null,
  logKeep: 100,
  connectRetry: 60,
  triggerDomain: '',
  triggerAddresses: {},
  prebuilt: false,
  signingKey: '/var/lib/bento/signing-key',
  cacheStore: '',
  cacheUrl: '',
  rolloutWait: 2 * 3600,
  logSizeLimit: 16 * 1024 * 1024,
};

/** Servers REMOTE_IP may list: each one a client cannot reach costs it up to TIMEOUT seconds per attempt. */
export const MAX_REMOTE_HOSTS = 8;

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const CALENDAR = /^[A-Za-z0-9*:/,.~ +-]+$/;
const TIME_SPAN = /^[0-9]+(?:\.[0-9]+)?(?: ?[a-z]+)?(?: [0-9]+(?:\.[0-9]+)?(?: ?[a-z]+)?)*$/;
/** The pattern of a system name (fleet/names.ts SYSTEM_NAME; config/ comes before fleet/, a test keeps them equal). */
export const SYSTEM_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
/** sshd's MaxStartups: `begin` or `begin:rate:full` (sshd_config(5)). */
const MAX_STARTUPS = /^([0-9]{1,6})(?::([0-9]{1,3}):([0-9]{1,6}))?$/;
const SECONDS_PER_UNIT: Record<string, number> = { '': 1, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600, d: 86400 };

/** `ROLLOUT_WAVES="t470,router web-* *"`: waves separated by spaces, members by commas. */
export function parseRolloutWaves(raw: string): string[][] | undefined {
  const waves = raw.split(/[ \t]+/).filter((wave) => wave !== '');
  if (waves.length === 0) return undefined;
  return waves.map((wave) => {
    const members = wave.split(',');
    for (const member of members) {
      if (!WAVE_PATTERN.test(member)) throw new Error(`has ${JSON.stringify(member)}, which is neither a system name nor a glob of them (waves are separated by spaces, their members by commas)`);
    }
    return members;
  });
}

/** A duration in seconds: `90`, `30min`, `2h`, `1d` (one number and one unit). */
export function parseDuration(raw: string): number {
  const match = /^([0-9]+) ?([a-z]*)$/.exec(raw.trim());
  const unit = match ? SECONDS_PER_UNIT[match[2] as string] : undefined;
  if (!match || unit === undefined || Number(match[1]) === 0) throw new Error(`is not a duration (e.g. 90, 30min, 2h, 1d), got ${JSON.stringify(raw)}`);
  return Number(match[1]) * unit;
}

function integerIn(min: number, max: number, what: string) {
  return (raw: string): number => {
    if (!/^[0-9]+$/.test(raw)) throw new Error(`must be a number (${what}), got ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${raw}`);
    return n;
  };
}

function flag(raw: string): boolean {
  if (raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new Error(`must be 0 or 1, got ${JSON.stringify(raw)}`);
}

/**
 * A URL of a Nix store or binary cache (`file:///srv/cache`, `s3://bucket?region=eu-west-1`,
 * `https://cache.example.org`). The machines read it from their update.sh
 * (docs/protocol.md §11), so quotes, `$`, backslashes, backticks, spaces and
 * control characters are refused.
 */
function storeUrl(raw: string): string {
  if (raw === '') return '';
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^\s'"`$\\\x00-\x1f\x7f]+$/.test(raw)) {
    throw new Error(`is not a store URL such as file:///srv/cache, s3://bucket or https://cache.example.org (no spaces, quotes, $ or backslashes): ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** A size in bytes, with an optional binary suffix: 4096, 512K, 16M, 1G. */
function byteSize(min: number, max: number) {
  const units: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
  return (raw: string): number => {
    const match = /^([0-9]+)([KMG]?)$/.exec(raw);
    if (!match) throw new Error(`must be a size in bytes, optionally with K, M or G (e.g. 16M), got ${JSON.stringify(raw)}`);
    const bytes = Number(match[1]) * (units[match[2] ?? ''] ?? 1);
    if (bytes < min || bytes > max) throw new Error(`must be between ${min / 1024}K and ${max / 1024 ** 3}G, got ${raw}`);
    return bytes;
  };
}

function pattern(re: RegExp, what: string) {
  return (raw: string): string => {
    if (!re.test(raw)) throw new Error(`is not ${what}: ${JSON.stringify(raw)}`);
    return raw;
  };
}

function isHost(raw: string): boolean {
  return HOST.test(raw) || (raw.includes(':') && IPV6.test(raw));
}

/** REMOTE_IP: one server, or several in the order the clients try them ("a b" or "a,b"). */
function parseRemoteHosts(raw: string): string[] {
  const hosts = raw.split(/[\s,]+/).filter((host) => host !== '');
  if (hosts.length === 0) throw new Error('is empty');
  for (const host of hosts) if (!isHost(host)) throw new Error(`is not a host name or IP address: ${JSON.stringify(host)}`);
  const repeated = hosts.find((host, index) => hosts.indexOf(host) !== index);
  if (repeated) throw new Error(`lists ${repeated} twice`);
  if (hosts.length > MAX_REMOTE_HOSTS) throw new Error(`lists ${hosts.length} servers; at most ${MAX_REMOTE_HOSTS}`);
  return hosts;
}

function parseMaxStartups(raw: string): string {
  const match = MAX_STARTUPS.exec(raw);
  if (!match) throw new Error(`must be begin or begin:rate:full (sshd's MaxStartups, e.g. 300:30:600), got ${JSON.stringify(raw)}`);
  const begin = Number(match[1]);
  if (begin < 1) throw new Error(`must start with a number of at least 1, got ${JSON.stringify(raw)}`);
  if (match[2] === undefined) return raw;
  const rate = Number(match[2]);
  const full = Number(match[3]);
  // sshd refuses these itself (servconf.c), but only when it starts: say so now.
  if (rate < 1 || rate > 100) throw new Error(`rate must be between 1 and 100 (percent), got ${rate}`);
  if (full < begin) throw new Error(`full (${full}) must be at least begin (${begin})`);
  return raw;
}

/** TRIGGER_ADDRESSES: `name=host` or `name=host:port` pairs (IPv6 as [addr] or [addr]:port), separated by spaces or commas. */
function parseTriggerAddresses(raw: string): Record<string, string> {
  const addresses: Record<string, string> = {};
  for (const pair of raw.split(/[\s,]+/).filter((word) => word !== '')) {
    const equals = pair.indexOf('=');
    if (equals < 1) throw new Error(`must be name=host pairs, got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, equals);
    const address = pair.slice(equals + 1);
    if (!SYSTEM_NAME_PATTERN.test(name)) throw new Error(`names a system that cannot exist: ${JSON.stringify(name)}`);
    if (Object.hasOwn(addresses, name)) throw new Error(`gives ${name} twice`);
    const problem = triggerAddressProblem(address);
    if (problem) throw new Error(`${name}: ${problem}`);
    addresses[name] = address;
  }
  return addresses;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` → its parts; undefined when it is none of those. */
export function splitHostPort(address: string): { host: string; port: number | null } | undefined {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?$/.exec(address);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? null : Number(bracketed[2]) };
  const plain = /^([^:[\]]+)(?::([0-9]{1,5}))?$/.exec(address);
  if (plain && HOST.test(plain[1] as string)) return { host: plain[1] as string, port: plain[2] === undefined ? null : Number(plain[2]) };
  return undefined;
}

function triggerAddressProblem(address: string): string | undefined {
  const parts = splitHostPort(address);
  if (!parts) return `${JSON.stringify(address)} is not host, host:port, [IPv6] or [IPv6]:port`;
  if (parts.port !== null && (parts.port < 1 || parts.port > 65535)) return `port ${parts.port} is not a TCP port`;
  return undefined;
}

const KEYS: Record<string, KeySpec> = {
  CHROOT_DIR: {
    field: 'chrootDir',
    required: true,
    parse: (raw) => {
      if (!path.isAbsolute(raw)) throw new Error(`must be an absolute path, got ${JSON.stringify(raw)}`);
      if (/[\0\n\r]/.test(raw)) throw new Error('must not contain control characters');
      const normal = path.normalize(raw);
      const dir = normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
      // Refused here, not only by deploy: generate would render server setup that re-modes it.
      const system = systemDirectoryProblem(dir);
      if (system) throw new Error(`${dir} cannot hold SFTP chroots: ${system}; ${SYSTEM_DIRECTORY_HINT}`);
      return dir;
    },
  },
  REMOTE_IP: { field: 'remoteHosts', required: true, parse: parseRemoteHosts },
  REMOTE_PORT: { field: 'remotePort', parse: integerIn(1, 65535, 'a TCP port') },
  TIMEOUT: { field: 'timeout', parse: integerIn(1, 3600, 'seconds') },
  NOLOCALBUILD: { field: 'noLocalBuild', parse: flag },
  REBUILD_ARGS: {
    field: 'rebuildArgs',
    parse: (raw) => {
      if (/[\0\n\r]/.test(raw)) throw new Error('must not contain control characters');
      return raw.split(/[ \t]+/).filter((word) => word !== '');
    },
  },
  UPDATE_CALENDAR: { field: 'updateCalendar', parse: pattern(CALENDAR, 'a systemd calendar expression') },
  UPDATE_RANDOM_DELAY: { field: 'updateRandomDelay', parse: pattern(TIME_SPAN, 'a systemd time span (e.g. 0, 30min, 1h)') },
  REBOOT_CALENDAR: { field: 'rebootCalendar', parse: pattern(CALENDAR, 'a systemd calendar expression') },
  LISTEN_PORT: { field: 'listenPort', parse: integerIn(1, 65535, 'a TCP port') },
  SSHD_MAX_STARTUPS: { field: 'sshdMaxStartups', parse: parseMaxStartups },
  SSHD_LOGIN_GRACE_TIME: { field: 'sshdLoginGraceTime', parse: integerIn(0, 86400, 'seconds, 0: no limit') },
  LOG_KEEP: { field: 'logKeep', parse: integerIn(0, 1_000_000, 'logs, 0: keep all') },
  CONNECT_RETRY: { field: 'connectRetry', parse: integerIn(0, 3600, 'seconds, 0: no retry') },
  TRIGGER_DOMAIN: {
    field: 'triggerDomain',
    parse: (raw) => {
      const domain = raw.replace(/^\./, '');
      if (domain !== '' && !HOST.test(domain)) throw new Error(`is not a DNS domain: ${JSON.stringify(raw)}`);
      return domain.replace(/\.$/, '');
    },
  },
  TRIGGER_ADDRESSES: { field: 'triggerAddresses', parse: parseTriggerAddresses },
  PREBUILT: { field: 'prebuilt', parse: flag },
  SIGNING_KEY: {
    field: 'signingKey',
    parse: (raw) => {
      if (!path.isAbsolute(raw)) throw new Error(`must be an absolute path, got ${JSON.stringify(raw)}`);
      if (/[\0\n\r]/.test(raw)) throw new Error('must not contain control characters');
      return path.normalize(raw);
    },
  },
  CACHE_STORE: { field: 'cacheStore', parse: storeUrl },
  CACHE_URL: { field: 'cacheUrl', parse: storeUrl },
  ROLLOUT_WAVES: { field: 'rolloutWaves', parse: parseRolloutWaves },
  ROLLOUT_WAIT: { field: 'rolloutWait', parse: parseDuration },
  LOG_SIZE_LIMIT: { field: 'logSizeLimit', parse: byteSize(64 * 1024, 1024 ** 3) },
};

/** The keys config.sh understands, for documentation and warnings. */
export const CONFIG_KEYS = Object.keys(KEYS);

/**
 * Turns the text of config.sh into a Config. `fileLabel` names the file in
 * messages (`config.sh:3: …`).
 */
export function parseConfig(text: string, fileLabel = 'config.sh'): LoadedConfig {
  let assignments: Assignment[];
  try {
    assignments = parseShellAssignments(text);
  } catch (error) {
    if (error instanceof ConfigSyntaxError) throw new UserError(`${fileLabel}:${error.line}: ${error.reason}`);
    throw error;
  }

  const warnings: string[] = [];
  const problems: string[] = [];
  const values: Partial<Record<keyof Config, unknown>> = {};
  const seen = new Map<string, number>();

  for (const { key, value, line } of assignments) {
    const spec = KEYS[key];
    if (!spec) {
      warnings.push(`${fileLabel}:${line}: unknown key ${key} (ignored; known keys: ${CONFIG_KEYS.join(', ')})`);
      continue;
    }
    const previous = seen.get(key);
    if (previous !== undefined) warnings.push(`${fileLabel}:${line}: ${key} is set again (line ${previous} is overridden)`);
    seen.set(key, line);
    if (spec.required && value === '') {
      problems.push(`${fileLabel}:${line}: ${key} is empty`);
      continue;
    }
    try {
      values[spec.field] = spec.parse(value);
    } catch (error) {
      problems.push(`${fileLabel}:${line}: ${key} ${(error as Error).message}`);
    }
  }
  for (const [key, spec] of Object.entries(KEYS)) {
    if (spec.required && !seen.has(key)) problems.push(`${fileLabel}: ${key} is required (for example ${key}=${example(key)})`);
  }
  if (problems.length > 0) throw new UserErrors(problems);

  const config = { ...DEFAULTS, ...values } as Config;
  config.remoteIp = config.remoteHosts[0] as string;
  const interval = calendarInterval(config.updateCalendar);
  if (!seen.has('UPDATE_RANDOM_DELAY')) {
    config.updateRandomDelay = pollSpreadOf(config.updateCalendar);
  } else if (interval !== undefined && (timeSpanSeconds(config.updateRandomDelay) ?? 0) > interval.seconds) {
    warnings.push(
      `${fileLabel}:${seen.get('UPDATE_RANDOM_DELAY')}: UPDATE_RANDOM_DELAY=${config.updateRandomDelay} is longer than the interval of UPDATE_CALENDAR (${interval.span}): machines then poll less often than the calendar says`,
    );
  }
  problems.push(...combinationProblems(config, seen, fileLabel));
  if (problems.length > 0) throw new UserErrors(problems);
  return { config, warnings };
}

/** Settings that are valid alone but contradict each other. */
function combinationProblems(config: Config, seen: ReadonlyMap<string, number>, fileLabel: string): string[] {
  const at = (key: string) => `${fileLabel}:${seen.get(key) ?? '?'}`;
  const problems: string[] = [];
  if (config.prebuilt && config.noLocalBuild) {
    problems.push(`${at('PREBUILT')}: PREBUILT=1 needs the systems built here, but NOLOCALBUILD=1 (line ${seen.get('NOLOCALBUILD') ?? '?'}) only evaluates them: there would be nothing to hand over; remove one of them`);
  }
  if ((config.cacheStore === '') !== (config.cacheUrl === '')) {
    const [set, missing] = config.cacheStore ? ['CACHE_STORE', 'CACHE_URL'] : ['CACHE_URL', 'CACHE_STORE'];
    problems.push(`${at(set)}: ${set} needs ${missing}: CACHE_STORE is where deploy copies the prebuilt closures, CACHE_URL where the machines download them from`);
  }
  return problems;
}

/** The spread used when UPDATE_RANDOM_DELAY is unset, for polls every `calendar`. */
const FALLBACK_SPREAD = '1min';

/**
 * The random delay that spreads a fleet's polls over the whole interval of
 * `calendar`: the interval itself when bento can tell it (`*:0/15`,
 * `hourly`, …), else one minute. With systemd's FixedRandomDelay each
 * machine then keeps its own offset in that interval (the client module sets
 * it). A longer delay would not spread more: the next run is computed from
 * the last one, so the machine would skip calendar events.
 */
export function pollSpreadOf(calendar: string): string {
  return calendarInterval(calendar)?.span ?? FALLBACK_SPREAD;
}

const NAMED_CALENDARS: Record<string, [string, number]> = {
  minutely: ['1min', 60],
  hourly: ['1h', 3600],
  daily: ['1d', 86400],
  weekly: ['1w', 604800],
};

/**
 * The interval of a calendar that repeats evenly, for the forms bento
 * recognises: `minutely`, `hourly`, `daily`, `weekly`, `*:M/N` and
 * `*-*-* *:M/N[:SS]` (every N minutes, N dividing 60), `*:MM` (hourly).
 * Anything else: undefined.
 */
export function calendarInterval(calendar: string): { span: string; seconds: number } | undefined {
  const text = calendar.trim();
  const named = NAMED_CALENDARS[text.toLowerCase()];
  if (named) return { span: named[0], seconds: named[1] };
  const time = text.replace(/^\*-\*-\*\s+/, '');
  const everyN = /^\*:[0-9]{1,2}\/([0-9]{1,2})(?::[0-9]{1,2})?$/.exec(time);
  if (everyN) {
    const minutes = Number(everyN[1]);
    if (minutes >= 1 && minutes <= 60 && 60 % minutes === 0) return { span: minutes === 60 ? '1h' : `${minutes}min`, seconds: minutes * 60 };
    return undefined;
  }
  if (/^\*:[0-9]{1,2}(?::[0-9]{1,2})?$/.test(time)) return { span: '1h', seconds: 3600 };
  return undefined;
}

const TIME_UNITS: Record<string, number> = {
  us: 1e-6, usec: 1e-6, ms: 1e-3, msec: 1e-3,
  '': 1, s: 1, sec: 1, second: 1, seconds: 1,
  m: 60, min: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
  M: 2629800, month: 2629800, months: 2629800,
  y: 31557600, year: 31557600, years: 31557600,
};

/** Seconds of a systemd time span (systemd.time(7)); undefined when a unit is unknown. */
export function timeSpanSeconds(span: string): number | undefined {
  let total = 0;
  const parts = span.trim().matchAll(/([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)/g);
  for (const [, value, unit] of parts) {
    const factor = TIME_UNITS[unit ?? ''];
    if (factor === undefined) return undefined;
    total += Number(value) * factor;
  }
  return total;
}

function example(key: string): string {
  return key === 'CHROOT_DIR' ? '/home/chroot' : 'bento.example.org';
}

/** Reads `<fleetDir>/config.sh`. */
export async function loadConfig(fleetDir: string): Promise<LoadedConfig> {
  const file = path.join(fleetDir, 'config.sh');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(
        `${file} does not exist: ${fleetDir} is not a bento fleet directory`,
        'run `bento init` to create one, or set BENTO_DIR to your fleet directory',
      );
    }
    throw new UserError(`cannot read ${file}: ${(error as Error).message}`);
  }
  return parseConfig(text, path.relative(process.cwd(), file) || 'config.sh');
}
