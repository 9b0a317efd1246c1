/**
 * Reading a file without trusting the size it was seen to have: a file
 * someone else may write can grow between the fstat and the read (a sparse
 * terabyte, in one ftruncate), and readFileSync reads to its end. And
 * reading a path someone else may write without waiting: a FIFO put in its
 * place makes open(2) wait for a writer, forever, and a link to /dev/zero
 * makes a read without end.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { confinementProblem } from './confined-file.js';

/** What is read at a time. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The bytes of the open file `fd` from its start, or undefined as soon as
 * there are more than `limit` of them. `expected`: what it was seen to
 * hold (fstat's size), read into one buffer a byte larger, where its end is
 * found too: no other buffer to allocate or join for a file that did not
 * grow (a deploy reads a thousand keys).
 */
export function readAtMostSync(fd: number, limit: number, expected?: number): Buffer | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  let chunk = Buffer.allocUnsafe(Math.min(expected === undefined ? CHUNK_BYTES : expected + 1, limit + 1));
  let filled = 0;
  for (;;) {
    if (filled === chunk.length) {
      chunks.push(chunk);
      chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, limit + 1 - total));
      filled = 0;
    }
    const read = readSync(fd, chunk, filled, chunk.length - filled, total);
    if (read === 0) {
      chunks.push(chunk.subarray(0, filled));
      return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
    }
    filled += read;
    total += read;
    if (total > limit) return undefined;
  }
}

/**
 * What openRegularFileSync and readRegularFileSync refuse: what `file`
 * opened is not a regular file (a FIFO, socket, device or directory), it
 * holds more than `limit` bytes, (for a caller that reads it in parts,
 * util/hash.ts) it grew or shrank while it was read, or (`confined`) it
 * is a file whose writer may not see it (util/confined-file.ts). The caller words the
 * message (util/ cannot throw errors.ts's UserError): `reason` says which.
 */
export class IrregularFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: 'not a regular file' | 'too large' | 'changed while read' | 'not to be shown',
    readonly limit?: number,
    /** For 'not to be shown': why (util/confined-file.ts). */
    readonly why?: string,
  ) {
    super(
      reason === 'not a regular file'
        ? `${file} is not a regular file`
        : reason === 'too large'
          ? `${file} is larger than ${limit} bytes`
          : reason === 'changed while read'
            ? `${file} changed while it was read`
            : `${file} is not read: ${why}`,
    );
    this.name = 'IrregularFileError';
  }
}

/**
 * `file` opened for reading without waiting (O_NONBLOCK, which changes
 * nothing for a regular file) and what fstat says of what was opened, so
 * that what is read is what was looked at; an IrregularFileError (nothing
 * left open) when it is not a regular file. `noFollow`: never through a
 * symbolic link (its last component; open fails with ELOOP). open(2)'s own
 * errors (ENOENT, EACCES, ELOOP) are thrown as they are. The caller closes
 * `fd`, and reads no further than it trusts `stats.size`.
 */
export function openRegularFileSync(file: string, options: { noFollow?: boolean } = {}): { fd: number; stats: Stats } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | (options.noFollow ? constants.O_NOFOLLOW : 0));
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (!stats.isFile()) {
    closeSync(fd);
    throw new IrregularFileError(file, 'not a regular file');
  }
  return { fd, stats };
}

/**
 * The bytes of the regular file at `file` (openRegularFileSync) and what
 * fstat says of it, read no further than `limit` bytes, whatever size it
 * was seen to have; an IrregularFileError when it holds more. `confined`:
 * read only when it lies inside `confined.boundary` (a real path) or
 * everyone may read it (util/confined-file.ts: root's messages quote what
 * they cannot parse, and the path's writer would read them).
 */
export function readRegularFileSync(file: string, limit: number, options: { noFollow?: boolean; confined?: { boundary: string | undefined } } = {}): { bytes: Buffer; stats: Stats } {
  const { fd, stats } = openRegularFileSync(file, options);
  try {
    const why = options.confined ? confinementProblem(file, stats, options.confined.boundary) : undefined;
    if (why !== undefined) throw new IrregularFileError(file, 'not to be shown', undefined, why);
    const bytes = readAtMostSync(fd, limit, stats.size);
    if (bytes === undefined) throw new IrregularFileError(file, 'too large', limit);
    return { bytes, stats };
  } finally {
    closeSync(fd);
  }
}
