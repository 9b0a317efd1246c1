/**
 * The keys of config.sh, each described once: its name, the Config field
 * it fills, its type, parser, default, one line of documentation and an
 * example. The Config type, the defaults, `bento --help`, the config.sh of
 * `bento init` and docs/config.md all come from this list
 * (test/config/schema.test.ts compares them).
 */
import {
  byteSize, calendar, chrootDir, domain, flag, integerIn, keyFile, parseDuration, parseMaxStartups, parseRemoteHosts,
  notifyCommand, notifyUrl, parseRolloutWaves, parseTriggerAddresses, rebootWindow, storeUrl, timeSpan, uidRange, words,
} from './values.js';
import type { RebootWindow } from './reboot-window.js';
import { LOGIN_GRACE_TIME_RULE, MAX_STARTUPS_RULE } from './sshd-sizing.js';

export interface KeySpec<F extends string = string, T = unknown> {
  /** The Config field it fills. */
  field: F;
  /** What kind of value, for people: "port", "seconds", "path". */
  type: string;
  /** Converts and checks the raw value; throws a message that follows the key's name. */
  parse: (raw: string) => T;
  /** The value when the key is unset; absent for required keys. */
  default?: T;
  /** The default as people read it (help, docs/config.md). */
  shown: string;
  /** One line: what the key does. */
  doc: string;
  /** More lines, for the reference page and the comment in `bento init`'s config.sh. */
  details?: string;
  /** A value as written in config.sh (`bento init` writes it, docs show it). */
  example: string;
  /** `bento init` writes it set (true) or commented out. */
  initSet?: boolean;
  required?: boolean;
}

/** Ties a key's field name, value type and being required to its spec, so that Config and DEFAULTS follow. */
function key<const F extends string, T, const R extends boolean = false>(spec: KeySpec<F, T> & { required?: R }): KeySpec<F, T> & { required?: R } {
  return spec;
}

