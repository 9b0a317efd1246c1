/**
 * Flushing what bento records or publishes to the disk before it counts.
 *
 * A rename is atomic, but not durable by itself: after a power cut the file
 * system may hold the rename and not the data it named (ext4 without
 * auto_da_alloc, XFS, btrfs), leaving states.txt, rollout.json or a
 * published file empty. So what is to be renamed into place is flushed
 * first (fsync(2) of the file), and the directory that holds the new name is
 * flushed after the rename (fsync of a directory makes its entries durable:
 * fsync(2), "Calling fsync() does not necessarily ensure that the entry in
 * the directory containing the file has also reached disk").
 *
 * Files are opened read-only to be flushed: on Linux, fsync through any
 * descriptor writes the inode's dirty data, and a read-only open never
 * creates or truncates anything.
 */
import { closeSync, constants, fsyncSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

/** Writes `file`'s data and metadata (a regular file or a directory) to the disk. */
export function flushSync(file: string): void {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The same, asynchronously. */
export async function flush(file: string): Promise<void> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes the directory holding `file`: after a rename into it, or a new entry. */
export function flushParentSync(file: string): void {
  flushSync(path.dirname(file));
}

/**
 * Flushes every file and directory of the tree at `dir` (links are not
 * followed; a link's own entry is made durable with its directory), the
 * directories after what they hold: a tree written under a temporary name
 * is then whole on the disk before it is renamed into place.
 */
export function flushTreeSync(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) flushTreeSync(entryPath);
    else if (entry.isFile()) flushSync(entryPath);
  }
  if (lstatSync(dir).isDirectory()) flushSync(dir);
}
