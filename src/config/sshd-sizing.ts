/**
 * sshd's limits on logins in progress, sized for the fleet (docs/protocol.md §1):
 * the defaults of SSHD_MAX_STARTUPS and SSHD_LOGIN_GRACE_TIME, with the
 * rules that say them in `--help` and docs/config.md (schema.ts), so that
 * the rule is stated once, next to the code that applies it.
 *
 * Every machine polls with one SSH login. OpenSSH's defaults, `MaxStartups
 * 10:30:100` (past 10 unauthenticated connections it drops 30% of new ones,
 * rising to all of them at 100) and `LoginGraceTime 120`, are sized for
 * people, not for a fleet whose timers fire in the same second (after the
 * server restarts, after a network outage, `bento trigger`): a client then
 * sees `kex_exchange_identification: Connection reset by peer`. Measured
 * here: 150 simultaneous logins lost about half of them at the default; the
 * load test (bench/poll-load.sh, docs/scale.md) shows the
 * same at 200.
 *
 * Both are global settings (sshd refuses MaxStartups inside a Match block).
 * sshd keeps the LAST MaxStartups it reads but the FIRST LoginGraceTime
 * (servconf.c; `sshd -T` shows it, test/config/sshd-sizing.test.ts checks it).
 */

export interface SshdSizing {
  /** `begin:rate:full` or `begin` (sshd_config(5)), as written in the configuration. */
  maxStartups: string;
  /** The same as `sshd -T` prints it: always `begin:rate:full`. */
  maxStartupsEffective: string;
  /** Seconds an unauthenticated connection may take to log in. */
  loginGraceTime: number;
}

/** OpenSSH's own values: bento never sizes below them. */
export const OPENSSH_MAX_STARTUPS = { begin: 10, rate: 30, full: 100 };
export const OPENSSH_LOGIN_GRACE_TIME = 120;

/**
 * Logins a server completes per second while a whole fleet connects at once,
 * assumed for LoginGraceTime: well under what bench/poll-load.sh measured
 * sshd to serve on two cores (bench/README.md), so that a slower server and
 * slow links still fit.
 */
const ASSUMED_LOGINS_PER_SECOND = 20;
/** What a slow link needs for the SSH handshake, on top of the queue. */
const LOGIN_GRACE_BASE = 30;
/** Logins beyond the fleet before sshd drops any: at least this many, or this share of the fleet. */
const HEADROOM = { least: 10, divisor: 2 };
/** `full` is this many times `begin`. */
const FULL_FACTOR = 2;

/** The settings that override the sizing (SSHD_MAX_STARTUPS, SSHD_LOGIN_GRACE_TIME). */
export interface SshdOverrides {
  sshdMaxStartups: string | null;
  sshdLoginGraceTime: number | null;
}

/** SSHD_MAX_STARTUPS's default, as `--help` and docs/config.md state it: what sizeSshd computes. */
export const MAX_STARTUPS_RULE =
  `sized for the fleet's N systems: B:${OPENSSH_MAX_STARTUPS.rate}:${FULL_FACTOR}B with B = N + max(${HEADROOM.least}, N/${HEADROOM.divisor}), ` +
  `at least ${OPENSSH_MAX_STARTUPS.begin}:${OPENSSH_MAX_STARTUPS.rate}:${OPENSSH_MAX_STARTUPS.full} (200 systems: 300:30:600)`;

/** SSHD_LOGIN_GRACE_TIME's default, as `--help` and docs/config.md state it: what sizeSshd computes. */
export const LOGIN_GRACE_TIME_RULE = `sized for the fleet's N systems: ${LOGIN_GRACE_BASE} + N/${ASSUMED_LOGINS_PER_SECOND} seconds, at most ${OPENSSH_LOGIN_GRACE_TIME}`;

/**
 * MaxStartups: every machine of the fleet may be half-way through its login
 * at once, plus headroom (half the fleet, at least 10: administrators,
 * retries overlapping a slow login) before sshd starts dropping; then sshd's
 * own random early drop, 30%, up to twice that, which still protects the
 * server against a flood. LoginGraceTime: long enough for the whole fleet
 * to be served at ASSUMED_LOGINS_PER_SECOND, never longer than OpenSSH's
 * 120 s (a connection that has not logged in by then is stuck, and holds a
 * slot). Config keys SSHD_MAX_STARTUPS and SSHD_LOGIN_GRACE_TIME win.
 */
export function sizeSshd(systemCount: number, config: SshdOverrides): SshdSizing {
  const count = Math.max(0, Math.floor(systemCount));
  const begin = Math.max(OPENSSH_MAX_STARTUPS.begin, count + Math.max(HEADROOM.least, Math.ceil(count / HEADROOM.divisor)));
  const full = Math.max(OPENSSH_MAX_STARTUPS.full, FULL_FACTOR * begin);
  const grace = Math.min(OPENSSH_LOGIN_GRACE_TIME, LOGIN_GRACE_BASE + Math.ceil(count / ASSUMED_LOGINS_PER_SECOND));
  const maxStartups = config.sshdMaxStartups ?? `${begin}:${OPENSSH_MAX_STARTUPS.rate}:${full}`;
  return { maxStartups, maxStartupsEffective: effectiveMaxStartups(maxStartups), loginGraceTime: config.sshdLoginGraceTime ?? grace };
}

/** What sshd makes of a MaxStartups value: `N` alone is `N:30:N` (servconf.c keeps the default rate). */
export function effectiveMaxStartups(value: string): string {
  return value.includes(':') ? value : `${value}:${OPENSSH_MAX_STARTUPS.rate}:${value}`;
}
