/**
 * What status read of each machine's logs/, remembered between runs, so that
 * a fleet of 10,000 machines with 100 logs each is not 1,000,000 lstat calls
 * on every `bento status` (seconds: bench/README.md) but 10,000 stat calls of
 * the logs/ directories.
 *
 * A machine's entry holds only the logs status needs (the latest one and
 * every one newer than last_change_date, docs/protocol.md §7) and the
 * problems and warnings found in logs/ (stray entries, logs that are not
 * whole gzip files, over the size limit: read-chroot.ts). The size limit is
 * the cache's key: read with another, it is not used. It is used while logs/ is the same directory with
 * the same mtime, ctime and size as when it was read: adding, removing or
 * renaming an entry changes them. A directory that changed is listed again,
 * and the entry is still used when it holds the same log names (its names'
 * digest, logNamesDigest): every poll renames the machine's heartbeat into
 * logs/ (docs/protocol.md §5a), which changes the directory and no log, and
 * a listing is cheaper by far than an lstat of every log. It is not used when last_change_date went
 * back in time, or appeared: the logs needed then may be older ones. When
 * last_change_date moved forward (a deploy), the logs needed are among those
 * remembered.
 *
 * A directory changed less than RACY_MS before it was read is not
 * remembered: a change within the same timestamp tick would not show in its
 * mtime (as git does with its index). What a cache cannot see: a log
 * rewritten in place under a name it already had (its mtime changes, the
 * directory's does not). bento's client renames every log into place
 * (docs/protocol.md §5), which changes the directory; the original client's
 * plain `put` of a log sent again does not. Its new mtime shows once the
 * directory changes again; a machine can only change what status says
 * about itself that way; `bento status --no-cache` reads every log.
 *
 * The file is JSON in the user's cache directory, one per CHROOT_DIR. It is
 * derived data: a file that is missing, unreadable, of another version or
 * malformed is ignored and written again. Names in it came from the
 * machines and are treated as such (parsed again, sanitized when printed).
 *
 * What it says decides status's verdict and exit status, so it is trusted
 * only as far as its writer: the directory and the file must belong to the
 * user running status and be writable by nobody else (a cache another user
 * could write, a shared XDG_CACHE_HOME, is not used, and status says so);
 * and an entry is used only when the logs it names are still there as they
 * were read (the caller checks each, `stillThere`): an entry naming a log
 * that is not, or not with that time, is dropped and logs/ read again.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { parseLogName } from '../protocol/log-name.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { sha256 } from '../util/hash.js';
import { isUploadTemporary, selectLatestLog, type LogEntry } from '../protocol/log-file.js';
import { HEARTBEAT_FILE, type Heartbeat } from '../protocol/heartbeat.js';

const VERSION = 4;
/** Changes younger than this when read are not trusted to show in an mtime (FAT has 2 s). */
export const RACY_MS = 2000;

/** What the cache reads of a logs/ directory's stat. */
export type DirectoryStats = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;

/** What the cache reads of a heartbeat file's stat. */
export type FileStats = Pick<Stats, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;

/** dev, ino, size, mtimeMs, ctimeMs of a logs/ directory. */
type DirectoryStamp = [number, number, number, number, number];

/** A system's entry, as an array (the file is read on every run: keys would double its size). */
type Entry = [
  stamp: DirectoryStamp,
  /** mtime of last_change_date when the logs were read (null: missing). */
  lastChangeMs: number | null,
  /** The logs status needed then: file name and server mtime. */
  logs: [string, number][],
  problems: string[],
  warnings: string[],
  /** What logs/ held when it was read, to tell a change that touched no log (Listing). */
  listing: Listing,
];

/** A file as its lstat was: name, ino, size, mtimeMs, ctimeMs. */
export type FileStamp = [name: string, ino: number, size: number, mtimeMs: number, ctimeMs: number];

/**
 * What a logs/ directory held, beyond the logs an entry keeps: the digest
 * of its log names (logNamesDigest), and the files named like logs that
 * were not read as logs (over the size limit, not whole gzip, not regular
 * files), which the server's prune replaces under the same name.
 */
