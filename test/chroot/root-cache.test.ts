/**
 * Deploy's root-only cache files (src/chroot/root-cache.ts): one per kind
 * and CHROOT_DIR, written 0600 in a 0700 directory, read back only when
 * nobody but root could have written them; a file that cannot be written is
 * no failure. Root: the cache directory must be root's.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRootCache, readRootCache, rootCacheFile, writeRootCache } from '../../src/chroot/root-cache.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('root-only cache files', () => {
  // Not under /tmp: every directory above the cache must be root's and not writable by others.
  const parent = mkdtempSync('/srv/bento-root-cache-');
  chmodSync(parent, 0o755);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));
  const cacheDir = path.join(parent, 'cache');

  it('names one file per kind and CHROOT_DIR, the same for the same directory however it is written', () => {
    const file = rootCacheFile('kind', '/srv/chroot', cacheDir);
    expect(path.dirname(file)).toBe(cacheDir);
    expect(path.basename(file)).toMatch(/^kind-[0-9a-f]{16}\.json$/);
    expect(rootCacheFile('kind', '/srv/./chroot/', cacheDir)).toBe(file);
    expect(rootCacheFile('other', '/srv/chroot', cacheDir)).not.toBe(file);
    expect(rootCacheFile('kind', '/srv/chroot2', cacheDir)).not.toBe(file);
  });

  it('writes root-only and reads back; a file or directory others could write is not read', () => {
    const file = rootCacheFile('kind', '/srv/chroot', cacheDir);
    expect(readRootCache(file, cacheDir)).toBeUndefined();
    expect(writeRootCache(file, cacheDir, 'text\n')).toBe(true);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(cacheDir).mode & 0o777).toString(8)).toBe('700');
    expect(readRootCache(file, cacheDir)).toBe('text\n');
    chmodSync(file, 0o640);
    expect(readRootCache(file, cacheDir)).toBeUndefined();
    chmodSync(file, 0o600);
    chownSync(file, 65534, 0);
    expect(readRootCache(file, cacheDir)).toBeUndefined();
    chownSync(file, 0, 0);
    chmodSync(cacheDir, 0o777);
    expect(readRootCache(file, cacheDir)).toBeUndefined();
    chmodSync(cacheDir, 0o700);
    expect(readRootCache(file, cacheDir)).toBe('text\n');
  });

  it("parses the file's text with the cache's own parser; empty when there is none to trust, or the parser throws", () => {
    const file = rootCacheFile('parsed', '/srv/chroot', cacheDir);
    const parse = (text: string) => JSON.parse(text) as unknown;
    expect(parseRootCache(file, cacheDir, parse, 'empty')).toBe('empty');
    writeRootCache(file, cacheDir, '{"a":1}\n');
    expect(parseRootCache(file, cacheDir, parse, 'empty')).toEqual({ a: 1 });
    writeRootCache(file, cacheDir, '{"a":');
    expect(parseRootCache(file, cacheDir, parse, 'empty')).toBe('empty');
    writeRootCache(file, cacheDir, '{"a":1}\n');
    chmodSync(file, 0o644);
    expect(parseRootCache(file, cacheDir, parse, 'empty')).toBe('empty');
  });

  it('says false, without throwing, when the file cannot be written', () => {
    const blocked = path.join(parent, 'not-a-directory');
    writeFileSync(blocked, '');
    expect(writeRootCache(path.join(blocked, 'kind-0.json'), blocked, 'text\n')).toBe(false);
  });
});
