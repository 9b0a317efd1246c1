/**
 * The chroot layout (SPEC §5), the wire protocol with the machines:
 *
 *   CHROOT_DIR/states.txt                  <name>=<store path basename> per flake system
 *   CHROOT_DIR/<name>/                     root:sftp_users 0755
 *   CHROOT_DIR/<name>/last_change_date     mtime = last change; content = manifest digest
 *   CHROOT_DIR/<name>/config -> .config-<id>   the published files (a symlink swapped atomically)
 *   CHROOT_DIR/<name>/logs/                owned by the system's user
 */
import path from 'node:path';

export const STATES_FILE = 'states.txt';
export const SFTP_GROUP = 'sftp_users';

export interface SystemChroot {
  dir: string;
  config: string;
  lastChangeDate: string;
  logs: string;
}

export function systemChroot(chrootDir: string, name: string): SystemChroot {
  const dir = path.join(chrootDir, name);
  return {
    dir,
    config: path.join(dir, 'config'),
    lastChangeDate: path.join(dir, 'last_change_date'),
    logs: path.join(dir, 'logs'),
  };
}

/** The versioned directory a `config` link points to: `.config-<first 16 hex of the manifest digest>`. */
export function versionDirName(manifestDigest: string): string {
  return `.config-${manifestDigest.slice(0, 16)}`;
}
