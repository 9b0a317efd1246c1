/**
 * CHROOT_DIR itself: created if missing, checked the way sshd will check it
 * (every directory from / down owned by root and writable by nobody else,
 * or ChrootDirectory refuses the login), and locked against a second deploy.
 */
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';

/** Why sshd would refuse a chroot under `dir`, or undefined. */
export function chrootPathProblem(dir: string): string | undefined {
  let current = path.resolve(dir);
  const components: string[] = [];
  for (;;) {
    components.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const component of components) {
    const stats = statSync(component, { throwIfNoEntry: false });
    if (!stats) return undefined;
    if (stats.uid !== 0) return `${component} is owned by uid ${stats.uid}, not root`;
    if ((stats.mode & 0o022) !== 0) return `${component} is writable by its group or others (mode ${(stats.mode & 0o7777).toString(8)})`;
  }
  return undefined;
}

/** Creates CHROOT_DIR when missing and checks it; throws a UserError naming the problem. */
export function prepareChrootDir(chrootDir: string): void {
  try {
    mkdirSync(chrootDir, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new UserError(`cannot create CHROOT_DIR ${chrootDir}: ${(error as Error).message}`);
  }
  const problem = chrootPathProblem(chrootDir);
  if (problem) {
    throw new UserError(
      `CHROOT_DIR ${chrootDir} cannot hold SFTP chroots: ${problem}`,
      'sshd only accepts a ChrootDirectory whose every directory from / down is owned by root and not group/other-writable (so not under /tmp); change CHROOT_DIR in config.sh or fix the modes',
    );
  }
}

/**
 * Takes the deploy lock of CHROOT_DIR; a lock whose process is gone is taken
 * over. It lives in /run, not in CHROOT_DIR, so that a deploy with nothing
 * to do leaves CHROOT_DIR untouched.
 */
export function lockChrootDir(chrootDir: string): () => void {
  const lockDir = existsSync('/run') && process.getuid?.() === 0 ? '/run' : os.tmpdir();
  const lockFile = path.join(lockDir, `bento-deploy-${createHash('sha256').update(path.resolve(chrootDir)).digest('hex').slice(0, 16)}.lock`);
  try {
    // access(2) also reports a read-only file system (EROFS).
    accessSync(chrootDir, constants.W_OK);
  } catch (error) {
    throw new UserError(`CHROOT_DIR ${chrootDir} is not writable: ${(error as Error).message}`);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(lockFile, 'utf8').trim());
      if (holder && isAlive(holder)) throw new UserError(`another bento deploy (pid ${holder}) is publishing into ${chrootDir}; wait for it to finish`);
      rmSync(lockFile, { force: true });
    }
  }
  throw new UserError(`cannot lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
