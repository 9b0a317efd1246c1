/** The check sshd's ChrootDirectory makes, done before publishing. */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chrootPathProblem, deployLockPath, lockChrootDir } from '../../src/chroot/chroot-dir.js';

const isRoot = process.getuid?.() === 0;
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('chrootPathProblem', () => {
  it('refuses a path under a world-writable directory such as /tmp', () => {
    expect(chrootPathProblem('/tmp/chroot')).toMatch(/^\/tmp is writable by its group or others \(mode 1777\)$/);
  });

  it('accepts a missing path below root-owned directories (deploy creates it)', () => {
    expect(chrootPathProblem('/srv/bento-does-not-exist/chroot')).toBeUndefined();
  });

  it.skipIf(!isRoot)('names the first directory not owned by root, or writable by its group', () => {
    dir = mkdtempSync('/srv/bento-chroot-check-');
    chmodSync(dir, 0o755);
    const inner = path.join(dir, 'inner');
    mkdirSync(inner, { mode: 0o755 });
    expect(chrootPathProblem(path.join(inner, 'chroot'))).toBeUndefined();
    chmodSync(inner, 0o775);
    expect(chrootPathProblem(path.join(inner, 'chroot'))).toBe(`${inner} is writable by its group or others (mode 775)`);
    chmodSync(inner, 0o755);
    chownSync(inner, 1000, 0);
    expect(chrootPathProblem(inner)).toBe(`${inner} is owned by uid 1000, not root`);
  });
});

describe('deployLockPath', () => {
  it('names the file lockChrootDir locks, one per CHROOT_DIR, however the path is spelled', async () => {
    const chrootDir = `/srv/bento-lock-path-${process.pid}/chroot`;
    const lockFile = deployLockPath(chrootDir);
    expect(deployLockPath(`/srv/bento-lock-path-${process.pid}/./chroot/`)).toBe(lockFile);
    expect(deployLockPath(`/srv/bento-lock-path-${process.pid}/other`)).not.toBe(lockFile);
    rmSync(lockFile, { force: true });
    const release = await lockChrootDir(chrootDir);
    try {
      expect(existsSync(lockFile)).toBe(true);
    } finally {
      await release();
      rmSync(lockFile, { force: true });
    }
  });
});
