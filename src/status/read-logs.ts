/**
 * Reading one system's logs/ (docs/protocol.md §5, §7): its names, an lstat
 * of each well-named entry, the ends of the few logs a verdict rests on.
 * read-chroot.ts decides which directories a LogCache cannot answer for
 * and hands them here as LogsWork; what comes back (LogsResult) is plain
 * data, so that the work can be shared with a worker thread.
 *
 * A cold run of a large fleet is one lstat per log, and no shortcut from
 * the names or the directory's mtime is sound: a machine may write a log
 * in place (SFTP `open` and `write` are on its allow list, §9: the
 * original client's plain `put`), which moves the file's mtime and ctime
 * and not its directory's, so any log may be the latest whatever its name
 * says; and the warnings name every entry that is empty, over the size
 * limit or dated in the future, which only its lstat tells. So the reading
 * is shared instead: with a worker thread (readLogsInParallel), both cores
 * take the next directory from one shared counter until none is left
 * (bench/README.md for the figures).
 *
 * Everything below logs/ is hostile input; nothing here throws for it.
 */
import { closeSync, constants, existsSync, lstatSync, openSync, readdirSync, readSync, type Stats } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { describeError, errorCode } from '../errors.js';
import { logNameProblem, parseLogName } from '../protocol/log-name.js';
import { fileTimeText, FUTURE_TOLERANCE_MS, GZIP_HEAD_BYTES, GZIP_TAIL_BYTES, gzipProblem, isLaterLog, isUploadTemporary, receivedAtMs, type LogEntry } from '../protocol/log-file.js';
import { HEARTBEAT_FILE, HEARTBEAT_READ_BYTES, parseHeartbeat, type Heartbeat } from '../protocol/heartbeat.js';
import { fileStamp, logNamesDigest, type FileStamp } from './log-cache.js';
import { truncate } from '../util/text.js';

/** Bad log names quoted in one warning; the rest are counted. */
const QUOTED_BAD_NAMES = 3;

/** One logs/ directory to read. */
export interface LogsWork {
  /** Its path. */
  dir: string;
  /** The system's name, for the messages. */
  name: string;
  /** mtime of the system's last_change_date (null: missing): which logs are needed. */
  lastChangeMs: number | null;
  /** Logs bigger than this many bytes are not read. */
  sizeLimit: number;
  /** Also give the digest of its log names (logNamesDigest): a cache will keep it. */
  digest: boolean;
  /** The digest of the names a cache remembers: when the names are still those, nothing more is read. */
  knownDigest?: string;
  /** Also look at its heartbeat (lookHeartbeat), whose text a cache remembers while its file has this HeartbeatStamp. */
  heartbeat?: { knownStamp?: HeartbeatStamp };
}

/** A heartbeat file's ino, size, mtimeMs, ctimeMs: while they stay, it is the file read. */
export type HeartbeatStamp = [ino: number, size: number, mtimeMs: number, ctimeMs: number];

/** What logs/heartbeat is (docs/protocol.md §5a), as lookHeartbeat found it. */
export type HeartbeatFound =
  | { kind: 'none' }
  | { kind: 'unreadable'; why: string }
  | { kind: 'not-a-file' }
  /** `says`: what its text says, unless it is the file `knownStamp` names (its text not read again). */
  | { kind: 'file'; stamp: HeartbeatStamp; receivedMs: number; says?: Heartbeat };

/**
 * The heartbeat `file`: its lstat (a regular file, or nothing) and, unless
 * it is the file `knownStamp` names, what it says, read without following a
 * link and no more than HEARTBEAT_READ_BYTES of it.
 */