/** Every key config.sh understands, in the order of the documentation. */
export const SCHEMA = {
  CHROOT_DIR: key({
    field: 'chrootDir', type: 'path', parse: chrootDir, required: true, shown: 'required', example: '/home/chroot', initSet: true,
    doc: "where the machines' SFTP chroots live on this server",
    details: 'Every directory of this path must be owned by root and not writable by anyone else, or sshd refuses to chroot.',
  }),
  REMOTE_IP: key({
    field: 'remoteHosts', type: 'hosts', parse: parseRemoteHosts, required: true, shown: 'required', example: 'bento.example.org', initSet: true,
    doc: 'host name or address the machines reach this server at',
    details: 'Several ("a.example.org b.example.org"): servers the machines try in order, the first that answers is used.',
  }),
  REMOTE_PORT: key({ field: 'remotePort', type: 'port', parse: integerIn(1, 65535, 'a TCP port'), default: 22, shown: '22', example: '22', initSet: true, doc: 'SSH port of the SFTP server' }),
  TIMEOUT: key({
    field: 'timeout', type: 'seconds', parse: integerIn(1, 3600, 'seconds'), default: 20, shown: '20', example: '20', initSet: true,
    doc: 'seconds a machine waits for the SFTP connection before giving up',
  }),
  CONNECT_RETRY: key({
    field: 'connectRetry', type: 'seconds', parse: integerIn(0, 3600, 'seconds, 0: no retry'), default: 60, shown: '60; 0: no retry', example: '60',
    doc: "seconds a machine's run retries connections that fail (refused, reset, timed out), with random pauses",
  }),
  NOLOCALBUILD: key({ field: 'noLocalBuild', type: '0 or 1', parse: flag, default: false, shown: '0', example: '0', initSet: true, doc: '1: deploy only evaluates the configurations here (dry-build), never builds them' }),
  REBUILD_ARGS: key({ field: 'rebuildArgs', type: 'words', parse: words, default: [], shown: 'none', example: '--fallback', doc: 'extra arguments for every nixos-rebuild on the machines' }),
  UPDATE_CALENDAR: key({
    field: 'updateCalendar', type: 'calendar', parse: calendar, default: '*:0/15', shown: '*:0/15', example: '*:0/15', initSet: true,
    doc: 'when machines poll for a new configuration (systemd OnCalendar)',
    details: 'Checked when config.sh is read, against systemd.time(7), and with systemd-analyze calendar where this server has it (by the commands that write it into units: generate, deploy, build).',
  }),
  UPDATE_RANDOM_DELAY: key({
    // The default is the interval of the default calendar; parseConfig replaces it by the interval of the one set (pollSpreadOf).
    field: 'updateRandomDelay', type: 'time span', parse: timeSpan, default: '15min', shown: 'the interval of UPDATE_CALENDAR; 0: off', example: '15min', initSet: true,
    doc: "random delay added to each poll, drawn once per machine: it spreads the fleet's polls over the interval",
    details: 'Keep it at most the interval of UPDATE_CALENDAR. When bento cannot tell that interval (Mon..Fri 02:00, 04:00), it is 1min, and bento warns: set it then.',
  }),
  REBOOT_CALENDAR: key({
    field: 'rebootCalendar', type: 'calendar', parse: calendar, default: '04:00', shown: '04:00', example: '04:00', initSet: true,
    doc: 'when machines with services.bento.reboot.enable reboot into a new kernel (systemd OnCalendar)',
    details: 'Checked as UPDATE_CALENDAR is.',
  }),
  REBOOT_WINDOW: key<'rebootWindow', RebootWindow | undefined, false>({
    field: 'rebootWindow', type: 'days HH:MM-HH:MM', parse: rebootWindow, default: undefined, shown: 'any time', example: 'Mon..Fri 02:00-05:00',
    doc: "when machines may reboot into a new kernel, in each machine's local time (REBOOT flag and services.bento.reboot)",
    details: 'Weekdays as systemd writes them (Mon..Fri, Sat,Sun, Mon,Wed..Fri, * for every day), a space, a time range that may cross midnight (it opens on the days listed). A file hosts/<dir>/REBOOT_WINDOW with the same text wins for that host. See docs/reboots.md.',
  }),
  REBOOT_MAX: key({
    field: 'rebootMax', type: 'count', parse: integerIn(0, 100_000, 'machines, 0: no cap'), default: 0, shown: '0: no cap', example: '2',
    doc: 'at most this many machines reboot into a new kernel at once: bento reboots hands out slots through the chroots',
    details: 'Run by a timer on the server and at the end of bento deploy. See docs/reboots.md.',
  }),
  REBOOT_MAX_PER_WAVE: key({
    field: 'rebootMaxPerWave', type: 'count', parse: integerIn(0, 100_000, 'machines, 0: no cap'), default: 0, shown: '0: no cap', example: '1',
    doc: 'with ROLLOUT_WAVES and REBOOT_MAX: at most this many machines of one wave reboot at once',
  }),
  REBOOT_SLOT_TIME: key({
    field: 'rebootSlotTime', type: 'duration', parse: parseDuration, default: 3600, shown: '1h', example: '1h',
    doc: 'how long a machine may hold a reboot slot before it expires and goes to the next machine',
    details: 'Long enough for a machine to poll, reboot and poll again: more than twice the interval of UPDATE_CALENDAR plus UPDATE_RANDOM_DELAY.',
  }),
  LISTEN_PORT: key({ field: 'listenPort', type: 'port', parse: integerIn(1, 65535, 'a TCP port'), default: 51337, shown: '51337', example: '51337', initSet: true, doc: 'TCP port where a connection triggers an update on a machine' }),
  LOG_KEEP: key({ field: 'logKeep', type: 'count', parse: integerIn(0, 1_000_000, 'logs, 0: keep all'), default: 100, shown: '100; 0: all', example: '100', doc: 'logs kept per machine on this server, the oldest removed first' }),
  SSHD_MAX_STARTUPS: key({
    field: 'sshdMaxStartups', type: 'begin[:rate:full]', parse: parseMaxStartups, default: null, shown: MAX_STARTUPS_RULE, example: '300:30:600',
    doc: "sshd's MaxStartups on this server",
  }),
  SSHD_LOGIN_GRACE_TIME: key<'sshdLoginGraceTime', number | null, false>({
    field: 'sshdLoginGraceTime', type: 'seconds', parse: integerIn(0, 86400, 'seconds, 0: no limit'), default: null, shown: LOGIN_GRACE_TIME_RULE, example: '40',
    doc: "sshd's LoginGraceTime on this server, in seconds",
  }),
  SFTP_UIDS: key({
    // The default, clear of every range the server's other users come from:
    // system users 0–999 (Debian policy 9.2.2; FIRST/LAST_SYSTEM_UID of
    // /etc/adduser.conf, SYS_UID_MAX of /etc/login.defs; NixOS allocates its
    // system users from 400–999, users-groups.nix / update-users-groups.pl),
    // people 1000–60000 (UID_MIN/UID_MAX of login.defs, FIRST/LAST_UID of
    // adduser.conf; NixOS's normal users from 1000), systemd-homed
    // 60001–60513, container-mapped host users 60514–60577, DynamicUser=
    // 61184–65519, nobody 65534 and the 16-bit (uid_t) -1 65535 (systemd's
    // docs/UIDS-GIDS.md), the subordinate uids that useradd and NixOS's
    // autoSubUidGidRange hand out from 100000 (SUB_UID_MIN of login.defs) and
    // systemd-nspawn's container ranges from 524288 (UIDS-GIDS.md). Debian
    // policy gives 65536 and above to dynamically allocated user accounts.
    // 70000, not 65536: a uid cut to 16 bits by old code is then not root's.
    field: 'sftpUids', type: 'first-last', parse: uidRange, default: { first: 70000, last: 99999 }, shown: '70000-99999', example: '70000-99999',
    doc: "the uids of the machines' SFTP accounts on this server, recorded per machine in uids.txt",
    details: 'Clear of system users (below 1000), people (1000–60000), systemd\'s dynamic users (61184–65519) and the subordinate uids of containers (100000 and above). bento generate gives each new system the lowest free uid of the range and records it in uids.txt, never changed: commit that file with the fleet. See docs/sftp-server.md, "Account uids".',
  }),
  TRIGGER_DOMAIN: key({
    field: 'triggerDomain', type: 'domain', parse: domain, default: '', shown: 'none: the system name alone', example: 'vpn.example.org',
    doc: 'bento trigger: domain appended to system names to reach the machines',
  }),
  TRIGGER_ADDRESSES: key({
    field: 'triggerAddresses', type: 'name=host[:port] …', parse: parseTriggerAddresses, default: {}, shown: 'none', example: 'laptop=192.0.2.10 router=router.lan:51337',
    doc: 'bento trigger: the addresses of machines not reached at their name',
  }),
  PREBUILT: key({
    field: 'prebuilt', type: '0 or 1', parse: flag, default: false, shown: '0; per host: a PREBUILT file in its directory', example: '1',
    doc: '1: every machine downloads the system built here, signed, and never evaluates',
  }),
  SIGNING_KEY: key({
    field: 'signingKey', type: 'path', parse: keyFile, default: '/var/lib/bento/signing-key', shown: '/var/lib/bento/signing-key', example: '/var/lib/bento/signing-key',
    doc: "the server's Nix signing key for prebuilt systems, made on first use, never in the fleet or a chroot",
  }),
  CACHE_STORE: key({
    field: 'cacheStore', type: 'store URL', parse: storeUrl, default: '', shown: 'none: the chroots', example: 's3://bento-cache?region=eu-west-1',
    doc: 'copy prebuilt closures to this Nix store instead of the chroots; with CACHE_URL',
  }),
  CACHE_URL: key({ field: 'cacheUrl', type: 'store URL', parse: storeUrl, default: '', shown: 'none', example: 'https://cache.example.org', doc: 'where the machines download the closures of CACHE_STORE from' }),
  ROLLOUT_WAVES: key<'rolloutWaves', string[][] | undefined, false>({
    field: 'rolloutWaves', type: 'waves', parse: parseRolloutWaves, default: undefined, shown: 'off', example: 'canary web-*,db-* *',
    doc: 'staged rollouts: waves in order, separated by spaces, their members (names or globs) by commas',
  }),
  ROLLOUT_WAIT: key({ field: 'rolloutWait', type: 'duration', parse: parseDuration, default: 2 * 3600, shown: '2h', example: '2h', doc: 'how long a wave may take to report success before the rollout halts' }),
  SILENT_AFTER: key({
    // The default follows UPDATE_CALENDAR and UPDATE_RANDOM_DELAY: parseConfig replaces it (silentAfterOf).
    field: 'silentAfter', type: 'duration', parse: parseDuration, default: 3600, shown: 'three intervals of UPDATE_CALENDAR plus UPDATE_RANDOM_DELAY (1h)', example: '1h',
    doc: 'bento status calls a machine silent when its heartbeat is older than this',
    details: 'A machine writes its heartbeat on every poll; one that missed three polls in a row is switched off, offline or broken.',
  }),
  LOG_SIZE_LIMIT: key({
    field: 'logSizeLimit', type: 'bytes, or K/M/G', parse: byteSize(64 * 1024, 1024 ** 3), default: 16 * 1024 * 1024, shown: '16M', example: '16M',
    doc: 'largest log a machine may upload: machines cut longer logs, the server deletes bigger files, status skips them',
  }),
  NOTIFY_COMMAND: key({
    field: 'notifyCommand', type: 'shell command', parse: notifyCommand, default: '', shown: 'none', example: 'logger -t bento-alert',
    doc: 'alerts: run by /bin/sh with the transitions as JSON on its stdin when a machine starts failing or recovers (bento notify)',
    details: 'Exit 0 means delivered; anything else is reported and sent again at the next run. See docs/alerts.md.',
  }),
  NOTIFY_URL: key({
    field: 'notifyUrl', type: 'URL', parse: notifyUrl, default: '', shown: 'none', example: 'https://ntfy.example.org/bento-fleet',
    doc: 'alerts: POST the same JSON to this http(s) URL (ntfy, a chat webhook, an incident tool)',
    details: 'A 2xx answer means delivered. Messages name only its scheme, host and port: a token in its path or query stays out of logs. config.sh is read at run time, never copied into the Nix store.',
  }),
} as const;

