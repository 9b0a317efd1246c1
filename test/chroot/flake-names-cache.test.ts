/**
 * Deploy's cache of the flakes' system names in CHROOT_DIR: root's alone,
 * trusted only when nobody else could have written it, rewritten only when
 * it changes. Root: CHROOT_DIR must be root's, as sshd demands.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { flakeNamesCachePath, parseFlakeNamesCache, readFlakeNamesCache, renderFlakeNamesCache, saveFlakeNamesCache } from '../../src/chroot/flake-names-cache.js';
import { listChrootDir } from '../../src/protocol/layout.js';

const isRoot = process.getuid?.() === 0;
const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);

describe.skipIf(!isRoot)('the flake names cache', () => {
  // Not under /tmp: every directory above CHROOT_DIR must be root's and not writable by others.
  const chrootDir = mkdtempSync('/srv/bento-names-cache-');
  chmodSync(chrootDir, 0o755);
  afterAll(() => rmSync(chrootDir, { recursive: true, force: true }));
  const file = flakeNamesCachePath(chrootDir);

  it('is saved root-only, read back, and not rewritten when unchanged; status and the prunes do not see it', () => {
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map());
    const entries = new Map([[KEY_A, ['web', 'db']], [KEY_B, []]]);
    expect(saveFlakeNamesCache(chrootDir, entries)).toBe(true);
    const stats = statSync(file, { bigint: true });
    expect([stats.uid, stats.mode & 0o777n]).toEqual([0n, 0o600n]);
    expect(readFlakeNamesCache(chrootDir)).toEqual(entries);
    expect(saveFlakeNamesCache(chrootDir, new Map([[KEY_B, []], [KEY_A, ['web', 'db']]]))).toBe(true);
    const again = statSync(file, { bigint: true });
    expect([again.ino, again.mtimeNs, again.ctimeNs]).toEqual([stats.ino, stats.mtimeNs, stats.ctimeNs]);
    expect(listChrootDir(chrootDir)).toEqual({ systems: [], temporaries: [], strays: [] });
    // A change replaces it.
    saveFlakeNamesCache(chrootDir, new Map([[KEY_A, ['web']]]));
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map([[KEY_A, ['web']]]));
  });

  it('is not trusted when someone else could have written it, nor when it is damaged', () => {
    saveFlakeNamesCache(chrootDir, new Map([[KEY_A, ['web']]]));
    chmodSync(file, 0o620);
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map());
    chmodSync(file, 0o600);
    chownSync(file, 1234, 0);
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map());
    chownSync(file, 0, 0);
    expect(readFlakeNamesCache(chrootDir).size).toBe(1);
    chmodSync(chrootDir, 0o775);
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map());
    chmodSync(chrootDir, 0o755);
    writeFileSync(file, '{"format": "bento flake names 1", "flakes": {');
    expect(readFlakeNamesCache(chrootDir)).toEqual(new Map());
  });

  it('parses only what it renders: a bad key or name empties it', () => {
    expect(parseFlakeNamesCache(renderFlakeNamesCache(new Map([[KEY_A, ['web']]])))).toEqual(new Map([[KEY_A, ['web']]]));
    expect(parseFlakeNamesCache('{"format": "bento flake names 1", "flakes": {"x": ["web"]}}')).toEqual(new Map());
    expect(parseFlakeNamesCache(`{"format": "bento flake names 1", "flakes": {"${KEY_A}": ["../etc"]}}`)).toEqual(new Map());
    expect(parseFlakeNamesCache(`{"format": "other", "flakes": {"${KEY_A}": ["web"]}}`)).toEqual(new Map());
  });
});
