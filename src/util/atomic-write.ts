/**
 * Replacing a file so that a reader sees either the old or the new content,
 * never a part: write a temporary file in the same directory, then rename it
 * over the target (rename(2) is atomic within a file system). A write that
 * fails (a full disk, say) removes its temporary file and leaves the target
 * as it was.
 *
 * Temporary names start with a dot and end in `.tmp-<pid>`: readers that skip
 * dot files (status, node-exporter's *.prom glob) never see them, and a
 * cleaner can tell them apart by TEMPORARY_NAME.
 *
 * A durable write (the default) flushes the temporary file before the rename
 * and the directory after it (util/durable.ts): a power cut then leaves the
 * old content or the new one, never an empty file. Derived files that the
 * next run rewrites anyway (generated/, the status cache) may skip it.
 *
 * The temporary file is always created anew (whatever was at its name is
 * removed first, then it is opened with O_EXCL): a link planted at that name
 * in a directory others can write (generated/ in the fleet, a metrics
 * directory of node-exporter's) is never followed. Its mode is set through
 * the descriptor that wrote it, never by its name: who can write the
 * directory could rename the new file away and put a link in its place in
 * between, and a chmod by name follows it (to /etc/shadow, say).
 *
 * What is at the temporary name is removed with unlink, never rm: Node 20's
 * rm (even without `recursive`) looks at the name, then, should a
 * directory be there by the time it removes it, removes everything in it,
 * recursively and by paths (a link swapped for one of its directories is
 * followed): a directory swapped in after rm's look would have root empty
 * it, or where its links lead. unlink removes a file or a link, never a
 * directory (EISDIR).
 */
import { closeSync, constants, fchmodSync, fchownSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { flush, runStepsSync, type DurableSteps } from './durable.js';

export interface AtomicWriteOptions {
  /** Flush the data before the rename and the directory after it (default true). */
  durable?: boolean;
  /**
   * The new file's owner (root only), given before it has its name: a chown
   * by name after the rename would follow a link put in its place meanwhile.
   */
  owner?: { uid: number; gid: number };
}

/** What temporary files of atomicWrite look like, for cleaners of leftovers. */
export const TEMPORARY_NAME = /^\..+\.tmp-\d+$/;

/** How a temporary file is opened: made anew, never through a link. */
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Removes the file (or link) `file` if there is one; never a directory, nor anything in one. */
export function unlinkIfPresentSync(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The temporary name used for `file` by this process. */
export function temporaryPathOf(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
}

/** Replaces `file` with `content`, with exactly `mode` (whatever the umask). */
export function writeFileAtomicallySync(file: string, content: string | Buffer, mode = 0o644, options: AtomicWriteOptions = {}): void {
  runStepsSync(atomicWriteSteps(file, content, mode, options.durable ?? true, options.owner));
}

/** A durable writeFileAtomicallySync as steps (util/durable.ts): many written together flush together. */
export function writeFileAtomicallySteps(file: string, content: string | Buffer, mode = 0o644): DurableSteps<void> {
  return atomicWriteSteps(file, content, mode, true);
}

function* atomicWriteSteps(file: string, content: string | Buffer, mode: number, durable: boolean, owner?: AtomicWriteOptions['owner']): DurableSteps<void> {
  const temporary = temporaryPathOf(file);
  try {
    unlinkIfPresentSync(temporary);
    const fd = openSync(temporary, NEW_FILE, mode);
    try {
      writeFileSync(fd, content);
      if (owner) fchownSync(fd, owner.uid, owner.gid);
      fchmodSync(fd, mode); // whatever the umask (and after the chown, which clears set-ID bits)
    } finally {
      closeSync(fd);
    }
    if (durable) yield [temporary];
    renameSync(temporary, file);
  } catch (error) {
    unlinkIfPresentSync(temporary);
    throw error;
  }
  if (durable) yield [path.dirname(file)];
}

/** The same, asynchronously. */
export async function writeFileAtomically(file: string, content: string | Buffer, mode = 0o644, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const temporary = temporaryPathOf(file);
  try {
    await unlinkIfPresent(temporary);
    const handle = await open(temporary, NEW_FILE, mode);
    try {
      await handle.writeFile(content);
      if (options.owner) await handle.chown(options.owner.uid, options.owner.gid);
      await handle.chmod(mode); // whatever the umask (and after the chown, which clears set-ID bits)
    } finally {
      await handle.close();
    }
    if (durable) await flush(temporary);
    await rename(temporary, file);
  } catch (error) {
    await unlinkIfPresent(temporary);
    throw error;
  }
  if (durable) await flush(path.dirname(file));
}
