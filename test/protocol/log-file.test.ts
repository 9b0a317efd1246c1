import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { DATE_LIMIT_MS, fileTimeText, gzipProblem, isUploadTemporary, receivedAtMs, selectLatestLog } from '../../src/protocol/log-file.js';
import { logEntry, logName } from '../status/fixtures.js';

/** The gzip of `text` as the client makes it (`gzip -c FILE`: the header carries the file name). */
function gzipCli(content: Buffer): Buffer {
  // A directory of its own: a build.log left in /tmp by another user (or another run) would be in the way.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-gzip-'));
  try {
    const result = spawnSync('sh', ['-c', 'cat > "$0/build.log" && gzip -c "$0/build.log"', dir], { input: content });
    if (result.status !== 0) throw new Error(result.stderr.toString());
    return result.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('gzipProblem', () => {
  const check = (file: Buffer) => gzipProblem(file.length, file.subarray(0, 10), file.subarray(Math.max(0, file.length - 4)));

  it('accepts whole gzip files: tiny, compressible, incompressible, with a file name in the header', () => {
    expect(check(gzipSync(''))).toBeUndefined();
    expect(check(gzipSync('x'))).toBeUndefined();
    expect(check(gzipSync('building\n'.repeat(100_000)))).toBeUndefined();
    expect(check(gzipSync(randomBytes(300_000)))).toBeUndefined();
    expect(check(gzipCli(Buffer.from('bento update\nswitching\n'.repeat(500))))).toBeUndefined();
  });

  it('rejects empty files, other formats, and almost every cut', () => {
    expect(check(Buffer.alloc(0))).toBe('it is empty');
    expect(check(Buffer.from('not gzip at all, but long enough to look'))).toBe('it is not gzip');
    expect(check(Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3]))).toBe('it is too short to be gzip');
    const whole = gzipCli(Buffer.from(Array.from({ length: 2_000 }, (_, i) => `line ${i}: building /nix/store/${i}-thing\n`).join('')));
    let accepted = 0;
    const cuts = 400;
    for (let i = 1; i <= cuts; i++) if (check(whole.subarray(0, Math.floor((whole.length * i) / (cuts + 1)))) === undefined) accepted++;
    // A cut ends in deflate data: its last 4 bytes are about random, and a
    // random ISIZE passes for a file this size about 0.3% of the time.
    expect(accepted).toBeLessThanOrEqual(4);
  });

  it('names upload temporaries by their shape only', () => {
    const name = logName('fcz1s2yp', 'success');
    expect(isUploadTemporary(`.${name}.tmp-123`)).toBe(true);
    expect(isUploadTemporary(name)).toBe(false);
    expect(isUploadTemporary(`${name}.tmp-123`)).toBe(false);
    expect(isUploadTemporary(`.${name}.tmp-`)).toBe(false);
  });
});

describe('selectLatestLog', () => {
  it('uses the server mtime, not the date the client wrote in the name', () => {
    const early = logEntry('11111111', 'failure', 10, '20991231-2359');
    const late = logEntry('22222222', 'success', 5, '20000101-0000');
    expect(selectLatestLog([late, early])).toBe(late);
    expect(selectLatestLog([early, late])).toBe(late);
  });

  it('breaks ties by name', () => {
    const a = logEntry('11111111', 'failure', 5, '20240601-1200');
    const b = logEntry('22222222', 'success', 5, '20240601-1201');
    expect(selectLatestLog([b, a])).toBe(b);
    expect(selectLatestLog([a, b])).toBe(b);
    expect(selectLatestLog([])).toBeUndefined();
  });
});

describe('receivedAtMs', () => {
  it('is the mtime, or the ctime when that is earlier', () => {
    expect(receivedAtMs({ mtimeMs: 1_000, ctimeMs: 2_000 })).toBe(1_000);
    expect(receivedAtMs({ mtimeMs: 3_000, ctimeMs: 2_000 })).toBe(2_000);
  });

  it('stays within the times a Date holds, whatever a 64-bit file system keeps (tmpfs, btrfs)', () => {
    const earliest = receivedAtMs({ mtimeMs: -1e17, ctimeMs: 2_000 });
    expect(earliest).toBe(-DATE_LIMIT_MS);
    expect(new Date(earliest).toISOString()).toBe('-271821-04-20T00:00:00.000Z');
    expect(receivedAtMs({ mtimeMs: 1e17, ctimeMs: 1e17 })).toBe(DATE_LIMIT_MS);
  });
});

describe('fileTimeText', () => {
  it('is ISO 8601 where a Date holds the time, seconds since 1970 beyond', () => {
    expect(fileTimeText(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(fileTimeText(1e17)).toBe('100000000000000 seconds since 1970');
    expect(fileTimeText(-1e17)).toBe('-100000000000000 seconds since 1970');
  });
});
