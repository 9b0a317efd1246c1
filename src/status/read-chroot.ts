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
 * since the last run is not read again (log-cache.ts), and those to read
 * are shared with a worker thread when there are many (read-logs.ts).
 *
 * A snapshot holds the logs the rules of docs/protocol.md §7 read — the
 * latest one and every one newer than last_change_date — not the others.
 */
import { existsSync, lstatSync, statSync, type Stats } from 'node:fs';
import { DEFAULTS } from '../config/config.js';
import { describeError, errorCode, UserError } from '../errors.js';
import { LAST_CHANGE_DATE, listChrootDir, LOGS_DIR, REMOVED_MARKER, STATES_FILE, type ChrootListing } from '../protocol/layout.js';
import { readRolloutState, type RolloutState } from '../protocol/rollout-file.js';
import { receivedAtMs, type LogEntry } from '../protocol/log-file.js';
import { readStatesFile, type StatesFile } from '../protocol/states-file.js';
import type { CachedLogs, DirectoryStats, Listing, LogCache } from './log-cache.js';
import { lookHeartbeat, lstatOrError, readLogsDir, readLogsInParallel, sizeProblem, startEarlyWorker, type HeartbeatFound, type LogsResult, type LogsWork, type Sharing } from './read-logs.js';
import { HEARTBEAT_FILE, type Heartbeat } from '../protocol/heartbeat.js';
import { truncate } from '../util/text.js';

export { unreadableLogProblem } from './read-logs.js';

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
 * listed. Asynchronous: a large fleet's logs/ are read on two threads
 * (read-logs.ts).
 */
export async function readChroot(chrootDir: string, options: ReadChrootOptions = {}): Promise<ChrootSnapshot> {
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
  const removedSet = new Set(removed);
  const names = directories.filter((name) => !removedSet.has(name));
  // What the cache answers first, then the logs/ it cannot answer for, read
  // together (on two threads for a large fleet), then each system's heartbeat.
  // With nothing remembered every logs/ is read: the worker boots meanwhile.
  const parallelFrom = options.parallelFrom ?? PARALLEL_FROM;
  const early = names.length >= parallelFrom && (options.cache === undefined || options.cache.isEmpty) ? startEarlyWorker() : undefined;
  const started = names.map((name) => startSystem(chrootDir, name, states, options));
  const works = started.flatMap((system) => (system.work ? [system.work] : []));
  const { results } = await readLogsInParallel(works, works.length >= parallelFrom ? (options.sharing ?? 'shared') : 'here', early);
  let next = 0;
  const systems = started.map((system) => finishSystem(system, system.work ? results[next++] : undefined, options.cache));
  options.cache?.keepOnly(new Set(names));
  for (const system of systems) warnings.push(...system.warnings);

  const rollout = readRollout(chrootDir, warnings);
  const present = new Set(directories);
  for (const [name, entry] of states.entries) {
    if (!present.has(name)) warnings.push(`${STATES_FILE}:${entry.line}: ${name} has no directory in CHROOT_DIR (not shown)`);
  }
  return { systems: systems.map((system) => system.snapshot), removed, warnings, ...(rollout ? { rollout } : {}) };
}

/**
 * Directories to read at which a worker thread shares the work: below,
 * starting one costs about what it saves (bench/README.md).
 */
const PARALLEL_FROM = 2000;

export interface ReadChrootOptions {
  /** Logs bigger than this many bytes are not read (LOG_SIZE_LIMIT of config.sh; its default when unset). */
  logSizeLimit?: number;
  /** Logs read before, to read again only the logs/ directories that changed (the caller saves it). */
  cache?: LogCache;
  /** How many logs/ directories to read make a worker thread share the work (PARALLEL_FROM; tests). */
  parallelFrom?: number;
  /** How they are shared then (read-logs.ts; tests): with the worker, by default. */
  sharing?: Sharing;
}

