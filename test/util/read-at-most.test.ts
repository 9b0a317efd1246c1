/** util/read-at-most.ts: an open file read whole up to a limit, and no further however large it is. */
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAtMostSync } from '../../src/util/read-at-most.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-read-at-most-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readOf(name: string, limit: number): Buffer | undefined {
  const fd = openSync(path.join(dir, name), 'r');
  try {
    return readAtMostSync(fd, limit);
  } finally {
    closeSync(fd);
  }
}

describe('readAtMostSync', () => {
  it('reads a file of up to the limit whole, in more than one chunk, and an empty one', () => {
    const big = Buffer.alloc(200 * 1024, 'x');
    writeFileSync(path.join(dir, 'big'), big);
    expect(readOf('big', big.length)?.equals(big)).toBe(true);
    writeFileSync(path.join(dir, 'empty'), '');
    expect(readOf('empty', 10)?.length).toBe(0);
  });

  it('stops one byte past the limit, however large the file is (a sparse terabyte)', () => {
    writeFileSync(path.join(dir, 'eleven'), 'hello world');
    expect(readOf('eleven', 10)).toBeUndefined();
    writeFileSync(path.join(dir, 'sparse'), '');
    truncateSync(path.join(dir, 'sparse'), 2 ** 40);
    expect(readOf('sparse', 1024 * 1024)).toBeUndefined();
  });
});
