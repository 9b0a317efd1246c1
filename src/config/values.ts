/**
 * The parsers of config.sh values: each converts a raw value and checks it,
 * or throws an Error whose message follows the key's name
 * (`config.sh:3: REMOTE_PORT must be a number …`). schema.ts says which key
 * uses which.
 */
import path from 'node:path';
import { SYSTEM_NAME } from '../protocol/system-name.js';
import { HOST_NAME, isHost, splitHostPort } from '../util/host-port.js';
import { systemDirectoryProblem, SYSTEM_DIRECTORY_HINT } from './system-directories.js';
import { WAVE_PATTERN } from '../protocol/rollout-file.js';
import { calendarProblem, TIME_UNITS } from './systemd-time.js';
import { parseRebootWindow, type RebootWindow } from './reboot-window.js';

/** Servers REMOTE_IP may list: each one a client cannot reach costs it up to TIMEOUT seconds per attempt. */
export const MAX_REMOTE_HOSTS = 8;

const TIME_SPAN = /^[0-9]+(?:\.[0-9]+)?(?: ?[a-z]+)?(?: [0-9]+(?:\.[0-9]+)?(?: ?[a-z]+)?)*$/;
/** sshd's MaxStartups: `begin` or `begin:rate:full` (sshd_config(5)). */
const MAX_STARTUPS = /^([0-9]{1,6})(?::([0-9]{1,3}):([0-9]{1,6}))?$/;
/** The units of a duration: whole seconds to days, from systemd's table. */
const DURATION_UNITS = new Set(['', 's', 'sec', 'm', 'min', 'h', 'hr', 'd']);

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
  const unit = match && DURATION_UNITS.has(match[2] as string) ? TIME_UNITS[match[2] as string] : undefined;
  if (!match || unit === undefined || Number(match[1]) === 0) throw new Error(`is not a duration (e.g. 90, 30min, 2h, 1d), got ${JSON.stringify(raw)}`);
  return Number(match[1]) * unit;
}

