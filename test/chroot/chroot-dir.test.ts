/** The check sshd's ChrootDirectory makes, done before publishing. */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { chrootPathProblem, deployLockPath, lockChrootDir } from '../../src/chroot/chroot-dir.js';
import { CLI } from '../helpers/cli.js';
import { makeFleet } from '../helpers/fleet.js';

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

describe('lockChrootDir', () => {
  it.skipIf(!isRoot)('a lock that cannot be opened (a read-only /run) is an error that names it, not an internal error', () => {
    const fleet = makeFleet({ config: `CHROOT_DIR=/srv/bento-lock-ro-${process.pid}\nREMOTE_IP=127.0.0.1\n`, hosts: {} });
    try {
      // In a mount namespace of its own, so that only this bento sees /run read-only.
      const run = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs /run && exec "$@"', 'sh', process.execPath, CLI, 'reboots'], {
        encoding: 'utf8',
        env: { ...process.env, BENTO_DIR: fleet.root },
      });
      const lockFile = deployLockPath(`/srv/bento-lock-ro-${process.pid}`);
      expect(run.stderr).toContain(`bento: error: cannot take the deploy lock of /srv/bento-lock-ro-${process.pid}: EROFS: read-only file system, open '${lockFile}'\n  bento keeps it in /run, which must be writable\n`);
      expect(run.status).toBe(1);
    } finally {
      fleet.cleanup();
      rmSync(`/srv/bento-lock-ro-${process.pid}`, { recursive: true, force: true });
    }
  });
});