function isRemoved(chrootDir: string, name: string): boolean {
  // existsSync first: the usual answer, no marker, without building a Stats
  // or an exception (bench/README.md). The marker sits in the root-owned
  // system directory, out of the machine's reach.
  const marker = chrootDir.endsWith('/') ? `${chrootDir}${name}/${REMOVED_MARKER}` : `${chrootDir}/${name}/${REMOVED_MARKER}`;
  if (!existsSync(marker)) return false;
  try {
    return lstatSync(marker, { throwIfNoEntry: false })?.isFile() === true;
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

/** A system read up to its logs: what the cache answered, or the work of reading its logs/. */
interface StartedSystem {
  name: string;
  base: string;
  expected: Expected;
  lastChangeMs: number | null;
  sizeLimit: number;
  problems: string[];
  /** Those of last_change_date. */
  warnings: string[];
  /** logs/ as stat'ed before it was read, and when (with a cache only): the numbers only, a Stats kept would outlive many collections. */
  stats?: DirectoryStats & { directory: boolean };
  readStartMs: number;
  /** What the cache answered; `askedCache`: it was asked already (and answered nothing). */
  cached?: CachedLogs;
  askedCache?: boolean;
  /** Else what is to be read. */
  work?: LogsWork;
}

function startSystem(chrootDir: string, name: string, states: StatesRead, options: ReadChrootOptions): StartedSystem {
  const problems: string[] = [];
  const warnings: string[] = [];
  const expected = decideExpected(name, states, problems);
  // Paths without path.join, which costs measurably at 10,000 systems
  // (bench/README.md): CHROOT_DIR is normalised (config.ts) and a system
  // name one component.
  const base = chrootDir.endsWith('/') ? `${chrootDir}${name}/` : `${chrootDir}/${name}/`;
  const lastChangeMs = readLastChange(base + LAST_CHANGE_DATE, name, warnings);
  const sizeLimit = options.logSizeLimit ?? DEFAULTS.logSizeLimit;
  const system: StartedSystem = { name, base, expected, lastChangeMs, sizeLimit, problems, warnings, readStartMs: Date.now() };
  const dir = base + LOGS_DIR;
  const cache = options.cache;
  // The directory is looked at before it is read: a change while it is read shows in its next stat.
  const stats = cache ? statOrUndefined(dir) : undefined;
  if (!cache || !stats) {
    system.work = { dir, name, lastChangeMs, sizeLimit, digest: false, heartbeat: {} };
    return system;
  }
  system.stats = { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, directory: stats.isDirectory() };
  const expects = cache.expects(name, stats, lastChangeMs);
  if (expects?.unchanged) {
    system.cached = lookUp(cache, system, () => false);
    if (system.cached) return system;
    system.askedCache = true;
  }
  const knownStamp = cache.heartbeatStamp(name);
  system.work = { dir, name, lastChangeMs, sizeLimit, digest: system.stats.directory, ...(expects && !expects.unchanged ? { knownDigest: expects.namesDigest } : {}), heartbeat: knownStamp ? { knownStamp } : {} };
  return system;
}

/** The cache's answer for `system` (LogCache.lookup), its logs/ holding the names it remembers when `sameNames` says so. */
function lookUp(cache: LogCache, system: StartedSystem, sameNames: () => boolean): CachedLogs | undefined {
  const dir = system.base + LOGS_DIR;
  return cache.lookup(
    system.name,
    system.stats as DirectoryStats,
    system.lastChangeMs,
    (log) => stillTheLog(`${dir}/${log.fileName}`, log, system.sizeLimit),
    (listing) => sameNames() && sameRejected(dir, listing),
    system.readStartMs,
  );
}

/**
 * The rest of `system`: its logs from the cache or from `result` (what
 * reading its logs/ found, remembered in `cache`), and its heartbeat.
 */
function finishSystem(system: StartedSystem, result: LogsResult | undefined, cache: LogCache | undefined): SystemRead {
  const { name, problems, warnings } = system;
  let cached = system.cached;
  if (!cached && !system.askedCache && cache && system.stats && result) {
    // The names it remembers, or other ones (then read already): the entry decides, or is a miss.
    const sameNames = result.kind === 'same-names';
    cached = lookUp(cache, system, () => sameNames);
    // The same names, but a log it names is not there as it was: read now.
    if (!cached && result.kind === 'same-names') result = { ...readLogsDir({ ...(system.work as LogsWork), knownDigest: undefined, heartbeat: undefined }), heartbeat: result.heartbeat };
  }
  let logs: LogEntry[];
  if (cached) {
    problems.push(...cached.problems);
    warnings.push(...cached.warnings);
    logs = cached.logs;
  } else if (result?.kind === 'read') {
    problems.push(...result.problems);
    warnings.push(...result.warnings);
    logs = result.logs;
    // A warning of a log dated in the future holds until that time, not while logs/ stays as it is.
    if (cache && system.stats?.directory && result.namesDigest !== undefined && !result.untilLater) {
      cache.store(name, system.stats, system.readStartMs, system.lastChangeMs, logs, result.problems, result.warnings, { namesDigest: result.namesDigest, rejected: result.rejected });
    }
  } else {
    logs = [];
  }
  // Looked at with the logs when they were read, else now.
  const heartbeatFile = `${system.base}${LOGS_DIR}/${HEARTBEAT_FILE}`;
  const found = result?.heartbeat ?? lookHeartbeat(heartbeatFile, cache?.heartbeatStamp(name));
  const heartbeat = heartbeatOf(found, heartbeatFile, name, warnings, cache);
  // Every problem is also a warning, so the user learns why a row says "unknown".
  warnings.push(...problems);
  return { snapshot: { name, expected: system.expected, lastChangeMs: system.lastChangeMs, logs, problems, heartbeat }, warnings };
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
 * Whether the files of `listing` that were not read as logs are the same
 * files: the prune replaces one over the size limit by a short log under
 * the same name.
 */
function sameRejected(dir: string, listing: Listing): boolean {
  return listing.rejected.every(([fileName, ino, size, mtimeMs, ctimeMs]) => {
    const stats = lstatOrError(`${dir}/${fileName}`);
    return stats !== undefined && !(stats instanceof Error) && stats.ino === ino && stats.size === size && stats.mtimeMs === mtimeMs && stats.ctimeMs === ctimeMs;
  });
}

/**
 * The heartbeat in logs/ (docs/protocol.md §5a) as `found` (lookHeartbeat,
 * read-logs.ts): when it arrived, from its lstat (a regular file, or
 * nothing), and what it says, or what `cache` remembers while it is the
 * same file.
 */
function heartbeatOf(found: HeartbeatFound, file: string, name: string, warnings: string[], cache: LogCache | undefined): HeartbeatRead | null {
  switch (found.kind) {
    case 'none':
      return null;
    case 'unreadable':
      warnings.push(`${name}/logs/${HEARTBEAT_FILE} cannot be read: ${found.why}`);
      return null;
    case 'not-a-file':
      warnings.push(`${name}/logs/${HEARTBEAT_FILE} is not a regular file: ignored`);
      return null;
    case 'file': {
      const [ino, size, mtimeMs, ctimeMs] = found.stamp;
      const stats = { ino, size, mtimeMs, ctimeMs };
      const remembered = cache?.lookupHeartbeat(name, stats);
      if (remembered) return { receivedMs: found.receivedMs, says: remembered };
      // Its text unread (the file a cache named, forgotten since): looked at again.
      if (found.says === undefined) return heartbeatOf(lookHeartbeat(file), file, name, warnings, cache);
      cache?.storeHeartbeat(name, stats, found.says);
      return { receivedMs: found.receivedMs, says: found.says };
    }
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

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