/** A whole number within [min, max]; `what` says what it counts. */
export function integerIn(min: number, max: number, what: string) {
  return (raw: string): number => {
    if (!/^[0-9]+$/.test(raw)) throw new Error(`must be a number (${what}), got ${JSON.stringify(raw)}`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${raw}`);
    return n;
  };
}

/** A range of uids, both ends included (SFTP_UIDS). */
export interface UidRange {
  first: number;
  last: number;
}

/**
 * SFTP_UIDS: `first-last`, above the system users (0–999), below 2^31 (the
 * kernel's devpts and other code take uids for signed numbers:
 * systemd's docs/UIDS-GIDS.md), and without 65534 (nobody) or 65535
 * (the 16-bit (uid_t) -1).
 */
export function uidRange(raw: string): UidRange {
  const match = /^([0-9]+)-([0-9]+)$/.exec(raw);
  if (!match) throw new Error(`must be a range of uids, first-last (e.g. 70000-99999), got ${JSON.stringify(raw)}`);
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (first < 1000) throw new Error(`must start at 1000 or above (below are the system users: the server's own packages), got ${raw}`);
  if (last > 2 ** 31 - 1) throw new Error(`must end at ${2 ** 31 - 1} or below, got ${raw}`);
  if (last < first) throw new Error(`must end at or after its start, got ${raw}`);
  if (first <= 65535 && last >= 65534) throw new Error(`must not hold 65534 (nobody) or 65535 (the 16-bit (uid_t) -1), got ${raw}`);
  return { first, last };
}

/** REBOOT_WINDOW: unset or empty, any time; else a window (reboot-window.ts). */
export function rebootWindow(raw: string): RebootWindow | undefined {
  return raw.trim() === '' ? undefined : parseRebootWindow(raw);
}

/** 0 (or empty) or 1. */
export function flag(raw: string): boolean {
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
export function storeUrl(raw: string): string {
  if (raw === '') return '';
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^\s'"`$\\\x00-\x1f\x7f]+$/.test(raw)) {
    throw new Error(`is not a store URL such as file:///srv/cache, s3://bucket or https://cache.example.org (no spaces, quotes, $ or backslashes): ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** NOTIFY_COMMAND: a shell command line, run by /bin/sh; one line (a unit's and a log's text stay readable). */
export function notifyCommand(raw: string): string {
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new Error('must be one line of shell, without control characters');
  return raw;
}

/**
 * NOTIFY_URL: where alerts are POSTed, http or https. It often carries a
 * token, so messages never quote it: only its scheme is named.
 */
export function notifyUrl(raw: string): string {
  if (raw === '') return '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not a URL (such as https://ntfy.example.org/bento)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`must be an http:// or https:// URL, not ${url.protocol}`);
  if (/[\s\x00-\x1f\x7f]/.test(raw)) throw new Error('must not hold spaces or control characters');
  return raw;
}

/** A size in bytes, with an optional binary suffix: 4096, 512K, 16M, 1G. */
export function byteSize(min: number, max: number) {
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

/**
 * A systemd OnCalendar expression, checked here with systemd's own rules
 * (systemd-time.ts): a typo such as `hourlyy` or `4am` would otherwise reach
 * every machine's timer, which systemd then refuses there. Spaces around it
 * are dropped.
 */
export function calendar(raw: string): string {
  const problem = calendarProblem(raw);
  if (problem) throw new Error(`is not a systemd calendar (${JSON.stringify(raw)}): ${problem}; see systemd.time(7), e.g. hourly, *:0/15, Mon..Fri 02:00`);
  return raw.trim();
}

/** A systemd time span, as RandomizedDelaySec takes it. */
export const timeSpan = pattern(TIME_SPAN, 'a systemd time span (e.g. 0, 30min, 1h)');

function absolutePath(raw: string): string {
  if (!path.isAbsolute(raw)) throw new Error(`must be an absolute path, got ${JSON.stringify(raw)}`);
  if (/[\0\n\r]/.test(raw)) throw new Error('must not contain control characters');
  return path.normalize(raw);
}

/** CHROOT_DIR: an absolute directory that is not one of the system's own. */
export function chrootDir(raw: string): string {
  const normal = absolutePath(raw);
  const dir = normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
  // Refused here, not only by deploy: generate would render server setup that re-modes it.
  const system = systemDirectoryProblem(dir);
  if (system) throw new Error(`${dir} cannot hold SFTP chroots: ${system}; ${SYSTEM_DIRECTORY_HINT}`);
  return dir;
}

/** SIGNING_KEY: an absolute file name. */
export const keyFile = absolutePath;

/** REBUILD_ARGS: words separated by spaces or tabs. */
export function words(raw: string): string[] {
  if (/[\0\n\r]/.test(raw)) throw new Error('must not contain control characters');
  return raw.split(/[ \t]+/).filter((word) => word !== '');
}

/** TRIGGER_DOMAIN: a DNS domain, without its leading or trailing dot; '' for none. */
export function domain(raw: string): string {
  const name = raw.replace(/^\./, '');
  if (name !== '' && !HOST_NAME.test(name)) throw new Error(`is not a DNS domain: ${JSON.stringify(raw)}`);
  return name.replace(/\.$/, '');
}

/** REMOTE_IP: one server, or several in the order the clients try them ("a b" or "a,b"). */
export function parseRemoteHosts(raw: string): string[] {
  const hosts = raw.split(/[\s,]+/).filter((host) => host !== '');
  if (hosts.length === 0) throw new Error('is empty');
  for (const host of hosts) if (!isHost(host)) throw new Error(`is not a host name or IP address: ${JSON.stringify(host)}`);
  const repeated = hosts.find((host, index) => hosts.indexOf(host) !== index);
  if (repeated) throw new Error(`lists ${repeated} twice`);
  if (hosts.length > MAX_REMOTE_HOSTS) throw new Error(`lists ${hosts.length} servers; at most ${MAX_REMOTE_HOSTS}`);
  return hosts;
}

/** SSHD_MAX_STARTUPS: sshd's MaxStartups, checked as sshd would check it. */
export function parseMaxStartups(raw: string): string | null {
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
export function parseTriggerAddresses(raw: string): Record<string, string> {
  const addresses: Record<string, string> = {};
  for (const pair of raw.split(/[\s,]+/).filter((word) => word !== '')) {
    const equals = pair.indexOf('=');
    if (equals < 1) throw new Error(`must be name=host pairs, got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, equals);
    const address = pair.slice(equals + 1);
    if (!SYSTEM_NAME.test(name)) throw new Error(`names a system that cannot exist: ${JSON.stringify(name)}`);
    if (Object.hasOwn(addresses, name)) throw new Error(`gives ${name} twice`);
    const problem = triggerAddressProblem(address);
    if (problem) throw new Error(`${name}: ${problem}`);
    addresses[name] = address;
  }
  return addresses;
}

function triggerAddressProblem(address: string): string | undefined {
  const parts = splitHostPort(address);
  if (!parts) return `${JSON.stringify(address)} is not host, host:port, [IPv6] or [IPv6]:port`;
  if (parts.port !== null && (parts.port < 1 || parts.port > 65535)) return `port ${parts.port} is not a TCP port`;
  return undefined;
}
