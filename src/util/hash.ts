/**
 * SHA-256 of text and of files. Files are read in chunks, so a host file of
 * any size is hashed in bounded memory (readFileSync of a 3 GiB file fails,
 * and of a 1 GiB one holds it all).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

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

/** The hex SHA-256 of a file's content. */
export function sha256File(file: string): string {
  const hash = createHash('sha256');
  chunkBuffer ??= Buffer.allocUnsafe(CHUNK);
  const buffer = chunkBuffer;
  const fd = openSync(file, 'r');
  try {
    for (let read = readSync(fd, buffer, 0, CHUNK, null); read > 0; read = readSync(fd, buffer, 0, CHUNK, null)) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
