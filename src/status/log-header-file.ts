/**
 * What the header of one uploaded log says (docs/protocol.md §5, "The log
 * header"), read from the file: its first bytes inflated, then the one
 * parser, protocol/log-header.ts.
 *
 * The machine wrote the file, so it is hostile input: it is opened without
 * following a link, only its first HEADER_COMPRESSED_BYTES are read, and no
 * more than LOG_HEADER_MAX_BYTES are inflated (a small gzip file can inflate
 * to a thousand times its size). A file that cannot be read or inflated has
 * no header: the log says nothing, which every reader takes cautiously.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import { LOG_HEADER_MAX_BYTES, parseLogHeader, type LogHeader } from '../protocol/log-header.js';

/**
 * Compressed bytes read: the header inflates from fewer (deflate adds at
 * most 5 bytes per 64 KiB block to data it cannot shrink; gzip's own header
 * is 10 bytes, more only with a file name, which the client's gzip -c never
 * writes).
 */
const HEADER_COMPRESSED_BYTES = 16 * 1024;

/** The header of the log `file`; {} when it has none or cannot be read. */
export async function readLogHeaderFile(file: string): Promise<LogHeader> {
  const start = readStart(file);
  if (!start) return {};
  try {
    return parseLogHeader((await inflateStart(start)).toString('utf8'));
  } catch {
    return {};
  }
}

function readStart(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buffer = Buffer.alloc(HEADER_COMPRESSED_BYTES);
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** The first LOG_HEADER_MAX_BYTES (or fewer) of what `gzip` inflates to; a cut-short input is fine. */
async function inflateStart(gzip: Buffer): Promise<Buffer> {
  // Small output chunks, and the stream dropped once enough came out: the
  // rest of a hostile file is never inflated.
  const gunzip = createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH, chunkSize: LOG_HEADER_MAX_BYTES });
  gunzip.end(gzip);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of gunzip) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= LOG_HEADER_MAX_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, LOG_HEADER_MAX_BYTES);
}
