/**
 * CHROOT_DIR itself: never a directory of the system, created if missing,
 * checked the way sshd will check it (every directory from / down owned by
 * root and writable by nobody else, or ChrootDirectory refuses the login),
 * and locked against a second deploy.
 */
import { accessSync, chmodSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemDirectoryProblem, SYSTEM_DIRECTORY_HINT } from '../config/system-directories.js';
import { UserError } from '../errors.js';
import { holdFileLock } from '../exec.js';
import { sha256 } from '../util/hash.js';
import { makeDirsSync } from '../util/make-dirs.js';

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

/** Why `dir`, or where it leads through symbolic links, is a system directory (config/system-directories.ts), or undefined. */
function systemDirectoryProblemOf(dir: string): string | undefined {
  let real: string | undefined;
  try {
    real = realpathSync(dir);
  } catch {
    // not there yet: deploy creates it
  }
  return systemDirectoryProblem(dir, real);
}

/** Creates CHROOT_DIR when missing and checks it; throws a UserError naming the problem. */
export function prepareChrootDir(chrootDir: string): void {
  // config.sh was refused already if CHROOT_DIR names one; this catches a link to one.
  const system = systemDirectoryProblemOf(chrootDir);
  if (system) throw new UserError(`CHROOT_DIR ${chrootDir} cannot hold SFTP chroots: ${system}`, SYSTEM_DIRECTORY_HINT);
  try {
    // 0755 whatever the umask: status and the machines' chroots below need it (docs/protocol.md §2).
    makeDirsSync(chrootDir, 0o755);
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
  try {
    // access(2) also reports a read-only file system (EROFS).
    accessSync(chrootDir, constants.W_OK);
  } catch (error) {
    throw new UserError(`CHROOT_DIR ${chrootDir} is not writable: ${(error as Error).message}`);
  }
}

/**
 * The file whose flock is the deploy lock of CHROOT_DIR. It stays when the
 * deploy ends: removing it would let a deploy waiting on the old inode and
 * one opening a new file both hold "the" lock.
 */
export function deployLockPath(chrootDir: string): string {
  return path.join(deployLockDir(), `bento-deploy-${sha256(path.resolve(chrootDir)).slice(0, 16)}.lock`);
}

/**
 * Where the deploy locks are. Root's: /run, which only root may write.
 * Otherwise (bento not root: its tests, which lock in-process; root on a
 * server without /run) a fixed name in the temporary directory, which
 * everyone may write, would be any local user's to take first: a file of
 * theirs, flocked for ever (every deploy "waits for another"), a FIFO
 * (opening it waits for a writer for ever), a link. So the locks are in
 * `bento-locks-<uid>` there, made 0700, used only while it is a directory
 * (not a link) of this user that nobody else may use; a refusal names it.
 * Not $XDG_RUNTIME_DIR: the lock needs one name for every run of the user,
 * and a run from a timer or cron has no such variable.
 */
export function deployLockDir(uid = process.getuid?.(), runDir = '/run'): string {
  if (uid === 0 && existsSync(runDir)) return runDir;
  const dir = path.join(os.tmpdir(), `bento-locks-${uid ?? 'user'}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot make ${dir} for bento's deploy locks: ${(error as Error).message}`, LOCK_DIR_HINT);
  }
  const stats = lstatSync(dir);
  const problem = !stats.isDirectory()
    ? 'it is not a directory'
    : stats.uid !== uid
      ? `it belongs to uid ${stats.uid}, not to this user (uid ${uid})`
      : (stats.mode & 0o077) !== 0
        ? `others may use it (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`
        : undefined;
  if (problem) throw new UserError(`${dir} cannot hold bento's deploy locks: ${problem}; another local user may have made it, to take the lock first`, LOCK_DIR_HINT);
  return dir;
}

const LOCK_DIR_HINT = 'remove it, or set TMPDIR to a directory of your own';

/**
 * Takes the deploy lock of CHROOT_DIR: an exclusive flock(2), which the
 * kernel releases when its holder dies, however it dies (exec.ts,
 * holdFileLock). It lives in /run (deployLockDir), not in CHROOT_DIR, and
 * taking it writes nothing, so that a deploy with nothing to do writes
 * nothing. Resolves to the function that releases it.
 */
export async function lockChrootDir(chrootDir: string): Promise<() => Promise<void>> {
  const lockFile = deployLockPath(chrootDir);
  const lock = await holdFileLock(lockFile, `the deploy lock of ${chrootDir}`);
  if (!lock) {
    const holder = lockHolder(lockFile);
    throw new UserError(`another bento deploy${holder ? ` (pid ${holder})` : ''} is publishing into ${chrootDir}; wait for it to finish`);
  }
  return lock.release;
}

/** For the message only: a process, not this one, that has `lockFile` open (the lock is the flock, whoever has the file open). */
function lockHolder(lockFile: string): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === lockFile) return Number(pid);
      } catch {
        // gone meanwhile
      }
    }
  }
  return undefined;
}
