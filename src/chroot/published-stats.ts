/**
 * Deploy's record of the published files it checked: for each system, the
 * lstat of every file of its config/ (device, inode, size, modification and
 * change times in nanoseconds) when its content was known to be the
 * manifest's, so that a deploy with nothing to do hashes only the files
 * whose lstat changed (git's index does the same for a work tree).
 *
 * A file is taken as unchanged without being read only when its change time
 * is safely older than the moment its lstat was taken ("racy" files, git
 * calls them, are hashed anyway): any write, chmod, chown or rename after
 * that lstat gives it a later change time, which no process can set back.
 * Anything that does not match (or a record that is missing, damaged or
 * not trusted) means hashing, as without the record.
 *
 * The same rule dates the manifest of config/ and last_change_date (by the
 * digest they hold and announce: a system found as it was recorded costs a
 * few lstats, nothing read). The digests of generated/'s files are
 * generate's record's (render/generate-record.ts), not this one's.
 *
 * Written only by a deploy that publishes something: one with nothing to do
 * writes nothing. One file per CHROOT_DIR, next to the flake names cache
 * (chroot/flake-names-cache.ts) and with its rules: root's alone, trusted
 * only when nobody else could have written it.
 */
import type { BigIntStats } from 'node:fs';
import { storeBasenameProblem } from '../protocol/store-path.js';
import { parseRootCache, rootCacheFile, writeRootCache } from './root-cache.js';
import { FLAKE_NAMES_CACHE_DIR } from './flake-names-cache.js';

const FORMAT = 'bento published stats 1';

/** One published file: its SHA-256 and its lstat, as decimal strings (dev, ino, size, mtime ns, ctime ns). */
export type RecordedFile = [sha256: string, dev: string, ino: string, size: string, mtimeNs: string, ctimeNs: string];

/** One system's published files, each lstat taken after `statTimeNs` (wall clock, nanoseconds) and before its content was hashed. */
export interface SystemStats {
  statTimeNs: string;
  files: Record<string, RecordedFile>;
  /** config/'s manifest, by the SHA-256 of its text (the assembly's digest): the manifest is then not read. */
  manifest?: RecordedFile;
  /** last_change_date, by the digest it announces (not its own hash): it is then not read. */
  stamp?: RecordedFile;
  /** The system's directory when it held nothing an interrupted deploy leaves (publish.ts, removeLeftovers): it is then not listed. */
  dir?: RecordedDir;
  /** Its logs/ when it held `count` logs (status/prune-logs.ts): not listed again while that is no more than LOG_KEEP. */
  logs?: RecordedLogs;
  /** Files of its flake that deploy built and found to be the system it publishes already (SameSystem): not built again. */
  sameSystem?: SameSystem;
}

/**
 * A flake system's files as assembled (`assembled`: the assembly's digest)
 * that a deploy built into the system its chroot publishes already
 * (`store`, the store path states.txt records, with config/'s manifest of
 * digest `published`, which last_change_date announces): another system of
 * its flake changed, not this one (docs/protocol.md §4). While all three
 * hold, those files are not built again (plan-publication.ts).
 */
export type SameSystem = [assembled: string, published: string, store: string];

/**
 * A directory's lstat, dated by its own `statTimeNs` (taken before it): a
 * directory's modification and change times move whenever an entry is
 * made, removed or renamed in it.
 */
export type RecordedDir = [statTimeNs: string, dev: string, ino: string, size: string, mtimeNs: string, ctimeNs: string];
/** logs/'s lstat (RecordedDir), and how many logs it held. */
export type RecordedLogs = [count: string, ...RecordedDir];

export function publishedStatsPath(chrootDir: string, cacheDir = FLAKE_NAMES_CACHE_DIR): string {
  return rootCacheFile('published-stats', chrootDir, cacheDir);
}

/** The record, by system; empty when there is none, or one that cannot be trusted or read. */
export function readPublishedStats(chrootDir: string, cacheDir = FLAKE_NAMES_CACHE_DIR): Map<string, SystemStats> {
  return parseRootCache(publishedStatsPath(chrootDir, cacheDir), cacheDir, parsePublishedStats, new Map());
}

const DECIMAL = /^(0|[1-9][0-9]{0,30})$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Parses the record's text; anything unexpected makes the whole record empty (every file is hashed). */
export function parsePublishedStats(text: string): Map<string, SystemStats> {
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== FORMAT) return new Map();
  const systems = (parsed as { systems?: unknown }).systems;
  if (typeof systems !== 'object' || systems === null) return new Map();
  const entries = new Map<string, SystemStats>();
  for (const [name, entry] of Object.entries(systems)) {
    const stats = parseSystemStats(entry);
    if (!stats) return new Map();
    entries.set(name, stats);
  }
  return entries;
}

