/**
 * mkdir -p with an exact mode, and copies with exact modes. mkdir(2) and
 * open(2) apply the process umask: under
 * `umask 077` the directories bento makes in the snapshot and in the chroots
 * would be 0700, which its own check of host directories then refuses and
 * the machines cannot read. Each missing directory is made one at a time,
 * from the top down, and given `mode` with chmod (which ignores the umask).
 */
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from './hash.js';
import { IrregularFileError, openRegularFileSync, readAtMostSync, readRegularFileSync } from './read-at-most.js';

/** Makes `dir` and its missing parents with exactly `mode`; directories that exist are left as they are. */
export function makeDirsSync(dir: string, mode: number): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  while (!existsSync(current) && path.dirname(current) !== current) {
    missing.unshift(current);
    current = path.dirname(current);
  }
  for (const component of missing) {
    mkdirSync(component, { mode });
    chmodSync(component, mode);
  }
}

/** A file to copy: its path below the destination ('/' separators), where it is read from, and whether it is executable. */
export interface FileToCopy {
  relative: string;
  source: string;
  executable: boolean;
  /**
   * The file that was checked before the copy (its device and inode, and
   * how to name it): what is opened for the copy must be that file, still
   * readable by everyone. A directory the file's owner swaps for a link
   * between the check and the copy (to the server's signing key, say) then
   * fails the copy instead of publishing what the link leads to.
   */
  checked?: { dev: number; ino: number; place: string };
  /**
   * What the file must hold, by SHA-256, when it is not `checked`: a file
   * bento wrote into generated/ (its client files), a directory the fleet's
   * writers control. It is read without following a link and copied only
   * while it still holds that: a link put in its place since (to the
   * server's signing key, say) fails the copy instead of publishing what it
   * leads to.
   */
  sha256?: string;
}

/** The file at `source` changed between its check and its copy. */
export class ChangedWhileCopiedError extends Error {
  constructor(place: string, why: string) {
    super(`${place} changed while bento copied it (${why}): nothing of it is used; make sure nothing rewrites hosts/ or generated/ during a deploy, and run it again`);
    this.name = 'ChangedWhileCopiedError';
  }
}

/**
 * Files written already that others may be hard links to
 * (copyFilesWithModes): what holds the same bytes with the same mode need
 * not be written again.
 */
export interface CopySharing<F extends FileToCopy> {
  /** A file written already that holds exactly what `file` must hold, with its mode; undefined: none. */
  linkSource(file: F): string | undefined;
  /** `file` was just written below `destination` (at its `relative` path), with its content and mode. */
  written(file: F, destination: string): void;
}

/**
 * Copies `files` below `destination`: the directories they need 0755, each
 * file 0755 or 0644 as it is executable or not, whatever the umask. With
 * `sharing`, a file that holds what one written before holds is a hard link
 * to it (one directory entry, no inode or bytes to write); where the link
 * cannot be made (the file was removed since, its link count is full) it
 * is copied.
 */
export function copyFilesWithModes<F extends FileToCopy>(destination: string, files: readonly F[], sharing?: CopySharing<F>): void {
  const made = new Set<string>([destination]);
  for (const file of files) {
    const target = path.join(destination, file.relative);
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      makeDirsSync(parent, 0o755);
      made.add(parent);
    }
    const source = sharing?.linkSource(file);
    if (source !== undefined && linked(source, target)) continue;
    if (file.checked) copyCheckedFile(file.source, target, file.checked);
    else if (file.sha256 !== undefined) writeFileSync(target, readVerifiedFile(file.source, file.sha256), { flag: 'wx' });
    else copyFileSync(file.source, target);
    chmodSync(target, file.executable ? 0o755 : 0o644);
    sharing?.written(file, destination);
  }
}

/** Whether `target` is now a hard link to `source`; false when it could not be made (nothing is at `target` then). */
function linked(source: string, target: string): boolean {
  try {
    linkSync(source, target);
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies the file at `source` only if it is still the file that was
 * checked: opened first (without blocking, should it have become a FIFO),
 * then its identity and mode taken from the descriptor, so no link swapped
 * in afterwards can change what is read; and no more than the size fstat
 * gave (readFileSync reads a file fstat calls empty to its end, which its
 * owner can push away for ever: a sparse terabyte, one ftruncate).
 */
function copyCheckedFile(source: string, target: string, checked: NonNullable<FileToCopy['checked']>): void {
  let opened: ReturnType<typeof openRegularFileSync>;
  try {
    opened = openRegularFileSync(source);
  } catch (error) {
    if (error instanceof IrregularFileError) throw new ChangedWhileCopiedError(checked.place, 'it is no longer a regular file');
    throw error;
  }
  const { fd, stats } = opened;
  try {
    if (stats.dev !== checked.dev || stats.ino !== checked.ino) throw new ChangedWhileCopiedError(checked.place, 'it is another file than the one checked: a directory on its path was replaced, by a link maybe');
    if ((stats.mode & 0o004) === 0) throw new ChangedWhileCopiedError(checked.place, 'it is no longer readable by everyone');
    const bytes = readAtMostSync(fd, stats.size, stats.size);
    if (bytes === undefined) throw new ChangedWhileCopiedError(checked.place, 'it grew while it was read');
    writeFileSync(target, bytes, { flag: 'wx' });
  } finally {
    closeSync(fd);
  }
}

/** The most a file read by readRegularFile may hold: what bento generates is far smaller. */
const REGULAR_FILE_LIMIT = 64 * 1024 * 1024;

/**
 * The bytes of the regular file at `source`, opened without following a
 * link (its last component) or waiting (a FIFO), and no more than
 * REGULAR_FILE_LIMIT of them (util/read-at-most.ts); a
 * ChangedWhileCopiedError naming `place` otherwise. Also its mode, as the
 * open file has it.
 */
export function readRegularFile(source: string, place = source): { bytes: Buffer; mode: number } {
  try {
    const { bytes, stats } = readRegularFileSync(source, REGULAR_FILE_LIMIT, { noFollow: true });
    return { bytes, mode: stats.mode };
  } catch (error) {
    if (error instanceof IrregularFileError) {
      throw new ChangedWhileCopiedError(place, error.reason === 'not a regular file' ? 'it is no longer a regular file' : `it is larger than ${REGULAR_FILE_LIMIT} bytes`);
    }
    const { code, syscall } = error as NodeJS.ErrnoException;
    if (syscall === 'open') throw new ChangedWhileCopiedError(place, `it cannot be opened as a file: ${code ?? (error as Error).message}`);
    throw error;
  }
}

/** readRegularFile's bytes, when they are those whose SHA-256 is `expected`; a ChangedWhileCopiedError otherwise. */
export function readVerifiedFile(source: string, expected: string, place = source): Buffer {
  const { bytes } = readRegularFile(source, place);
  if (sha256(bytes) !== expected) throw new ChangedWhileCopiedError(place, 'it no longer holds what bento wrote there');
  return bytes;
}
