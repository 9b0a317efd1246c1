/**
 * Log file names, the one piece of the wire protocol a client writes
 * (docs/protocol.md, "Logs"): `YYYYMMDD-HHMM_<store path basename>_<result>.log.gz`.
 *
 * The name is parsed from its structure (a fixed-width date prefix, the last
 * `_<result>.log.gz` suffix, a 32-character hash at the start of the middle),
 * never by searching for words in it: the original scripts grepped for
 * `success`, so a machine called `success-box` was reported as up to date.
 */
import { storeBasenameProblem } from './store-path.js';

export const LOG_RESULTS = ['success', 'failure', 'rollback', 'autoupdate'] as const;
export type LogResult = (typeof LOG_RESULTS)[number];

/** What a well-formed log name says. */
export interface LogName {
  /** `YYYYMMDD-HHMM` as written by the client, in the client's local time. */
  stamp: string;
  /** The store path basename the client was running: `<hash>-<name>`. */
  storeBasename: string;
  /** The 32-character nix base32 hash at the start of storeBasename. */
  hash: string;
  result: LogResult;
}

export type ParseLogNameResult = { ok: true; log: LogName } | { ok: false; reason: string };

const PREFIX = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})_/;
const SUFFIX = /_(success|failure|rollback|autoupdate)\.log\.gz$/;
/** A file name cannot be longer on any file system bento runs on. */
const MAX_NAME_LENGTH = 255;

/** Parses one entry of a `logs/` directory. */
export function parseLogName(name: string): ParseLogNameResult {
  if (name.length > MAX_NAME_LENGTH) return { ok: false, reason: 'the name is too long' };
  const prefix = PREFIX.exec(name);
  if (!prefix) return { ok: false, reason: 'the name does not start with YYYYMMDD-HHMM_' };
  if (!isPlausibleStamp(Number(prefix[1]), Number(prefix[2]), Number(prefix[3]), Number(prefix[4]), Number(prefix[5]))) return { ok: false, reason: 'the date in the name is not a valid date' };
  const suffix = SUFFIX.exec(name);
  if (!suffix) return { ok: false, reason: 'the name does not end with _success, _failure, _rollback or _autoupdate .log.gz' };
  // The suffix regex is anchored at the end, so it matched the *last*
  // `_<result>.log.gz`; whatever comes before it belongs to the store path.
  const storeBasename = name.slice(prefix[0].length, suffix.index);
  const problem = storeBasenameProblem(storeBasename);
  if (problem) return { ok: false, reason: problem };
  return {
    ok: true,
    log: {
      stamp: name.slice(0, prefix[0].length - 1),
      storeBasename,
      hash: storeBasename.slice(0, 32),
      result: suffix[1] as LogResult,
    },
  };
}

function isPlausibleStamp(year: number, month: number, day: number, hour: number, minute: number): boolean {
  if (year < 1970 || month < 1 || month > 12 || hour > 23 || minute > 59 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  return day <= daysInMonth;
}