export interface Listing {
  namesDigest: string;
  rejected: FileStamp[];
}

/** The FileStamp of `name`, whose lstat is `stats`. */
export function fileStamp(name: string, stats: Stats): FileStamp {
  return [name, stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
}

/** What a heartbeat said, while its file keeps these ino, size, mtimeMs and ctimeMs. */
type HeartbeatEntry = [ino: number, size: number, mtimeMs: number, ctimeMs: number, says: Heartbeat];

export interface CachedLogs {
  logs: LogEntry[];
  problems: string[];
  warnings: string[];
}

function stampOf(stats: DirectoryStats): DirectoryStamp {
  return [stats.dev, stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs];
}

function sameStamp(a: DirectoryStamp, b: DirectoryStamp): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4];
}

/** The cache file of `chrootDir` in `cacheDir`. */
export function logCacheFile(cacheDir: string, chrootDir: string): string {
  return path.join(cacheDir, `status-${sha256(path.resolve(chrootDir)).slice(0, 16)}.json`);
}

/**
 * Why `stats` (of the cache directory or file) cannot be trusted by the user
 * `uid`: owned by another user, writable by its group or others, not what
 * it should be (a link); undefined when it can.
 */
function ownershipProblem(what: string, stats: Stats, uid: number, kind: 'directory' | 'file'): string | undefined {
  if (kind === 'directory' ? !stats.isDirectory() : !stats.isFile()) return `${what} is not a ${kind}`;
  if (stats.uid !== uid) return `${what} belongs to uid ${stats.uid}, not to the user running status (uid ${uid})`;
  if ((stats.mode & 0o022) !== 0) return `${what} is writable by others (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** Why the cache directory `dir` cannot be used; undefined when it can, or does not exist yet. */
export function cacheDirectoryProblem(dir: string, uid = process.getuid?.() ?? 0): string | undefined {
  let stats: Stats | undefined;
  try {
    stats = lstatSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    // On a path through a file (XDG_CACHE_HOME set to one: ENOTDIR) or a directory this user may not enter (EACCES): status works without it.
    return `${dir} cannot be looked at (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  return stats ? ownershipProblem(dir, stats, uid, 'directory') : undefined;
}

/** The text of the cache file, when it exists and only its user can have written it; throws otherwise. */
function readOwnFile(file: string, uid: number): string {
  // O_NOFOLLOW: a link in its place is not followed; fstat: what was opened is what is checked.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const problem = ownershipProblem(file, fstatSync(fd), uid, 'file');
    if (problem) throw new CacheRefused(problem);
    // Read as bytes, then decoded: several times faster than readFileSync's
    // own utf8 decoding for a file of megabytes (bench/README.md).
    return readFileSync(fd).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

class CacheRefused extends Error {}

export class LogCache {
  private entries = new Map<string, Entry>();
  private heartbeats = new Map<string, HeartbeatEntry>();
  private dirty = false;
  /** Why the cache is not used (not read, not written), to tell the user; undefined when it is. */
  refused?: string;
  /** Whether it is kept between runs (it has a file to be saved to). */
  get keeps(): boolean {
    return this.file !== undefined;
  }

  /** Whether it remembers no logs/ at all (a first run): every one will be read. */
  get isEmpty(): boolean {
    return this.entries.size === 0;
  }

  /** How many lookups were answered, and how many not (tests, benchmarks). */
  hits = 0;
  misses = 0;

  /**
   * The cache saved in `file`; an empty one when it cannot be used. `key`
   * says how logs were read (the size limit): a cache read another way is
   * not used.
   */
  static load(file: string | undefined, key = '', uid = process.getuid?.() ?? 0): LogCache {
    if (!file) return new LogCache(undefined, key);
    const dirProblem = cacheDirectoryProblem(path.dirname(file), uid);
    if (dirProblem) {
      const refused = new LogCache(undefined, key);
      refused.refused = dirProblem;
      return refused;
    }
    const cache = new LogCache(file, key, uid);
    try {
      const data = JSON.parse(readOwnFile(file, uid)) as { version?: unknown; key?: unknown; entries?: unknown; heartbeats?: unknown };
      if (data.version !== VERSION || data.key !== key || typeof data.entries !== 'object' || data.entries === null) return cache;
      for (const [name, entry] of Object.entries(data.entries as Record<string, unknown>)) {
        if (isEntry(entry)) cache.entries.set(name, entry);
      }
      if (typeof data.heartbeats === 'object' && data.heartbeats !== null) {
        for (const [name, entry] of Object.entries(data.heartbeats as Record<string, unknown>)) {
          if (isHeartbeatEntry(entry)) cache.heartbeats.set(name, entry);
        }
      }
    } catch (error) {
      // Missing or broken: start afresh (and write it anew). Written by someone else: not used at all.
      if (error instanceof CacheRefused) {
        const refused = new LogCache(undefined, key);
        refused.refused = error.message;
        return refused;
      }
    }
    return cache;
  }

  constructor(
    private readonly file?: string,
    private readonly key = '',
    private readonly uid = process.getuid?.() ?? 0,
  ) {}

  /**
   * The logs status needs from the logs/ of system `name` (whose stat is
   * `stats`, taken now, at `readStartMs`) when it has not changed since they
   * were read, or `sameListing` says it holds the same log names and the
   * same rejected files (asked only then), with last_change_date now at
   * `lastChangeMs`, and every log the entry names is `stillThere`;
   * undefined otherwise (and an entry that names a log that is not is
   * dropped).
   */
  lookup(
    name: string,
    stats: DirectoryStats,
    lastChangeMs: number | null,
    stillThere: (log: LogEntry) => boolean,
    sameListing: (listing: Listing) => boolean = () => false,
    readStartMs = Date.now(),
  ): CachedLogs | undefined {
    const entry = this.entries.get(name);
    const stamp = stampOf(stats);
    const usable = entry !== undefined && (lastChangeMs === null || (entry[1] !== null && lastChangeMs >= entry[1]));
    const unchanged = usable && sameStamp(entry[0], stamp);
    if (!usable || (!unchanged && !sameListing(entry[5]))) {
      this.misses++;
      return undefined;
    }
    const logs: LogEntry[] = [];
    for (const [fileName, mtimeMs] of entry[2]) {
      const parsed = parseLogName(fileName);
      const log = parsed.ok ? { fileName, log: parsed.log, mtimeMs } : undefined;
      if (!log || !stillThere(log)) {
        this.entries.delete(name);
        this.dirty = true;
        this.misses++;
        return undefined;
      }
      logs.push(log);
    }
    // The same names in a changed directory: its new stamp saves the
    // listing next time, unless the change is too recent to trust (RACY_MS);
    // the names are then compared again.
    if (!unchanged && !isRacy(stats, readStartMs)) {
      entry[0] = stamp;
      this.dirty = true;
    }
    this.hits++;
    return { logs: neededLogs(logs, lastChangeMs), problems: [...entry[3]], warnings: [...entry[4]] };
  }

  /**
   * What lookup needs to answer for system `name` with its logs/ at `stats`
   * and last_change_date at `lastChangeMs`: nothing more when the directory
   * is unchanged (`unchanged`), else its log names to compare with
   * `namesDigest`; undefined when no entry can answer.
   */
  expects(name: string, stats: DirectoryStats, lastChangeMs: number | null): { unchanged: true } | { unchanged: false; namesDigest: string } | undefined {
    const entry = this.entries.get(name);
    if (entry === undefined || !(lastChangeMs === null || (entry[1] !== null && lastChangeMs >= entry[1]))) return undefined;
    return sameStamp(entry[0], stampOf(stats)) ? { unchanged: true } : { unchanged: false, namesDigest: entry[5].namesDigest };
  }

  /** The ino, size, mtimeMs and ctimeMs of the heartbeat file of system `name` whose text it remembers. */
  heartbeatStamp(name: string): [number, number, number, number] | undefined {
    const entry = this.heartbeats.get(name);
    return entry ? [entry[0], entry[1], entry[2], entry[3]] : undefined;
  }

  /** What the heartbeat of system `name` said, while its file (`stats`) is the one read. */
  lookupHeartbeat(name: string, stats: FileStats): Heartbeat | undefined {
    const entry = this.heartbeats.get(name);
    if (!entry || entry[0] !== stats.ino || entry[1] !== stats.size || entry[2] !== stats.mtimeMs || entry[3] !== stats.ctimeMs) return undefined;
    return { ...entry[4] };
  }

  /**
   * Remembers what the heartbeat of `name` (its file's `stats`) said. The
   * client renames every heartbeat into place, a new file each time; one
   * rewritten in place within one ctime tick would go unseen (a machine can
   * only mislead status about itself that way).
   */
  storeHeartbeat(name: string, stats: FileStats, says: Heartbeat): void {
    this.heartbeats.set(name, [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs, { ...says }]);
    this.dirty = true;
  }

  /**
   * Remembers what was read of the logs/ of system `name`: `stats` taken
   * before reading it, `readStartMs` when that was. A directory that changed
   * just before is not remembered (RACY_MS).
   */
  store(
    name: string,
    stats: DirectoryStats,
    readStartMs: number,
    lastChangeMs: number | null,
    logs: readonly LogEntry[],
    problems: readonly string[],
    warnings: readonly string[],
    listing: Listing,
  ): void {
    // Too recent a change: remembered under a stamp that never matches, so
    // only the names' digest can make it used.
    const stamp: DirectoryStamp = isRacy(stats, readStartMs) ? [-1, -1, -1, -1, -1] : stampOf(stats);
    this.entries.set(name, [stamp, lastChangeMs, logs.map((log) => [log.fileName, log.mtimeMs]), [...problems], [...warnings], { namesDigest: listing.namesDigest, rejected: listing.rejected.map((file) => [...file] as FileStamp) }]);
    this.dirty = true;
  }

  /** Forgets the systems not in `present` (gone from CHROOT_DIR). */
  keepOnly(present: ReadonlySet<string>): void {
    for (const map of [this.entries, this.heartbeats]) {
      for (const name of map.keys()) {
        if (!present.has(name)) {
          map.delete(name);
          this.dirty = true;
        }
      }
    }
  }

  /** Writes the cache back when it changed; a cache that cannot be written is simply not kept. */
  save(): void {
    if (!this.file || !this.dirty) return;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      // Made meanwhile by someone else: not written into.
      if (cacheDirectoryProblem(path.dirname(this.file), this.uid)) return;
      writeFileAtomicallySync(this.file, JSON.stringify({ version: VERSION, key: this.key, entries: Object.fromEntries(this.entries), heartbeats: Object.fromEntries(this.heartbeats) }), 0o600, { durable: false });
      this.dirty = false;
    } catch {
      // A read-only home, a full disk: status works without it.
    }
  }
}

/**
 * The logs the rules of docs/protocol.md §7 read: the latest (by server
 * mtime, then name, as states.ts selects it) and every one newer than
 * last_change_date. The others change no state.
 */
export function neededLogs(logs: readonly LogEntry[], lastChangeMs: number | null): LogEntry[] {
  const latest = selectLatestLog(logs);
  return logs.filter((log) => log === latest || (lastChangeMs !== null && log.mtimeMs > lastChangeMs));
}

// The checks below are plain loops: the file is read on every run, and at
// 10,000 systems closures per field cost measurably (bench/README.md).

function isEntry(value: unknown): value is Entry {
  if (!Array.isArray(value) || value.length !== 6) return false;
  const [stamp, lastChangeMs, logs, problems, warnings, listing] = value as unknown[];
  if (!isListing(listing) || !isNumbers(stamp, 5, 0) || !(lastChangeMs === null || typeof lastChangeMs === 'number')) return false;
  if (!Array.isArray(logs)) return false;
  for (const log of logs as unknown[]) if (!Array.isArray(log) || typeof log[0] !== 'string' || typeof log[1] !== 'number') return false;
  return isTexts(problems) && isTexts(warnings);
}

/** An array of `length` whose items from `from` on are numbers. */
function isNumbers(value: unknown, length: number, from: number): boolean {
  if (!Array.isArray(value) || value.length !== length) return false;
  for (let i = from; i < length; i++) if (typeof value[i] !== 'number') return false;
  return true;
}

function isTexts(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const text of value as unknown[]) if (typeof text !== 'string') return false;
  return true;
}

