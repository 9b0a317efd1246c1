/**
 * What a log file in `logs/` must be besides its name (docs/protocol.md §5):
 * whole, gzip, not over the size limit; and the temporary name a client
 * uploads it under before renaming it into place.
 *
 * A machine writes its own logs/, and an upload can stop half way (a full
 * disk on the server, a lost connection, the original client's plain `put`),
 * so status checks every log it bases a verdict on. The check must stay cheap
 * at 1,000 systems × 20 logs: the size comes with the lstat status does
 * anyway, and only the few logs that decide a state are opened, for their
 * first 10 and last 4 bytes. That rejects an empty file, anything that is not
 * gzip, and most truncated files (the trailer's ISIZE, the uncompressed size,
 * must be plausible for the compressed size); a full gunzip would be the only
 * certain test and costs a read of every byte.
 */

import type { Stats } from 'node:fs';
import type { LogName } from './log-name.js';

/**
 * When the server received a log (docs/protocol.md §5), from its lstat: its
 * mtime, or its ctime when that is earlier. The kernel sets the ctime to the
 * server's clock at every change of the file, and nobody can set it back; an
 * mtime can be set to anything (`touch`, a copy from a mirror with its clock
 * ahead, the original SFTP server's setstat), and one in the future would
 * make its log the latest until that time came, outranking every log sent
 * after it. A log copied from a mirror keeps its mtime, earlier than its
 * ctime: that is when it reached the mirror.
 */
export function receivedAtMs(stats: Pick<Stats, 'mtimeMs' | 'ctimeMs'>): number {
  return Math.min(Math.max(Math.min(stats.mtimeMs, stats.ctimeMs), -DATE_LIMIT_MS), DATE_LIMIT_MS);
}

/**
 * The times a Date holds: ±8.64e15 ms from 1970 (ECMA-262), about 271,821
 * BC to 275,760 AD, beyond which toISOString throws. A file system with
 * 64-bit times (tmpfs, btrfs) holds more, and a machine that may set its
 * files' times (an SFTP server without bento's allow list, §9; a copy from
 * a mirror) can give a log one of them: one such log made status, its
 * JSON and the alerts fail for the whole fleet. receivedAtMs keeps the
 * times it gives within them, which keeps their order but at the very ends.
 */
export const DATE_LIMIT_MS = 8.64e15;

/** A file's time as ISO 8601, or, beyond what a Date holds (DATE_LIMIT_MS), in seconds since 1970: never throws. */
export function fileTimeText(ms: number): string {
  return Math.abs(ms) <= DATE_LIMIT_MS ? new Date(ms).toISOString() : `${Math.floor(ms / 1000)} seconds since 1970`;
}

/** A log in a system's logs/: its name, what the name says, and when the server received it. */
export interface LogEntry {
  fileName: string;
  log: LogName;
  /** When the server received it: the mtime of the uploaded file, or its ctime when that is earlier (receivedAtMs). */
  mtimeMs: number;
}

/**
 * Whether log `a` arrived after log `b`: by server mtime, not by the date in
 * the name (the client's clock, which may be wrong or in another time zone);
 * equal mtimes (a coarse file system) fall back to the name, whose date
 * prefix still orders them. Status, its log cache and the prune all order
 * logs this way, so they agree on which log is the latest.
 */
export function isLaterLog(a: Pick<LogEntry, 'mtimeMs' | 'fileName'>, b: Pick<LogEntry, 'mtimeMs' | 'fileName'>): boolean {
  return a.mtimeMs > b.mtimeMs || (a.mtimeMs === b.mtimeMs && a.fileName > b.fileName);
}

/** The newest log by the time the server received it (isLaterLog). */
export function selectLatestLog<Log extends LogEntry>(logs: readonly Log[]): Log | undefined {
  let latest: Log | undefined;
  for (const log of logs) {
    if (!latest || isLaterLog(log, latest)) latest = log;
  }
  return latest;
}

/** A log whose mtime lies more than this ahead of the server's clock is reported. */
export const FUTURE_TOLERANCE_MS = 60_000;

/**
 * The name a client uploads `<log name>` under before it renames it into
 * place in the same SFTP session: `.<log name>.tmp-<pid>`, the shape of every
 * temporary file bento writes (a leading dot, `.tmp-<digits>`). Readers skip
 * such names silently; the server's prune removes old ones.
 */
const UPLOAD_TEMPORARY = /^\..+\.tmp-[0-9]+$/;

export function isUploadTemporary(name: string): boolean {
  return UPLOAD_TEMPORARY.test(name);
}

/** Bytes status reads at the start and the end of a log. */
export const GZIP_HEAD_BYTES = 10;
export const GZIP_TAIL_BYTES = 4;
/** The smallest gzip file: a 10-byte header, an empty deflate block (2 bytes), CRC32 and ISIZE. */
const GZIP_MIN_SIZE = 20;
/** deflate never compresses better than this (RFC 1951: a 258-byte match costs at least 2 bits). */
const DEFLATE_MAX_RATIO = 1032;
/** Header (10) and trailer (8) around the deflate data, and zlib's worst-case growth of stored blocks. */
const GZIP_OVERHEAD = 18;

/**
 * Why a file of `size` bytes, starting with `head` and ending with `tail`,
 * is not a whole gzip log; undefined when it looks whole. `head` is the
 * first GZIP_HEAD_BYTES bytes, `tail` the last GZIP_TAIL_BYTES (ISIZE).
 */
export function gzipProblem(size: number, head: Uint8Array, tail: Uint8Array): string | undefined {
  if (size === 0) return 'it is empty';
  if (size < GZIP_MIN_SIZE || head.length < GZIP_HEAD_BYTES || tail.length < GZIP_TAIL_BYTES) return 'it is too short to be gzip';
  // ID1 ID2 CM: 1f 8b 08 (deflate); FLG's three high bits are reserved, zero.
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 0x08 || ((head[3] ?? 0) & 0xe0) !== 0) return 'it is not gzip';
  // ISIZE: the uncompressed size modulo 2^32, little-endian. Below 4 GiB of
  // possible output it must lie between what deflate can shrink the data to
  // and what it can grow it by; a file cut short ends in deflate data
  // instead, which almost never passes.
  const isize = ((tail[0] ?? 0) | ((tail[1] ?? 0) << 8) | ((tail[2] ?? 0) << 16)) + (tail[3] ?? 0) * 0x1000000;
  const data = size - GZIP_OVERHEAD;
  const most = data * DEFLATE_MAX_RATIO;
  // Stored blocks add 5 bytes per 65,535 and gzip's optional header fields
  // (a file name, say) take room too: allow for both generously.
  const least = Math.floor(data * 0.99) - 1024;
  if (most < 2 ** 32 && (isize > most || isize < least)) return 'it is cut short (its gzip trailer does not match its size)';
  return undefined;
}
