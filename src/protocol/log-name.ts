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

/** `YYYYMMDD-HHMM_`: its length, and where the dash and the underscore stand. */
const PREFIX_LENGTH = 14;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;
const DIGIT_0 = 0x30;
const LOG_SUFFIX = '.log.gz';
/** A file name cannot be longer on any file system bento runs on. */
const MAX_NAME_LENGTH = 255;

/**
 * Parses one entry of a `logs/` directory. Checked by hand, not by regular
 * expressions: status parses every name of every logs/ (a million at
 * 10,000 machines), and a pattern anchored only at its end is tried at every
 * position of the name (bench/README.md).
 */
export function parseLogName(name: string): ParseLogNameResult {
  const checked = checkLogName(name);
  if (typeof checked === 'string') return { ok: false, reason: checked };
  const storeBasename = name.slice(PREFIX_LENGTH, checked.suffixStart);
  return { ok: true, log: { stamp: name.slice(0, PREFIX_LENGTH - 1), storeBasename, hash: storeBasename.slice(0, 32), result: checked.result } };
}

/** Why `name` is not a log name, or undefined when it is one: parseLogName's verdict, without building what it says. */
export function logNameProblem(name: string): string | undefined {
  const checked = checkLogName(name);
  return typeof checked === 'string' ? checked : undefined;
}

/** Why `name` is not a log name; else its result and where `_<result>.log.gz` starts. */
function checkLogName(name: string): string | { result: LogResult; suffixStart: number } {
  if (name.length > MAX_NAME_LENGTH) return 'the name is too long';
  const year = digitsAt(name, 0, 4);
  const month = digitsAt(name, 4, 2);
  const day = digitsAt(name, 6, 2);
  const hour = digitsAt(name, 9, 2);
  const minute = digitsAt(name, 11, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || name.charCodeAt(8) !== DASH || name.charCodeAt(13) !== UNDERSCORE) return 'the name does not start with YYYYMMDD-HHMM_';
  if (!isPlausibleStamp(year, month, day, hour, minute)) return 'the date in the name is not a valid date';
  // The name ends with `_<result>.log.gz`, the *last* one: whatever comes
  // before it belongs to the store path. The four results end differently,
  // so at most one fits.
  const suffix = resultSuffix(name);
  if (!suffix) return 'the name does not end with _success, _failure, _rollback or _autoupdate .log.gz';
  return storeBasenameProblem(name.slice(PREFIX_LENGTH, suffix.suffixStart)) ?? suffix;
}

/** The result of the `_<result>.log.gz` that `name` ends with, and where it starts (it may overlap the prefix's underscore). */
function resultSuffix(name: string): { result: LogResult; suffixStart: number } | undefined {
  if (!name.endsWith(LOG_SUFFIX)) return undefined;
  for (const result of LOG_RESULTS) {
    const suffixStart = name.length - LOG_SUFFIX.length - result.length - 1;
    if (suffixStart >= 0 && name.charCodeAt(suffixStart) === UNDERSCORE && name.startsWith(result, suffixStart + 1)) return { result, suffixStart };
  }
  return undefined;
}

/** The number the `count` ASCII digits of `text` at `from` spell; -1 when they are not all digits (or the text ends first). */
function digitsAt(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - DIGIT_0;
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function isPlausibleStamp(year: number, month: number, day: number, hour: number, minute: number): boolean {
  if (year < 1970 || month < 1 || month > 12 || hour > 23 || minute > 59 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= daysInMonth;
}
