/**
 * The stored gzip a generated script carries (src/util/gzip-stored.ts): a
 * valid gzip file that gunzip reads back, the same bytes every time, and a
 * printf format that reproduces those bytes in a real shell.
 */
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { printfOctal, storedGzip } from '../../src/util/gzip-stored.js';

describe('storedGzip', () => {
  it('is a gzip file that zlib and gzip read back, checksum included', () => {
    const text = 'rollback: the server could not be reached\nnon-ASCII: é ✓\n';
    const gz = storedGzip(text);
    expect(gunzipSync(gz).toString('utf8')).toBe(text);
    const gzip = spawnSync('gzip', ['-dc'], { input: gz });
    expect(gzip.status).toBe(0);
    expect(gzip.stdout.toString('utf8')).toBe(text);
  });

  it('is the same bytes on every call (no time, no machine in the header)', () => {
    expect(storedGzip('x')).toEqual(storedGzip('x'));
    expect(Array.from(storedGzip('x').slice(4, 8))).toEqual([0, 0, 0, 0]);
  });

  it('holds the empty text and refuses more than one stored block', () => {
    expect(gunzipSync(storedGzip('')).toString()).toBe('');
    expect(gunzipSync(storedGzip('a'.repeat(0xffff))).length).toBe(0xffff);
    expect(() => storedGzip('a'.repeat(0x10000))).toThrow('longer than one stored block');
  });

  it('a corrupted copy fails its check', () => {
    const gz = storedGzip('some text');
    const last = gz.length - 9; // the last byte of the text, before the CRC and the length
    gz[last] = (gz[last] as number) ^ 0xff;
    expect(() => gunzipSync(gz)).toThrow();
  });
});

describe('printfOctal', () => {
  it('gives a printf format that writes back every byte, % and \\ included', () => {
    const bytes = Uint8Array.from([0, 1, 37, 92, 10, 39, 34, 36, 255, 0x1f, 0x8b]);
    const format = printfOctal(bytes);
    expect(format).toMatch(/^(\\[0-7]{3})+$/);
    const run = spawnSync('sh', ['-c', 'printf "$1"', 'sh', format]);
    expect(run.status).toBe(0);
    expect(Uint8Array.from(run.stdout)).toEqual(bytes);
  });
});
