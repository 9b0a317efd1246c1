/**
 * CHROOT_DIR → a snapshot of what status needs (docs/protocol.md): the expected store
 * path of each flake system (states.txt), when each system's files last
 * changed (mtime of last_change_date) and the logs the clients uploaded, with
 * the time the server received them (their mtime).
 *
 * Each machine writes its own logs/, so everything below it is hostile input.
 * Nothing here throws for a broken system. An entry of logs/ that is not a
 * whole log is named in a warning and left out, so it never changes what the
 * real logs say; what status cannot read at all (logs/ itself, a states.txt
 * line) becomes a problem that marks that system "unknown". The others are
 * still read. Only an unreadable CHROOT_DIR itself is an error. Texts
 * returned here are raw; they are sanitized where they are printed.
 *
 * The file system is read with synchronous calls on purpose: tens of
 * thousands of lstat calls are several times faster so than through
 * fs/promises, one thread-pool round trip and promise each (bench/README.md).
 * status has nothing else to do meanwhile, and in watch mode one refresh
 * blocking for that long is invisible. A large fleet's lstat calls still
 * take seconds: with a LogCache, a logs/ directory that did not change
 * since the last run is not read again (log-cache.ts).
 *
 * A snapshot holds the logs the rules of docs/protocol.md §7 read — the
 * latest one and every one newer than last_change_date — not the others.
 */
