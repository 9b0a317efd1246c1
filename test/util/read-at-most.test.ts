/** util/read-at-most.ts: an open file read whole up to a limit, and no further however large it is; a path read only as a regular file. (A FIFO: read-at-most-fifo.test.ts, in a child process.) */
import { closeSync, mkdtempSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IrregularFileError, readAtMostSync, readRegularFileSync } from '../../src/util/read-at-most.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-read-at-most-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readOf(name: string, limit: number, expected?: number): Buffer | undefined {
  const fd = openSync(path.join(dir, name), 'r');
  try {
    return readAtMostSync(fd, limit, expected);
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

  it('reads the same whatever size it was told to expect: right, smaller (grown since), larger (shrunk), none', () => {
    const big = Buffer.alloc(200 * 1024 + 7, 'y');
    writeFileSync(path.join(dir, 'expected'), big);
    for (const expected of [big.length, 0, 10, 100 * 1024, big.length + 1000, undefined]) {
      expect(readOf('expected', big.length, expected)?.equals(big), String(expected)).toBe(true);
      expect(readOf('expected', big.length - 1, expected), String(expected)).toBeUndefined();
    }
  });

  it('stops one byte past the limit, however large the file is (a sparse terabyte)', () => {
    writeFileSync(path.join(dir, 'eleven'), 'hello world');
    expect(readOf('eleven', 10)).toBeUndefined();
    writeFileSync(path.join(dir, 'sparse'), '');
    truncateSync(path.join(dir, 'sparse'), 2 ** 40);
    expect(readOf('sparse', 1024 * 1024)).toBeUndefined();
  });
});

describe('readRegularFileSync', () => {
  it('reads a regular file, through a link unless told not to, with what fstat says of it', () => {
    const file = path.join(dir, 'regular');
    writeFileSync(file, 'settings\n', { mode: 0o640 });
    symlinkSync('regular', path.join(dir, 'to-regular'));
    const { bytes, stats } = readRegularFileSync(path.join(dir, 'to-regular'), 100);
    expect(bytes.toString()).toBe('settings\n');
    expect(stats.mode & 0o777).toBe(0o640);
    expect(() => readRegularFileSync(path.join(dir, 'to-regular'), 100, { noFollow: true })).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    expect(() => readRegularFileSync(path.join(dir, 'missing'), 100)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('refuses a device (a link to /dev/zero reads without end) or a directory, and a file larger than the limit, naming it', () => {
    symlinkSync('/dev/zero', path.join(dir, 'zero'));
    expect(() => readRegularFileSync(path.join(dir, 'zero'), 100)).toThrow(new IrregularFileError(path.join(dir, 'zero'), 'not a regular file'));
    expect(() => readRegularFileSync(dir, 100)).toThrow(`${dir} is not a regular file`);
    writeFileSync(path.join(dir, 'sparse-big'), '');
    truncateSync(path.join(dir, 'sparse-big'), 2 ** 40);
    expect(() => readRegularFileSync(path.join(dir, 'sparse-big'), 1024)).toThrow(`${path.join(dir, 'sparse-big')} is larger than 1024 bytes`);
  });
});
