/**
 * Where generate keeps its record: root's in a root-only cache directory,
 * trusted only when nobody else could have written it; a user's in their
 * cache directory, trusted only when theirs alone. Root: files of other
 * owners are made with chown.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRecordOf, generateRecordPath, rootGenerateRecord, userCacheDir, userGenerateRecord } from '../../../src/commands/shared/generate-record-store.js';

const isRoot = process.getuid?.() === 0;
const config = { chrootDir: '/srv/some-chroot' };

describe.skipIf(!isRoot)("root's record", () => {
  // Not under /tmp: every directory above the cache must be root's and not writable by others.
  const parent = mkdtempSync('/srv/bento-generate-record-');
  chmodSync(parent, 0o755);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));
  const cacheDir = path.join(parent, 'cache');
  const store = rootGenerateRecord(config, cacheDir);
  const file = generateRecordPath(config.chrootDir, cacheDir);

  it('is kept root-only, one per CHROOT_DIR, and read back', () => {
    expect(store.read()).toBeUndefined();
    store.write('record\n');
    expect(store.read()).toBe('record\n');
    const stats = statSync(file);
    expect([stats.uid, stats.mode & 0o777, statSync(cacheDir).mode & 0o777]).toEqual([0, 0o600, 0o700]);
    expect(readdirSync(cacheDir)).toEqual([path.basename(file)]);
    expect(generateRecordPath('/srv/other-chroot', cacheDir)).not.toBe(file);
  });

  it('is not trusted when someone else could have written it', () => {
    store.write('record\n');
    chmodSync(file, 0o606);
    expect(store.read()).toBeUndefined();
    chmodSync(file, 0o600);
    chownSync(file, 1234, 0);
    expect(store.read()).toBeUndefined();
    chownSync(file, 0, 0);
    expect(store.read()).toBe('record\n');
    chmodSync(cacheDir, 0o777);
    expect(store.read()).toBeUndefined();
    // Nor written there: it would be written again by every run.
    store.write('another\n');
    chmodSync(cacheDir, 0o700);
    expect(store.read()).toBe('record\n');
  });
});

describe.skipIf(!isRoot)("a user's record", () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'bento-generate-record-user-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const uid = 4321;
  chownSync(home, uid, 0);

  it('is kept in their cache directory, theirs alone', () => {
    const cacheDir = path.join(home, 'cache', 'bento');
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    chownSync(cacheDir, uid, 0);
    const store = userGenerateRecord(cacheDir, uid)(config);
    const file = generateRecordPath(config.chrootDir, cacheDir);
    // Root writes it here, as uid 4321 would: then it is made theirs.
    store.write('record\n');
    expect(store.read()).toBeUndefined();
    chownSync(file, uid, 0);
    expect(store.read()).toBe('record\n');
    chmodSync(file, 0o620);
    expect(store.read()).toBeUndefined();
    chmodSync(file, 0o600);
    chmodSync(cacheDir, 0o770);
    expect(store.read()).toBeUndefined();
    chmodSync(cacheDir, 0o700);
    chownSync(cacheDir, 0, 0);
    expect(store.read()).toBeUndefined();
    chownSync(cacheDir, uid, 0);
    expect(store.read()).toBe('record\n');
    // A link in its place is not followed.
    const target = path.join(home, 'elsewhere');
    writeFileSync(target, 'planted\n');
    chownSync(target, uid, 0);
    rmSync(file);
    symlinkSync(target, file);
    expect(store.read()).toBeUndefined();
  });
});

describe('where a command keeps it', () => {
  it("root's, a user's by XDG_CACHE_HOME or HOME, or none", () => {
    expect(userCacheDir({ XDG_CACHE_HOME: '/c', HOME: '/home/u' })).toBe('/c/bento');
    expect(userCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/bento');
    expect(userCacheDir({ XDG_CACHE_HOME: 'relative' })).toBeUndefined();
    expect(userCacheDir({})).toBeUndefined();
    expect(generateRecordOf({ stdout: process.stdout, stderr: process.stderr, uid: 1000 })).toBeUndefined();
    expect(generateRecordOf({ stdout: process.stdout, stderr: process.stderr, env: { HOME: '/home/u' } })).toBeUndefined();
    expect(generateRecordOf({ stdout: process.stdout, stderr: process.stderr, uid: 1000, env: { HOME: '/home/u' } })).toBeTypeOf('function');
    expect(generateRecordOf({ stdout: process.stdout, stderr: process.stderr, uid: 0 })).toBeTypeOf('function');
  });
});
