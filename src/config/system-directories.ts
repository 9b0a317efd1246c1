/**
 * Directories of the system that must never be CHROOT_DIR: a system named
 * `tmp` under `/` would re-mode /tmp, one named like a user under /home
 * would take over that home. CHROOT_DIR needs a directory of its own.
 * config.sh is refused with it when loaded (so `bento generate` never
 * renders server files for such a CHROOT_DIR) and deploy checks it again
 * where the directory leads (chroot/chroot-dir.ts): one rule for both.
 */
import path from 'node:path';

const SYSTEM_DIRECTORIES = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/nix', '/opt',
  '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/var',
  '/nix/store', '/nix/var', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share',
  '/var/cache', '/var/empty', '/var/lib', '/var/log', '/var/mail', '/var/run', '/var/spool', '/var/tmp',
]);
/** Trees no chroot can live in: virtual file systems, the Nix store. */
const SYSTEM_TREES = ['/proc/', '/sys/', '/dev/', '/nix/store/'];

/**
 * Why `dir` is a system directory, or undefined. `realDir`: where it leads
 * through symbolic links, when the caller looked (the check itself reads no
 * file system).
 */
export function systemDirectoryProblem(dir: string, realDir?: string): string | undefined {
  const candidates = [path.resolve(dir)];
  if (realDir !== undefined) candidates.push(realDir);
  for (const candidate of candidates) {
    if (SYSTEM_DIRECTORIES.has(candidate) || SYSTEM_TREES.some((tree) => candidate.startsWith(tree))) {
      return `${candidate} is a directory of the system itself; each machine's chroot would be a directory in it (CHROOT_DIR/<name>)`;
    }
  }
  return undefined;
}

/** What to do about it, for every message that refuses one. */
export const SYSTEM_DIRECTORY_HINT = 'give CHROOT_DIR a directory of its own in config.sh, e.g. /srv/bento or /home/chroot';
