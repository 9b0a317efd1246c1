/** The check sshd's ChrootDirectory makes, done before publishing. */
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { chrootPathProblem, deployLockDir, deployLockPath, lockChrootDir } from '../../src/chroot/chroot-dir.js';
import { sha256 } from '../../src/util/hash.js';
import { runBounded } from '../helpers/bounded-child.js';
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

describe('deployLockDir', () => {
  const savedTmp = process.env.TMPDIR;
  afterEach(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });

  it('is /run for root; without it, a directory of this user in the temporary directory, made 0700', () => {
    expect(deployLockDir(0, '/run')).toBe('/run');
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-lock-dir-'));
    process.env.TMPDIR = dir;
    const uid = process.getuid?.() as number;
    const own = deployLockDir(uid, path.join(dir, 'no-run'));
    expect(own).toBe(path.join(dir, `bento-locks-${uid}`));
    expect(statSync(own).mode & 0o7777).toBe(0o700);
    expect(deployLockDir(uid, path.join(dir, 'no-run'))).toBe(own);
  });

  it.skipIf(!isRoot)("refuses, naming it, a directory of that name another user made first, one others may use, or a link", () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-lock-dir-'));
    process.env.TMPDIR = dir;
    const locks = path.join(dir, 'bento-locks-0');
    const noRun = path.join(dir, 'no-run');
    mkdirSync(locks, { mode: 0o700 });
    chownSync(locks, 65534, 65534);
    expect(() => deployLockDir(0, noRun)).toThrow(`${locks} cannot hold bento's deploy locks: it belongs to uid 65534, not to this user (uid 0); another local user may have made it, to take the lock first`);
    chownSync(locks, 0, 0);
    chmodSync(locks, 0o1777);
    expect(() => deployLockDir(0, noRun)).toThrow(`${locks} cannot hold bento's deploy locks: others may use it (mode 1777)`);
    rmSync(locks, { recursive: true });
    symlinkSync(dir, locks);
    expect(() => deployLockDir(0, noRun)).toThrow(`${locks} cannot hold bento's deploy locks: it is not a directory`);
  });

  it.skipIf(!isRoot)("a user's lock is not at a name in /tmp that another user could take first (a FIFO there: opening it waited for ever)", () => {
    // A temporary directory as /tmp is: everyone may write it, sticky.
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-lock-tmp-'));
    chmodSync(dir, 0o1777);
    const chrootDir = `/srv/bento-lock-user-${process.pid}`;
    // Where the lock of a bento not root used to be, taken by root (another user).
    const predictable = path.join(dir, `bento-deploy-${sha256(path.resolve(chrootDir)).slice(0, 16)}.lock`);
    expect(spawnSync('mkfifo', ['-m', '0666', predictable]).status).toBe(0);
    const body = 'const release = await imported.lockChrootDir(args[0]); await release(); return imported.deployLockPath(args[0]);';
    const outcome = runBounded('chroot/chroot-dir', body, [chrootDir], { as: { uid: 65534, gid: 65534 }, env: { TMPDIR: dir } });
    expect(outcome).toEqual({ value: path.join(dir, 'bento-locks-65534', path.basename(predictable)) });
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
