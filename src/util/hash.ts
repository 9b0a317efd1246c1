/**
 * SHA-256 of text and of files. Files are read in chunks, so a host file of
 * any size is hashed in bounded memory (readFileSync of a 3 GiB file fails,
 * and of a 1 GiB one holds it all). A file hashed may be a fleet writer's
 * (hosts/): it is opened without waiting, hashed only when it is a regular
 * file, and read no further than the size it had when opened
 * (util/read-at-most.ts, openRegularFileSync).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { closeSync, readSync, type Stats } from 'node:fs';
import { IrregularFileError, openRegularFileSync } from './read-at-most.js';

const CHUNK = 1 << 20;

/**
 * The one read buffer of every sha256File call (each is synchronous, so none
 * can share it with another): a buffer this size per call is fresh memory
 * each time (Buffer's pool serves only small ones), and a deploy hashing
 * hundreds of files spent more in the garbage collector than in the hash.
 */
let chunkBuffer: Buffer | undefined;

/**
 * crypto.hash (Node 20.12 and later): one call and no Hash object, faster by
 * far for the small texts hashed by the thousand (status hashes the log
 * names of every logs/ it lists: bench/README.md). Looked up, not imported
 * by name: an older Node 20 lacks it.
 */
const hashOnce = typeof crypto.hash === 'function' ? crypto.hash : undefined;

export function sha256(data: string | Buffer): string {
  return hashOnce ? hashOnce('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/** The hex SHA-256 of a file's content (hashFile). */
export function sha256File(file: string): string {
  return hashFile(file).sha256;
}

/**
 * The hex SHA-256 of the regular file at `file` and what fstat said of it
 * when it was opened. A FIFO put in its place is not waited on and a link
 * to a device (/dev/zero: a read without end) not read: both are an
 * IrregularFileError ('not a regular file'). Nor is it read further than
 * the size it had when opened: a file its owner grows all along would
 * otherwise be read for ever; one that grew or shrank meanwhile is an
 * IrregularFileError ('changed while read'), its hash that of no file.
 */
export function hashFile(file: string): { sha256: string; stats: Stats } {
  const hash = createHash('sha256');
  chunkBuffer ??= Buffer.allocUnsafe(CHUNK);
  const buffer = chunkBuffer;
  const { fd, stats } = openRegularFileSync(file);
  try {
    let position = 0;
    while (position < stats.size) {
      const read = readSync(fd, buffer, 0, Math.min(CHUNK, stats.size - position), position);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      position += read;
    }
    // Short of the size, or a byte past it: the one read that tells either.
    if (position < stats.size || readSync(fd, buffer, 0, 1, position) > 0) throw new IrregularFileError(file, 'changed while read');
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest('hex'), stats };
}
