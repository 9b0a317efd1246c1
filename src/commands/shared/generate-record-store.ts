/**
 * Where generate keeps its record of generated/ (render/generate-record.ts):
 * one file per CHROOT_DIR (a CHROOT_DIR holds one fleet; the record names
 * the output directory it is for), never in the fleet (committed) or in
 * generated/ (committed, and what the fleet renders to). Root's, for deploy
 * and every command run as root, in /var/cache/bento beside deploy's other
 * caches, with their rules (chroot/root-cache.ts); a user's in
 * $XDG_CACHE_HOME/bento (else ~/.cache/bento) beside status's cache, with
 * its rules (status/log-cache.ts): the directory and the file the user's
 * own and writable by nobody else. A record that cannot be trusted or read
 * is no record: generate renders, as without one.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/config.js';
import { chrootPathProblem } from '../../chroot/chroot-dir.js';
import { ROOT_CACHE_DIR, readRootCache, rootCacheFile, writeRootCache } from '../../chroot/root-cache.js';
import type { RecordStore } from '../../render/generate-record.js';
import { cacheDirectoryProblem } from '../../status/log-cache.js';
import { writeFileAtomicallySync } from '../../util/atomic-write.js';
import { runsAsRoot, type CommandIO } from '../io.js';

/** The record's kind among the caches of a CHROOT_DIR (root-cache.ts names the file). */
export const GENERATE_RECORD_KIND = 'generated';

/** The record's file for `chrootDir` in `cacheDir`. */
export function generateRecordPath(chrootDir: string, cacheDir = ROOT_CACHE_DIR): string {
  return rootCacheFile(GENERATE_RECORD_KIND, chrootDir, cacheDir);
}

/** Root's record of the fleet of `config`, in `cacheDir`. */
export function rootGenerateRecord(config: Pick<Config, 'chrootDir'>, cacheDir = ROOT_CACHE_DIR): RecordStore {
  const file = generateRecordPath(config.chrootDir, cacheDir);
  return {
    read: () => readRootCache(file, cacheDir),
    // Not into a directory whose record would not be trusted when read: it would be written again on every run.
    write: (text) => {
      if (chrootPathProblem(cacheDir) === undefined) writeRootCache(file, cacheDir, text);
    },
  };
}

/** The record of the user `uid` of the fleet of `config`, in `cacheDir` (theirs). */
export function userGenerateRecord(cacheDir: string, uid: number): (config: Pick<Config, 'chrootDir'>) => RecordStore {
  return (config) => {
    const file = generateRecordPath(config.chrootDir, cacheDir);
    return {
      read: () => (cacheDirectoryProblem(cacheDir, uid) === undefined ? readOwnFile(file, uid) : undefined),
      write: (text) => {
        try {
          mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
          if (cacheDirectoryProblem(cacheDir, uid) !== undefined) return;
          writeFileAtomicallySync(file, text, 0o600, { durable: false });
        } catch {
          // A read-only home, a full disk: the next generate renders.
        }
      },
    };
  };
}

/** The file's text when it is a regular file of the user `uid` that nobody else can write; undefined otherwise. */
function readOwnFile(file: string, uid: number): string | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a link in its place is not followed; fstat: what was opened is what is checked.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.uid !== uid || (stats.mode & 0o022) !== 0) return undefined;
    return readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** bento's cache directory of a user: $XDG_CACHE_HOME/bento, else $HOME/.cache/bento; undefined without either (or with a relative one). */
export function userCacheDir(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const base = env.XDG_CACHE_HOME || (env.HOME ? path.join(env.HOME, '.cache') : undefined);
  return base !== undefined && path.isAbsolute(base) ? path.join(base, 'bento') : undefined;
}

/** Where a command run with `io` keeps generate's record: root's, the user's, or none (no user id or environment to place it). */
export function generateRecordOf(io: CommandIO): ((config: Pick<Config, 'chrootDir'>) => RecordStore) | undefined {
  if (runsAsRoot(io)) return (config) => rootGenerateRecord(config);
  const dir = io.env ? userCacheDir(io.env) : undefined;
  return io.uid === undefined || dir === undefined ? undefined : userGenerateRecord(dir, io.uid);
}