import path from 'node:path';
import { closeSync, constants, lstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { DEFAULTS } from '../config/config.js';
import { describeError, errorCode, UserError } from '../errors.js';
import { LAST_CHANGE_DATE, listChrootDir, LOGS_DIR, REMOVED_MARKER, STATES_FILE, type ChrootListing } from '../protocol/layout.js';
import { readRolloutState, type RolloutState } from '../protocol/rollout-file.js';
import { parseLogName } from '../protocol/log-name.js';
import { FUTURE_TOLERANCE_MS, GZIP_HEAD_BYTES, GZIP_TAIL_BYTES, gzipProblem, isLaterLog, isUploadTemporary, receivedAtMs, type LogEntry } from '../protocol/log-file.js';
import { readStatesFile, type StatesFile } from '../protocol/states-file.js';
import { fileStamp, logNamesDigest, neededLogs, type FileStamp, type Listing, type LogCache } from './log-cache.js';
import { HEARTBEAT_FILE, HEARTBEAT_READ_BYTES, parseHeartbeat, type Heartbeat } from '../protocol/heartbeat.js';
import { truncate } from '../util/text.js';

/** Bad log names quoted in one warning; the rest are counted. */
const QUOTED_BAD_NAMES = 3;

/** What states.txt says a system should run. */
export type Expected =
  | { kind: 'flake'; storeBasename: string; hash: string }
  /** Not listed: the original scripts only record flake systems. */
  | { kind: 'non-flake' }
  /** states.txt could not be read, or its line for this system is broken. */
  | { kind: 'unknown' };

export interface SystemSnapshot {
  name: string;
  expected: Expected;
  /** mtime of last_change_date; null when it is missing or unreadable. */
  lastChangeMs: number | null;
  /**
   * The logs status needs — the latest, and every one newer than
   * last_change_date — in no particular order: well named regular files
   * within the size limit, and whole gzip files.
   */
  logs: LogEntry[];
  /** Why this system's state cannot be trusted; non-empty means "unknown". */
  problems: string[];
  /** Its heartbeat (docs/protocol.md §5a), or null when it has none (a client older than protocol 2). */
  heartbeat: HeartbeatRead | null;
}

export interface HeartbeatRead {
  /** When the server received it (receivedAtMs): when the machine was last seen. */
  receivedMs: number;
  /** What it says; {} when its text cannot be read (empty, too big, not a heartbeat). */
  says: Heartbeat;
}

export interface ChrootSnapshot {
  /** Sorted by name. */
  systems: SystemSnapshot[];
  /** Systems that left the fleet (their directory holds deploy's `removed` marker): not in `systems`. Sorted. */
  removed: string[];
  /** The staged rollout in progress (running or halted), if any. */
  rollout?: RolloutState;
  /** Raw texts (may quote hostile names): sanitize before printing. */
  warnings: string[];
}

/**
 * Reads CHROOT_DIR; throws a UserError only when CHROOT_DIR itself cannot be
 * listed. Asynchronous in its signature so that the reading strategy can
 * change without touching the callers.
 */
export async function readChroot(chrootDir: string, options: ReadChrootOptions = {}): Promise<ChrootSnapshot> {
  return readChrootNow(chrootDir, options);
}

export interface ReadChrootOptions {
  /** Logs bigger than this many bytes are not read (LOG_SIZE_LIMIT of config.sh; its default when unset). */
  logSizeLimit?: number;
  /** Logs read before, to read again only the logs/ directories that changed (the caller saves it). */
  cache?: LogCache;
}

function readChrootNow(chrootDir: string, options: ReadChrootOptions): ChrootSnapshot {
  let listing: ChrootListing;
  try {
    listing = listChrootDir(chrootDir);
  } catch (error) {
    throw new UserError(`cannot read CHROOT_DIR ${chrootDir}: ${describeError(error)}`, 'check CHROOT_DIR in config.sh');
  }
  const warnings: string[] = [];
  const states = readStates(chrootDir);
  warnings.push(...states.warnings);

  const directories = selectSystemNames(listing, warnings);
  // A system that left the fleet: deploy removed what it had published and
  // left its logs for the record (docs/protocol.md §2). Not a row any more.
  const removed = directories.filter((name) => isRemoved(chrootDir, name));
  const names = directories.filter((name) => !removed.includes(name));
  const systems = names.map((name) => readSystem(chrootDir, name, states, options));
  options.cache?.keepOnly(new Set(names));
  for (const system of systems) warnings.push(...system.warnings);

  const rollout = readRollout(chrootDir, warnings);
  const present = new Set(directories);
  for (const [name, entry] of states.entries) {
    if (!present.has(name)) warnings.push(`${STATES_FILE}:${entry.line}: ${name} has no directory in CHROOT_DIR (not shown)`);
  }
  return { systems: systems.map((system) => system.snapshot), removed, warnings, ...(rollout ? { rollout } : {}) };
}

function isRemoved(chrootDir: string, name: string): boolean {
  try {
    // No exception for the usual answer, a missing marker: building one costs more than the lstat (bench/README.md).
    return lstatSync(path.join(chrootDir, name, REMOVED_MARKER), { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}

/** The rollout that is running or halted; a damaged rollout.json is a warning. */
function readRollout(chrootDir: string, warnings: string[]): RolloutState | undefined {
  try {
    const state = readRolloutState(chrootDir);
    return state && (state.status === 'running' || state.status === 'halted') ? state : undefined;
  } catch (error) {
    warnings.push(describeError(error));
    return undefined;
  }
}

interface StatesRead extends StatesFile {
  /** Set when the file exists but cannot be read: every system is then unknown. */
  unreadable?: string;
}

/** states.txt through its one parser; a missing file means no flake system. */
function readStates(chrootDir: string): StatesRead {
  try {
    return readStatesFile(chrootDir);
  } catch (error) {
    const unreadable = `${STATES_FILE} cannot be read: ${describeError(error)}`;
    return { entries: new Map(), warnings: [unreadable], unreadable };
  }
}

/** The systems of CHROOT_DIR (protocol/layout.ts, listChrootDir: links to directories followed); a stray entry gets a warning. */
function selectSystemNames(listing: ChrootListing, warnings: string[]): string[] {
  for (const stray of listing.strays) {
    warnings.push(stray.why === 'not a system name' ? `ignored ${JSON.stringify(truncate(stray.name))} in CHROOT_DIR: not a system name` : `ignored ${stray.name} in CHROOT_DIR: not a directory`);
  }
  return listing.systems.map((system) => system.name);
}

interface SystemRead {
  snapshot: SystemSnapshot;
  warnings: string[];
}

function readSystem(chrootDir: string, name: string, states: StatesRead, options: ReadChrootOptions): SystemRead {
  const problems: string[] = [];
  const warnings: string[] = [];
  const expected = decideExpected(name, states, problems);
  // Paths without path.join, which costs measurably at 10,000 systems
  // (bench/README.md): CHROOT_DIR is normalised (config.ts) and a system
  // name one component.
  const base = chrootDir.endsWith('/') ? `${chrootDir}${name}/` : `${chrootDir}/${name}/`;
  const lastChangeMs = readLastChange(base + LAST_CHANGE_DATE, name, warnings);
  const context = { lastChangeMs, sizeLimit: options.logSizeLimit ?? DEFAULTS.logSizeLimit };
  const logs = readNeededLogs(base + LOGS_DIR, name, context, problems, warnings, options.cache);
  const heartbeat = readHeartbeat(`${base}${LOGS_DIR}/${HEARTBEAT_FILE}`, name, warnings, options.cache);
  // Every problem is also a warning, so the user learns why a row says "unknown".
  warnings.push(...problems);
  return { snapshot: { name, expected, lastChangeMs, logs, problems, heartbeat }, warnings };
}

function decideExpected(name: string, states: StatesRead, problems: string[]): Expected {
  if (states.unreadable) {
    problems.push(`${name}: expected version unknown, ${states.unreadable}`);
    return { kind: 'unknown' };
  }
  const entry = states.entries.get(name);
  if (!entry) return { kind: 'non-flake' };
  if ('problem' in entry) {
    problems.push(`${name}: ${entry.problem}`);
    return { kind: 'unknown' };
  }
  return { kind: 'flake', storeBasename: entry.storeBasename, hash: entry.storeBasename.slice(0, 32) };
}

/** A missing date is a warning, not a problem: some states do not need it (see states.ts). */
function readLastChange(file: string, name: string, warnings: string[]): number | null {
  try {
    const stats = lstatSync(file);
    if (stats.isFile()) return stats.mtimeMs;
    warnings.push(`${name}/last_change_date is not a regular file: when the configuration changed is unknown`);
  } catch (error) {
    const why = errorCode(error) === 'ENOENT' ? 'is missing (never deployed?)' : `cannot be read (${describeError(error)})`;
    warnings.push(`${name}/last_change_date ${why}: when the configuration changed is unknown`);
  }
  return null;
}

/**
 * The logs status needs (log-cache.ts, neededLogs): remembered in `cache`
 * when logs/ did not change since, else read (readLogs) and remembered.
 * The directory is looked at before it is read: a change while it is read
 * shows in its next stat.
 */
function readNeededLogs(dir: string, name: string, context: LogsContext, problems: string[], warnings: string[], cache: LogCache | undefined): LogEntry[] {
  const readStartMs = Date.now();
  const stats = cache ? statOrUndefined(dir) : undefined;
  const cached =
    stats &&
    cache?.lookup(
      name,
      stats,
      context.lastChangeMs,
      (log) => stillTheLog(`${dir}/${log.fileName}`, log, context.sizeLimit),
      (listing) => sameListing(dir, listing),
      readStartMs,
    );
  if (cached) {
    problems.push(...cached.problems);
    warnings.push(...cached.warnings);
    return cached.logs;
  }
  const found: Found = { problems: [], warnings: [], rejected: [] };
  const logs = neededLogs(readLogs(dir, name, context, found), context.lastChangeMs);
  problems.push(...found.problems);
  warnings.push(...found.warnings);
  // The names' digest only for a cache: without one (--no-cache, bento notify) nothing compares it.
  if (cache && stats?.isDirectory() && found.names) {
    cache.store(name, stats, readStartMs, context.lastChangeMs, logs, found.problems, found.warnings, { namesDigest: logNamesDigest(found.names), rejected: found.rejected });
  }
  return logs;
}

/**
 * Whether `dir` holds the log names it held (`listing`: a heartbeat renamed
 * in adds none) and its rejected files are the same files: the prune
 * replaces one over the size limit by a short log under the same name.
 */
function sameListing(dir: string, listing: Listing): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  if (logNamesDigest(names) !== listing.namesDigest) return false;
  return listing.rejected.every(([fileName, ino, size, mtimeMs, ctimeMs]) => {
    const stats = lstatOrError(`${dir}/${fileName}`);
    return stats !== undefined && !(stats instanceof Error) && stats.ino === ino && stats.size === size && stats.mtimeMs === mtimeMs && stats.ctimeMs === ctimeMs;
  });
}

/** What reading a logs/ found besides its logs: what a cache's Listing is made of. */
interface Found {
  problems: string[];
  warnings: string[];
  /** What readdir listed; absent when logs/ could not be listed. */
  names?: string[];
  rejected: FileStamp[];
}

/**
 * The heartbeat in logs/ (docs/protocol.md §5a): when it arrived, from its
 * lstat (a regular file, or nothing), and what it says, read without
 * following a link and no more than HEARTBEAT_READ_BYTES of it, or
 * remembered in `cache` while it is the same file.
 */
function readHeartbeat(file: string, name: string, warnings: string[], cache: LogCache | undefined): HeartbeatRead | null {
  const stats = lstatOrError(file);
  if (stats === undefined) return null;
  if (stats instanceof Error) {
    warnings.push(`${name}/logs/${HEARTBEAT_FILE} cannot be read: ${describeError(stats)}`);
    return null;
  }
  if (!stats.isFile()) {
    warnings.push(`${name}/logs/${HEARTBEAT_FILE} is not a regular file: ignored`);
    return null;
  }
  const receivedMs = receivedAtMs(stats);
  const remembered = cache?.lookupHeartbeat(name, stats);
  if (remembered) return { receivedMs, says: remembered };
  const says = stats.size > HEARTBEAT_READ_BYTES ? {} : parseHeartbeat(readHeartbeatText(file));
  cache?.storeHeartbeat(name, stats, says);
  return { receivedMs, says };
}

/** One buffer for every heartbeat read: reads are synchronous, one at a time (10,000 allocations saved at 10,000 systems). */
const HEARTBEAT_BUFFER = Buffer.alloc(HEARTBEAT_READ_BYTES);

/** At most HEARTBEAT_READ_BYTES of the heartbeat `file` as text, opened without following a link; '' when it cannot be read. */
function readHeartbeatText(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    return HEARTBEAT_BUFFER.toString('utf8', 0, readSync(fd, HEARTBEAT_BUFFER, 0, HEARTBEAT_READ_BYTES, 0));
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether a log a cache entry names is still in logs/ as it was read: a
 * regular file received at the same time, of a size status reads. A machine
 * cannot set a file's times (the SFTP server refuses setstat,
 * docs/protocol.md §9), so a log rewritten since has another mtime; its
 * content was checked when it was read.
 */
function stillTheLog(file: string, log: LogEntry, sizeLimit: number): boolean {
  const stats = lstatOrError(file);
  if (stats === undefined || stats instanceof Error) return false;
  return stats.isFile() && receivedAtMs(stats) === log.mtimeMs && sizeProblem(stats.size, sizeLimit) === undefined;
}

interface LogsContext {
  lastChangeMs: number | null;
  sizeLimit: number;
}

/** A well-named regular file of logs/, before its content is checked. */
interface Candidate extends LogEntry {
  size: number;
  stamp: FileStamp;
}

/**
 * The logs of one system. Entries that are not whole logs (another name, not
 * a regular file, empty, not gzip, cut short, over the size limit) are named
 * in a warning and left out: they never change the verdict the real logs
 * give (docs/protocol.md §7). Only an unreadable logs/ or entry makes the
 * system unknown. Temporary upload names are skipped silently.
 */
function readLogs(dir: string, name: string, context: LogsContext, found: Found): LogEntry[] {
  const { problems, warnings } = found;
  let entries: string[];
  try {
    // Plain names, no Dirent objects: the lstat below tells the file type
    // anyway. logs/ itself is followed if it is a link: it sits in the
    // root-owned system directory, out of the client's reach.
    entries = readdirSync(dir);
  } catch (error) {
    problems.push(errorCode(error) === 'ENOTDIR' ? `${name}/logs is not a directory` : `${name}/logs cannot be read: ${describeError(error)}`);
    return [];
  }
  found.names = entries;

  // Only the first few are quoted: there may be thousands.
  const ignored: string[] = [];
  let ignoredCount = 0;
  const ignore = (describe: () => string) => {
    if (ignoredCount++ < QUOTED_BAD_NAMES) ignored.push(describe());
  };
  const candidates: Candidate[] = [];
  const futureMs = Date.now() + FUTURE_TOLERANCE_MS;
  for (const fileName of entries) {
    // An upload in progress, or one that failed half way, and the heartbeat: never a log.
    if (isUploadTemporary(fileName) || fileName === HEARTBEAT_FILE) continue;
    const parsed = parseLogName(fileName);
    if (!parsed.ok) {
      ignore(() => `${JSON.stringify(truncate(fileName))} (${parsed.reason})`);
      continue;
    }
    const result = lstatOrError(`${dir}/${fileName}`);
    if (result === undefined) continue; // deleted since readdir (a log rotation, say): simply gone
    if (result instanceof Error) problems.push(`${name}/logs/${fileName} cannot be read: ${describeError(result)}`);
    else if (!result.isFile()) {
      found.rejected.push(fileStamp(fileName, result));
      ignore(() => `${JSON.stringify(fileName)} (not a regular file)`);
    } else {
      const problem = sizeProblem(result.size, context.sizeLimit);
      if (problem) {
        found.rejected.push(fileStamp(fileName, result));
        ignore(() => `${JSON.stringify(fileName)} (${problem})`);
      } else {
        if (result.mtimeMs > futureMs) {
          warnings.push(
            `${name}/logs/${fileName} has a modification time in the future (${new Date(result.mtimeMs).toISOString()}): it counts as received when the server last changed it (${new Date(result.ctimeMs).toISOString()}), so it does not outrank the logs sent after it`,
          );
        }
        candidates.push({ fileName, log: parsed.log, mtimeMs: receivedAtMs(result), size: result.size, stamp: fileStamp(fileName, result) });
      }
    }
  }
  const logs = keepWholeLogs(dir, candidates, context.lastChangeMs, (candidate, problem) => {
    found.rejected.push(candidate.stamp);
    ignore(() => `${JSON.stringify(candidate.fileName)} (${problem})`);
  });
  if (ignoredCount > 0) {
    const more = ignoredCount > QUOTED_BAD_NAMES ? ` and ${ignoredCount - QUOTED_BAD_NAMES} more` : '';
    const what = ignoredCount === 1 ? 'an entry that is not a log' : `${ignoredCount} entries that are not logs`;
    warnings.push(`${name}/logs holds ${what} (ignored): ${ignored.join(', ')}${more}`);
  }
  return logs;
}

/**
 * Opens the logs a verdict rests on — every log newer than last_change_date
 * (they are counted) and the latest whole one (its result is the state) —
 * and leaves out those that are not whole gzip files. Older logs are not
 * opened: no rule reads them.
 */
function keepWholeLogs(dir: string, candidates: Candidate[], lastChangeMs: number | null, reject: (candidate: Candidate, problem: string) => void): LogEntry[] {
  const checked = new Map<Candidate, boolean>();
  const isWhole = (candidate: Candidate): boolean => {
    let whole = checked.get(candidate);
    if (whole === undefined) {
      const problem = gzipProblemOf(`${dir}/${candidate.fileName}`, candidate.size);
      if (problem) reject(candidate, problem);
      whole = problem === undefined;
      checked.set(candidate, whole);
    }
    return whole;
  };
  if (lastChangeMs !== null) for (const candidate of candidates) if (candidate.mtimeMs > lastChangeMs) isWhole(candidate);
  for (;;) {
    let latest: Candidate | undefined;
    for (const candidate of candidates) if (checked.get(candidate) !== false && (!latest || isLaterLog(candidate, latest))) latest = candidate;
    if (!latest || isWhole(latest)) break;
  }
  return candidates.filter((candidate) => checked.get(candidate) !== false).map(({ fileName, log, mtimeMs }) => ({ fileName, log, mtimeMs }));
}

/**
 * Why status would not read the log `file` of `size` bytes (empty, over the
 * size limit, not a whole gzip file), or undefined: a log status decides
 * from. The prune asks it too, so that it keeps the log status falls back to.
 */
export function unreadableLogProblem(file: string, size: number, sizeLimit: number): string | undefined {
  return sizeProblem(size, sizeLimit) ?? gzipProblemOf(file, size);
}

/** Why a log of `size` bytes is not read, by its size alone (known from the lstat); undefined when it may be. */
function sizeProblem(size: number, sizeLimit: number): string | undefined {
  if (size === 0) return 'it is empty';
  if (size > sizeLimit) return `${size} bytes, over the ${sizeLimit}-byte limit: not read`;
  return undefined;
}

/** Reads the first and last bytes of a log; undefined when it looks like a whole gzip file. */
function gzipProblemOf(file: string, size: number): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: the machine owns logs/ and could swap the file for a link since the lstat.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    return `it cannot be opened: ${describeError(error)}`;
  }
  try {
    const head = Buffer.alloc(GZIP_HEAD_BYTES);
    const tail = Buffer.alloc(GZIP_TAIL_BYTES);
    const headRead = readSync(fd, head, 0, GZIP_HEAD_BYTES, 0);
    const tailRead = size >= GZIP_TAIL_BYTES ? readSync(fd, tail, 0, GZIP_TAIL_BYTES, size - GZIP_TAIL_BYTES) : 0;
    return gzipProblem(size, head.subarray(0, headRead), tail.subarray(0, tailRead));
  } catch (error) {
    return `it cannot be read: ${describeError(error)}`;
  } finally {
    closeSync(fd);
  }
}

function lstatOrError(file: string): Stats | Error | undefined {
  try {
    return lstatSync(file, { throwIfNoEntry: false });
  } catch (error) {
    return error as Error;
  }
}

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