function isListing(value: unknown): value is Listing {
  if (typeof value !== 'object' || value === null) return false;
  const { namesDigest, rejected } = value as { namesDigest?: unknown; rejected?: unknown };
  if (typeof namesDigest !== 'string' || !Array.isArray(rejected)) return false;
  for (const file of rejected as unknown[]) if (!isNumbers(file, 5, 1) || typeof (file as unknown[])[0] !== 'string') return false;
  return true;
}

/** The type of each field a heartbeat entry's `says` may hold. */
const HEARTBEAT_FIELD_TYPES: Readonly<Record<string, string>> = { protocol: 'number', configuration: 'string', running: 'string', booted: 'string', rebootPending: 'boolean', rebootWindow: 'string', rebootWaiting: 'string', rebootedWith: 'string' };

function isHeartbeatEntry(value: unknown): value is HeartbeatEntry {
  if (!Array.isArray(value) || value.length !== 5) return false;
  for (let i = 0; i < 4; i++) if (typeof value[i] !== 'number') return false;
  const says = value[4] as Record<string, unknown> | null;
  if (typeof says !== 'object' || says === null || Array.isArray(says)) return false;
  for (const key in says) {
    if (!Object.hasOwn(HEARTBEAT_FIELD_TYPES, key) || typeof says[key] !== HEARTBEAT_FIELD_TYPES[key]) return false;
  }
  return true;
}

