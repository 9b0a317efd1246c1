/**
 * Deploy's root-only caches of a CHROOT_DIR (the flakes' names,
 * flake-names-cache.ts; the published files' lstats, published-stats.ts):
 * one file of each kind per CHROOT_DIR in /var/cache/bento, never in the
 * fleet's directory (committed), in generated/ (committed and served) or in
 * CHROOT_DIR (published). Root's alone (0600 in a 0700 directory), trusted
 * only when nobody else could have written it, written only when its text
 * changes (a deploy with nothing new writes nothing). Losing one costs
 * time, never a wrong result.
 */
import { lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { sha256 } from '../util/hash.js';
import { makeDirsSync } from '../util/make-dirs.js';
import { chrootPathProblem } from './chroot-dir.js';

/** Where the caches live (a cache, in the FHS sense: losing it loses nothing). */
export const ROOT_CACHE_DIR = '/var/cache/bento';

/** The cache file of this kind for `chrootDir` (named by a digest of its path). */
export function rootCacheFile(kind: string, chrootDir: string, cacheDir: string): string {
  return path.join(cacheDir, `${kind}-${sha256(path.resolve(chrootDir)).slice(0, 16)}.json`);
}

/** The file's text, or undefined when it is missing, unreadable or not to be trusted. */
export function readRootCache(file: string, cacheDir: string): string | undefined {
  const stats = lstatSync(file, { throwIfNoEntry: false });
  // chrootPathProblem: every directory from / down root's and writable by nobody else.
  if (!stats?.isFile() || stats.uid !== 0 || (stats.mode & 0o077) !== 0 || chrootPathProblem(cacheDir) !== undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * What `parse` makes of the file's text (readRootCache), each cache
 * checking its own; `empty` when there is none to trust or `parse` throws
 * on it: a cache that cannot be read is an empty one.
 */
export function parseRootCache<T>(file: string, cacheDir: string, parse: (text: string) => T, empty: T): T {
  const text = readRootCache(file, cacheDir);
  if (text === undefined) return empty;
  try {
    return parse(text);
  } catch {
    return empty;
  }
}

/** Writes the file (its directory made 0700 if missing); false when it cannot be written, which is no failure. */
export function writeRootCache(file: string, cacheDir: string, text: string): boolean {
  try {
    makeDirsSync(cacheDir, 0o700);
    writeFileAtomicallySync(file, text, 0o600);
    return true;
  } catch {
    return false;
  }
}
