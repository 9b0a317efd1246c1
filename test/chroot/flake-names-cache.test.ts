/**
 * Deploy's cache of the flakes' system names, one per CHROOT_DIR: root's
 * alone, trusted only when nobody else could have written it, rewritten
 * only when it changes. Root: the cache directory must be root's.
 */
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flakeNamesCachePath, parseFlakeNamesCache, readFlakeNamesCache, renderFlakeNamesCache, saveFlakeNamesCache } from '../../src/chroot/flake-names-cache.js';

const isRoot = process.getuid?.() === 0;
const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);

describe.skipIf(!isRoot)('the flake names cache', () => {
  // Not under /tmp: every directory above the cache must be root's and not writable by others.
  const parent = mkdtempSync('/srv/bento-names-cache-');
  chmodSync(parent, 0o755);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));
  const cacheDir = path.join(parent, 'cache');
  const chrootDir = '/srv/some-chroot';
  const file = flakeNamesCachePath(chrootDir, cacheDir);
  const read = () => readFlakeNamesCache(chrootDir, cacheDir);
  const save = (entries: Map<string, string[]>) => saveFlakeNamesCache(chrootDir, entries, cacheDir);

  it('is saved root-only, one per CHROOT_DIR, read back, and not rewritten when unchanged', () => {
    expect(read()).toEqual(new Map());
    const entries = new Map([[KEY_A, ['web', 'db']], [KEY_B, []]]);
    expect(save(entries)).toBe(true);
    const stats = statSync(file, { bigint: true });
    expect([stats.uid, stats.mode & 0o777n]).toEqual([0n, 0o600n]);
    expect(read()).toEqual(entries);
    expect(save(new Map([[KEY_B, []], [KEY_A, ['web', 'db']]]))).toBe(true);
    const again = statSync(file, { bigint: true });
    expect([again.ino, again.mtimeNs, again.ctimeNs]).toEqual([stats.ino, stats.mtimeNs, stats.ctimeNs]);
    expect((statSync(cacheDir).mode & 0o777).toString(8)).toBe('700');
    expect(readdirSync(cacheDir)).toEqual([path.basename(file)]);
    expect(flakeNamesCachePath('/srv/other-chroot', cacheDir)).not.toBe(file);
    // A change replaces it.
    save(new Map([[KEY_A, ['web']]]));
    expect(read()).toEqual(new Map([[KEY_A, ['web']]]));
  });

  it('is not trusted when someone else could have written it, nor when it is damaged', () => {
    save(new Map([[KEY_A, ['web']]]));
    chmodSync(file, 0o620);
    expect(read()).toEqual(new Map());
    chmodSync(file, 0o600);
    chownSync(file, 1234, 0);
    expect(read()).toEqual(new Map());
    chownSync(file, 0, 0);
    expect(read().size).toBe(1);
    chmodSync(cacheDir, 0o770);
    expect(read()).toEqual(new Map());
    chmodSync(cacheDir, 0o700);
    writeFileSync(file, '{"format": "bento flake names 1", "flakes": {');
    expect(read()).toEqual(new Map());
  });

  it('parses only what it renders: a bad key or name empties it', () => {
    expect(parseFlakeNamesCache(renderFlakeNamesCache(new Map([[KEY_A, ['web']]])))).toEqual(new Map([[KEY_A, ['web']]]));
    expect(parseFlakeNamesCache('{"format": "bento flake names 1", "flakes": {"x": ["web"]}}')).toEqual(new Map());
    expect(parseFlakeNamesCache(`{"format": "bento flake names 1", "flakes": {"${KEY_A}": ["../etc"]}}`)).toEqual(new Map());
    expect(parseFlakeNamesCache(`{"format": "other", "flakes": {"${KEY_A}": ["web"]}}`)).toEqual(new Map());
  });
});