/**
 * What a logs/ directory's stamp stands for, on Linux. Creating, removing
 * or renaming an entry in it (a log arriving, the prune, a heartbeat
 * renamed into place) sets its mtime and ctime to the current time; writing
 * into a file of it changes neither (hence lookup's check of the logs an
 * entry names). That time is the kernel's coarse clock: nanoseconds in the
 * fields, but it moves once a tick (1-10 ms; FAT keeps 2 s), so two changes
 * within one tick leave the same stamp, and a stat taken between them cannot
 * tell the second. A directory replaced by another has another inode. The
 * ctime cannot be set by anyone (a utimes() sets it to now), the mtime only
 * by the directory's owner, and a machine cannot (the SFTP server refuses
 * setstat, docs/protocol.md §9): a machine touching its logs/ makes no
 * change racy, only different. So a stamp whose mtime is RACY_MS older than
 * the read is trusted: any later change sets a later mtime, unless the
 * server's clock is set back by more than RACY_MS meanwhile.
 */
function isRacy(stats: DirectoryStats, readStartMs: number): boolean {
  return stats.mtimeMs > readStartMs - RACY_MS;
}

/**
 * A digest of the names in logs/ that may be logs (`entries`, as readdir
 * lists them): the upload temporaries and the heartbeat left out, which
 * change on every poll and are never logs. The same names give the same
 * digest whatever their order.
 */
export function logNamesDigest(entries: readonly string[]): string {
  // An upload temporary starts with a dot (isUploadTemporary): the regex only for those.
  const names = entries.filter((name) => name !== HEARTBEAT_FILE && !(name.charCodeAt(0) === DOT && isUploadTemporary(name)));
  // readdir lists names sorted already (libuv's scandir): sort() then only checks the order.
  // Each name ended by NUL, which no file name holds: a machine names its
  // files, and one named `a\nb` must not stand for the two names a and b
  // (nor may a digest of the names joined by newlines, as caches written
  // before held, stand for any listing now).
  return sha256(names.length === 0 ? '' : `${names.sort().join('\0')}\0`);
}

const DOT = 0x2e;