function parseSystemStats(entry: unknown): SystemStats | undefined {
  const { statTimeNs, files, manifest, stamp, dir, logs, sameSystem } = (entry ?? {}) as { statTimeNs?: unknown; files?: unknown; manifest?: unknown; stamp?: unknown; dir?: unknown; logs?: unknown; sameSystem?: unknown };
  if (typeof statTimeNs !== 'string' || !DECIMAL.test(statTimeNs) || typeof files !== 'object' || files === null) return undefined;
  for (const recorded in files) if (!isRecordedFile((files as Record<string, unknown>)[recorded])) return undefined;
  if ((manifest !== undefined && !isRecordedFile(manifest)) || (stamp !== undefined && !isRecordedFile(stamp))) return undefined;
  if ((dir !== undefined && !isDecimals(dir, 6)) || (logs !== undefined && !isDecimals(logs, 7))) return undefined;
  if (sameSystem !== undefined && !isSameSystem(sameSystem)) return undefined;
  const stats: SystemStats = { statTimeNs, files: files as Record<string, RecordedFile> };
  if (manifest !== undefined) stats.manifest = manifest as RecordedFile;
  if (stamp !== undefined) stats.stamp = stamp as RecordedFile;
  if (dir !== undefined) stats.dir = dir as RecordedDir;
  if (logs !== undefined) stats.logs = logs as RecordedLogs;
  if (sameSystem !== undefined) stats.sameSystem = sameSystem as SameSystem;
  return stats;
}

function isSameSystem(value: unknown): boolean {
  if (!Array.isArray(value) || value.length !== 3) return false;
  const [assembled, published, store] = value as unknown[];
  return typeof assembled === 'string' && SHA256.test(assembled) && typeof published === 'string' && SHA256.test(published) && typeof store === 'string' && storeBasenameProblem(store) === undefined;
}

function isDecimals(value: unknown, length: number): boolean {
  return Array.isArray(value) && value.length === length && value.every((item) => typeof item === 'string' && DECIMAL.test(item));
}

function isRecordedFile(recorded: unknown): boolean {
  if (!Array.isArray(recorded) || recorded.length !== 6 || typeof recorded[0] !== 'string' || !SHA256.test(recorded[0])) return false;
  // A loop, not slice().every(): the record holds every published file of the fleet.
  for (let i = 1; i < 6; i++) if (typeof recorded[i] !== 'string' || !DECIMAL.test(recorded[i] as string)) return false;
  return true;
}

export function renderPublishedStats(entries: ReadonlyMap<string, SystemStats>): string {
  const systems = Object.fromEntries([...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ format: FORMAT, systems })}\n`;
}

/**
 * Replaces the record with `entries` when that changes it. A record that
 * cannot be written is no failure (the next deploy hashes); false then.
 */
export function savePublishedStats(chrootDir: string, entries: ReadonlyMap<string, SystemStats>, cacheDir = FLAKE_NAMES_CACHE_DIR): boolean {
  const text = renderPublishedStats(entries);
  if (renderPublishedStats(readPublishedStats(chrootDir, cacheDir)) === text) return true;
  return writeRootCache(publishedStatsPath(chrootDir, cacheDir), cacheDir, text);
}

/**
 * How long after its last write a file is no longer racy, on a file system
 * with fine times (unchangedSinceRecorded's margin, and a little more):
 * a deploy that published waits that long before recording what it wrote.
 */
export const SETTLE_MS = 60;

/** The wall clock now, in nanoseconds (rounded down): taken before the lstats it dates. */
export function statTimeNow(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** A file's record: its content's SHA-256 and its lstat now. */
export function recordFile(digest: string, stats: BigIntStats): RecordedFile {
  return [digest, String(stats.dev), String(stats.ino), String(stats.size), String(stats.mtimeNs), String(stats.ctimeNs)];
}

/**
 * Whether the file whose lstat is `stats` (now) still holds `digest`, by
 * its record alone: the same regular file, unchanged since it was recorded
 * with that digest, and not racy. A change after the lstat of the record
 * gets a change time no earlier than the kernel's clock then, which lags
 * the wall clock by at most a tick (far less than the margin); a file
 * system whose times look like whole milliseconds or coarser (FAT, some
 * network file systems) gets a margin of seconds.
 */
export function unchangedSinceRecorded(recorded: RecordedFile | undefined, statTimeNs: string, digest: string, stats: BigIntStats | undefined): boolean {
  if (!recorded || !stats?.isFile() || recorded[0] !== digest) return false;
  // recordFile's fields, compared one by one (the likeliest to differ first): a deploy with nothing to do compares every published file.
  if (String(stats.ctimeNs) !== recorded[5] || String(stats.mtimeNs) !== recorded[4] || String(stats.size) !== recorded[3] || String(stats.ino) !== recorded[2] || String(stats.dev) !== recorded[1]) return false;
  const ctimeNs = stats.ctimeNs;
  const margin = ctimeNs % 1_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
  return ctimeNs + margin < BigInt(statTimeNs);
}

/** A directory's record: its lstat `stats`, taken after `statTimeNs`. */
export function recordDir(statTimeNs: bigint, stats: BigIntStats): RecordedDir {
  return [String(statTimeNs), String(stats.dev), String(stats.ino), String(stats.size), String(stats.mtimeNs), String(stats.ctimeNs)];
}

/**
 * Whether the directory whose lstat is `stats` (now) holds the entries it
 * held when `recorded`: the same directory, no entry made, removed or
 * renamed since, and not racy (unchangedSinceRecorded's margin).
 */
export function dirUnchangedSinceRecorded(recorded: RecordedDir | undefined, stats: BigIntStats | undefined): boolean {
  if (!recorded || !stats?.isDirectory()) return false;
  if (String(stats.ctimeNs) !== recorded[5] || String(stats.mtimeNs) !== recorded[4] || String(stats.size) !== recorded[3] || String(stats.ino) !== recorded[2] || String(stats.dev) !== recorded[1]) return false;
  const margin = stats.ctimeNs % 1_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
  return stats.ctimeNs + margin < BigInt(recorded[0]);
}