export function lookHeartbeat(file: string, knownStamp?: HeartbeatStamp): HeartbeatFound {
  const stats = lstatOrError(file);
  if (stats === undefined) return { kind: 'none' };
  if (stats instanceof Error) return { kind: 'unreadable', why: describeError(stats) };
  if (!stats.isFile()) return { kind: 'not-a-file' };
  const stamp: HeartbeatStamp = [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
  const found: HeartbeatFound = { kind: 'file', stamp, receivedMs: receivedAtMs(stats) };
  if (knownStamp && knownStamp[0] === stamp[0] && knownStamp[1] === stamp[1] && knownStamp[2] === stamp[2] && knownStamp[3] === stamp[3]) return found;
  found.says = stats.size > HEARTBEAT_READ_BYTES ? {} : parseHeartbeat(readHeartbeatText(file));
  return found;
}

/** One buffer for every heartbeat read on a thread: reads are synchronous, one at a time (10,000 allocations saved at 10,000 systems). */
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

export type LogsResult = (
  /** It holds the names `knownDigest` says: the cache's entry decides. */
  | { kind: 'same-names' }
  | {
      kind: 'read';
      /** The logs status needs (neededLogs). */
      logs: LogEntry[];
      /** Why the system's state cannot be trusted (an unreadable logs/ or entry). */
      problems: string[];
      warnings: string[];
      /** The names' digest, when asked for and logs/ could be listed. */
      namesDigest?: string;
      /** The files named like logs that were not read as logs. */
      rejected: FileStamp[];
      /** A log dated in the future was warned about: true only until then, so not to be remembered. */
      untilLater?: true;
    }
) & {
  /** Its heartbeat, looked at after the logs, when the work asked. */
  heartbeat?: HeartbeatFound;
};

/** Reads the logs/ of `work`, then looks at its heartbeat when asked (see LogsWork). */
export function readLogsDir(work: LogsWork): LogsResult {
  const result = readLogsOnly(work);
  if (work.heartbeat) result.heartbeat = lookHeartbeat(`${work.dir}/${HEARTBEAT_FILE}`, work.heartbeat.knownStamp);
  return result;
}

function readLogsOnly(work: LogsWork): LogsResult {
  const problems: string[] = [];
  let names: string[];
  try {
    // Plain names, no Dirent objects: the lstat below tells the file type
    // anyway. logs/ itself is followed if it is a link: it sits in the
    // root-owned system directory, out of the client's reach.
    names = readdirSync(work.dir);
  } catch (error) {
    problems.push(errorCode(error) === 'ENOTDIR' ? `${work.name}/logs is not a directory` : `${work.name}/logs cannot be read: ${describeError(error)}`);
    return { kind: 'read', logs: [], problems, warnings: [], rejected: [] };
  }
  const digest = work.digest || work.knownDigest !== undefined ? logNamesDigest(names) : undefined;
  if (work.knownDigest !== undefined && digest === work.knownDigest) return { kind: 'same-names' };
  const warnings: string[] = [];
  const rejected: FileStamp[] = [];
  const future = { seen: false };
  const logs = readLogs(work, names, problems, warnings, rejected, future);
  return { kind: 'read', logs, problems, warnings, ...(work.digest && digest !== undefined ? { namesDigest: digest } : {}), rejected, ...(future.seen ? { untilLater: true as const } : {}) };
}

/**
 * A well-named regular file of logs/, before its content is checked: what
 * its name says is parsed only for the few logs kept (neededLogs), not for
 * the hundred a directory may hold.
 */
interface Candidate {
  fileName: string;
  /** When the server received it (receivedAtMs). */
  mtimeMs: number;
  size: number;
  ino: number;
  mtimeStat: number;
  ctimeMs: number;
  /** Whether it is a whole gzip file: undefined until it is opened (keepWholeLogs). */
  whole: boolean | undefined;
}

function stampOfCandidate(candidate: Candidate): FileStamp {
  return [candidate.fileName, candidate.ino, candidate.size, candidate.mtimeStat, candidate.ctimeMs];
}

/**
 * The logs of one system, from the `names` of its logs/. Entries that are
 * not whole logs (another name, not a regular file, empty, not gzip, cut
 * short, over the size limit) are named in a warning and left out: they
 * never change the verdict the real logs give (docs/protocol.md §7). Only an
 * unreadable entry makes the system unknown. Temporary upload names and the
 * heartbeat are skipped silently. Returns the logs status needs (neededLogs).
 */
function readLogs(work: LogsWork, names: readonly string[], problems: string[], warnings: string[], rejected: FileStamp[], future: { seen: boolean }): LogEntry[] {
  const { dir, name, sizeLimit } = work;
  // Only the first few are quoted: there may be thousands.
  const ignored: string[] = [];
  let ignoredCount = 0;
  const ignore = (describe: () => string) => {
    if (ignoredCount++ < QUOTED_BAD_NAMES) ignored.push(describe());
  };
  const candidates: Candidate[] = [];
  const futureMs = Date.now() + FUTURE_TOLERANCE_MS;
  const prefix = `${dir}/`;
  for (const fileName of names) {
    // An upload in progress, or one that failed half way, and the heartbeat: never a log.
    if (fileName === HEARTBEAT_FILE || isUploadTemporary(fileName)) continue;
    const nameProblem = logNameProblem(fileName);
    if (nameProblem !== undefined) {
      ignore(() => `${JSON.stringify(truncate(fileName))} (${nameProblem})`);
      continue;
    }
    const result = lstatOrError(prefix + fileName);
    if (result === undefined) continue; // deleted since readdir (a log rotation, say): simply gone
    if (result instanceof Error) problems.push(`${name}/logs/${fileName} cannot be read: ${describeError(result)}`);
    else if (!result.isFile()) {
      rejected.push(fileStamp(fileName, result));
      ignore(() => `${JSON.stringify(fileName)} (not a regular file)`);
    } else {
      const problem = sizeProblem(result.size, sizeLimit);
      if (problem) {
        rejected.push(fileStamp(fileName, result));
        ignore(() => `${JSON.stringify(fileName)} (${problem})`);
      } else {
        if (result.mtimeMs > futureMs) {
          future.seen = true;
          warnings.push(
            `${name}/logs/${fileName} has a modification time in the future (${fileTimeText(result.mtimeMs)}): it counts as received when the server last changed it (${fileTimeText(result.ctimeMs)}), so it does not outrank the logs sent after it`,
          );
        }
        candidates.push({ fileName, mtimeMs: receivedAtMs(result), size: result.size, ino: result.ino, mtimeStat: result.mtimeMs, ctimeMs: result.ctimeMs, whole: undefined });
      }
    }
  }
  const logs = keepWholeLogs(dir, candidates, work.lastChangeMs, (candidate, problem) => {
    rejected.push(stampOfCandidate(candidate));
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
 * opened: no rule reads them. Returns the logs status needs (neededLogs):
 * the latest whole one, and the whole ones newer than last_change_date.
 */
function keepWholeLogs(dir: string, candidates: Candidate[], lastChangeMs: number | null, reject: (candidate: Candidate, problem: string) => void): LogEntry[] {
  const isWhole = (candidate: Candidate): boolean => {
    if (candidate.whole === undefined) {
      const problem = gzipProblemOf(`${dir}/${candidate.fileName}`, candidate.size);
      if (problem) reject(candidate, problem);
      candidate.whole = problem === undefined;
    }
    return candidate.whole;
  };
  if (lastChangeMs !== null) for (const candidate of candidates) if (candidate.mtimeMs > lastChangeMs) isWhole(candidate);
  for (;;) {
    let latest: Candidate | undefined;
    for (const candidate of candidates) if (candidate.whole !== false && (!latest || isLaterLog(candidate, latest))) latest = candidate;
    if (!latest || isWhole(latest)) {
      // In the order of the directory, as neededLogs keeps them.
      const needed: LogEntry[] = [];
      for (const candidate of candidates) {
        if (candidate !== latest && !(lastChangeMs !== null && candidate.mtimeMs > lastChangeMs && candidate.whole === true)) continue;
        // Its name was checked (logNameProblem): it parses.
        const parsed = parseLogName(candidate.fileName);
        if (parsed.ok) needed.push({ fileName: candidate.fileName, log: parsed.log, mtimeMs: candidate.mtimeMs });
      }
      return needed;
    }
  }
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
export function sizeProblem(size: number, sizeLimit: number): string | undefined {
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

/** The lstat of `file`; undefined when it does not exist, the error when it cannot be taken. */
export function lstatOrError(file: string): Stats | Error | undefined {
  try {
    return lstatSync(file, { throwIfNoEntry: false });
  } catch (error) {
    return error as Error;
  }
}

/**
 * What a worker thread is given: the shared cells both threads count with,
 * and the works, or none yet (a worker started early, startReadingWorker:
 * they come in its first message).
 */
interface WorkerInput {
  bentoReadLogs: true;
  works?: LogsWork[];
  /** Int32Array cells: [next work to take, WorkerState]. */
  shared: SharedArrayBuffer;
}

/** The worker's state cell: it starts only when the main thread has not finished the works alone. */
const NOT_STARTED = 0;
const STARTED = 1;
const CANCELLED = 2;
const NEXT = 0;
const STATE = 1;

/**
 * The module a worker thread runs: this one, built (dist/status/read-logs.js).
 * Bundled (src/main.ts), this code is in a chunk of dist/: the worker
 * runs the module tsc built, which the build keeps beside the chunks.
 */
const WORKER_MODULE = /\/status\/read-logs\.[jt]s$/.test(import.meta.url) ? new URL(import.meta.url) : new URL('./status/read-logs.js', import.meta.url);

/**
 * How readLogsInParallel shares the works: `here`, all on this thread;
 * `shared`, with a worker thread, each taking the next work from a shared
 * counter; `worker`, all by the worker but what it does not answer (tests).
 */
export type Sharing = 'here' | 'shared' | 'worker';

export interface LogsRead {
  /** The result of each work, in the order of the works. */
  results: LogsResult[];
  /** How many the worker thread answered (tests, benchmarks). */
  byWorker: number;
}

/**
 * A worker thread started before its works are known, so that it boots
 * (tens of milliseconds: bench/README.md) while the caller looks at each
 * system; readLogsInParallel gives it the works, or ends it.
 */
export interface EarlyWorker {
  shared: SharedArrayBuffer;
  worker: RunningWorker;
}

/** A worker for readLogsInParallel, started now; undefined when none can be. */
export function startEarlyWorker(): EarlyWorker | undefined {
  const shared = new SharedArrayBuffer(8);
  const worker = startWorker({ bentoReadLogs: true, shared }, true);
  return worker ? { shared, worker } : undefined;
}

/**
 * Reads every work of `works` (readLogsDir), sharing them with a worker
 * thread that runs this module as `sharing` says: `early`, when one was
 * started already (else a new one). Whatever the worker does not answer (it
 * cannot start, it fails) is read here; the results are the same either way.
 */
export async function readLogsInParallel(works: LogsWork[], sharing: Sharing, early?: EarlyWorker): Promise<LogsRead> {
  if (early && sharing === 'here') void early.worker.terminate();
  const results: (LogsResult | undefined)[] = new Array<LogsResult | undefined>(works.length);
  const shared = early && sharing !== 'here' ? early.shared : new SharedArrayBuffer(8);
  const cells = new Int32Array(shared);
  let worker: RunningWorker | undefined;
  if (sharing !== 'here') {
    worker = early?.worker ?? startWorker({ bentoReadLogs: true, works, shared });
    if (early) early.worker.give(works);
  }
  for (;;) {
    if (sharing === 'worker' && worker) break;
    const index = Atomics.add(cells, NEXT, 1);
    const work = works[index];
    if (work === undefined) break;
    results[index] = readLogsDir(work);
  }
  let byWorker = 0;
  if (worker) {
    // Not started yet: it will take nothing, and is not waited for.
    if (sharing === 'shared' && Atomics.compareExchange(cells, STATE, NOT_STARTED, CANCELLED) === NOT_STARTED) void worker.terminate();
    else {
      for (const [index, result] of await worker.answers) results[index] = result;
      byWorker = (await worker.answers).length;
    }
  }
  // What the worker took and did not answer.
  return { results: results.map((result, index) => result ?? readLogsDir(works[index] as LogsWork)), byWorker };
}

interface RunningWorker {
  answers: Promise<[number, LogsResult][]>;
  /** The works of a worker started without them. */
  give(works: LogsWork[]): void;
  terminate(): Promise<number>;
}

/** A worker thread running this module on `input`; `waiting`: not keeping the process alive until it is given works. */
function startWorker(input: WorkerInput, waiting = false): RunningWorker | undefined {
  // Only this module built alone: not the sources under a test runner, and
  // not a bundle, whose top level would start the whole CLI in the worker.
  if (WORKER_MODULE.protocol !== 'file:' || !WORKER_MODULE.pathname.endsWith('/status/read-logs.js') || !existsSync(fileURLToPath(WORKER_MODULE))) return undefined;
  let worker: Worker;
  try {
    worker = new Worker(WORKER_MODULE, { workerData: input });
  } catch {
    return undefined;
  }
  const answers = new Promise<[number, LogsResult][]>((resolve) => {
    worker.once('message', (message: [number, LogsResult][]) => resolve(message));
    worker.once('error', () => resolve([]));
    worker.once('exit', () => resolve([]));
  });
  if (waiting) worker.unref();
  const give = (works: LogsWork[]) => {
    worker.ref();
    worker.postMessage(works);
  };
  return { answers, give, terminate: () => worker.terminate() };
}

/**
 * In a worker thread started by readLogsInParallel (or startEarlyWorker,
 * then with the works of its first message): takes works until none is
 * left, then sends what it read.
 */
function runWorker(input: WorkerInput, works: LogsWork[]): void {
  const cells = new Int32Array(input.shared);
  const answers: [number, LogsResult][] = [];
  if (Atomics.compareExchange(cells, STATE, NOT_STARTED, STARTED) === NOT_STARTED) {
    for (;;) {
      const index = Atomics.add(cells, NEXT, 1);
      const work = works[index];
      if (work === undefined) break;
      answers.push([index, readLogsDir(work)]);
    }
  }
  parentPort?.postMessage(answers);
}

if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.bentoReadLogs === true) {
  const input = workerData as WorkerInput;
  if (input.works) runWorker(input, input.works);
  else parentPort?.once('message', (works: LogsWork[]) => runWorker(input, works));
}
