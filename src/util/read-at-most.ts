/**
 * Reading an open file without trusting the size it was seen to have: a
 * file someone else may write can grow between the fstat and the read (a
 * sparse terabyte, in one ftruncate), and readFileSync reads to its end.
 */
import { readSync } from 'node:fs';

/** What is read at a time. */
const CHUNK_BYTES = 64 * 1024;

/** The bytes of the open file `fd` from its start, or undefined as soon as there are more than `limit` of them. */
export function readAtMostSync(fd: number, limit: number): Buffer | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, limit + 1 - total));
    const read = readSync(fd, chunk, 0, chunk.length, total);
    if (read === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, read));
    total += read;
    if (total > limit) return undefined;
  }
}