export type ConfigKey = keyof typeof SCHEMA;

type Schema = typeof SCHEMA;
type ValueOf<S> = S extends KeySpec<string, infer T> ? T : never;

/** config.sh, parsed: one field per key, and the first server of REMOTE_IP. */
export type Config = { [K in ConfigKey as Schema[K]['field']]: ValueOf<Schema[K]> } & {
  /** The first of REMOTE_IP (remoteHosts[0]): the server the clients try first. */
  remoteIp: string;
};

/** The fields of the required keys: no default. */
type RequiredField = { [K in ConfigKey]: Schema[K] extends { required?: true } ? Schema[K]['field'] : never }[ConfigKey];

/** The keys config.sh understands, in order. */
export const CONFIG_KEYS = Object.keys(SCHEMA) as ConfigKey[];

/** The key specs in order, with their names. */
export function configKeys(): { name: ConfigKey; spec: KeySpec }[] {
  return CONFIG_KEYS.map((name) => ({ name, spec: SCHEMA[name] as KeySpec }));
}

/** Every field with a default: what a Config is before config.sh is read. */
export const DEFAULTS = Object.fromEntries(
  configKeys()
    .filter(({ spec }) => !spec.required)
    .map(({ spec }) => [spec.field, spec.default]),
) as Omit<Config, RequiredField | 'remoteIp'>;
