/**
 * The chroot layout (docs/protocol.md §2), the wire protocol with the machines:
 *
 *   CHROOT_DIR/states.txt                  <name>=<store path basename> per flake system
 *   CHROOT_DIR/rollout.json                the staged rollout in progress, if any
 *   CHROOT_DIR/<name>/                     root:sftp_users 0755
 *   CHROOT_DIR/<name>/last_change_date     mtime = last change; content = manifest digest
 *   CHROOT_DIR/<name>/config -> .config-<id>   the published files (a symlink swapped atomically)
 *   CHROOT_DIR/<name>/logs/                owned by the system's user
 *   CHROOT_DIR/<name>/removed              the system left the fleet (its logs stay for the record)
 *   CHROOT_DIR/<name>/.cache-<id>/         a prebuilt system's binary cache (docs/protocol.md §11)
 *   CHROOT_DIR/.bento-cache/               the NARs those caches link to, and what each cache holds; root's alone
 */
import path from 'node:path';

export const STATES_FILE = 'states.txt';
/** The staged rollout in progress, if any (docs/protocol.md §10). */
export const ROLLOUT_FILE = 'rollout.json';
export const SFTP_GROUP = 'sftp_users';
/** Entries of a system's directory. */
export const LAST_CHANGE_DATE = 'last_change_date';
export const CONFIG_LINK = 'config';
export const LOGS_DIR = 'logs';
/**
 * Written by deploy in the directory of a system that left the fleet, once
 * what was published for it is gone (docs/protocol.md §2): status no longer
 * shows it, the prunes leave its logs, a deploy that finds the system again
 * removes it.
 */
export const REMOVED_MARKER = 'removed';

export interface SystemChroot {
  dir: string;
  config: string;
  lastChangeDate: string;
  logs: string;
  removed: string;
}

export function systemChroot(chrootDir: string, name: string): SystemChroot {
  const dir = path.join(chrootDir, name);
  return {
    dir,
    config: path.join(dir, CONFIG_LINK),
    lastChangeDate: path.join(dir, LAST_CHANGE_DATE),
    logs: path.join(dir, LOGS_DIR),
    removed: path.join(dir, REMOVED_MARKER),
  };
}

/** The versioned directory a `config` link points to: `.config-<first 16 hex of the manifest digest>`. */
export function versionDirName(manifestDigest: string): string {
  return `.config-${manifestDigest.slice(0, 16)}`;
}

/**
 * The binary cache of a prebuilt system's configuration (docs/protocol.md
 * §11): `.cache-<first 16 hex of its manifest digest>`, so a machine finds
 * the cache of exactly the configuration it downloaded.
 */
export function cacheDirName(manifestDigest: string): string {
  return `.cache-${manifestDigest.slice(0, 16)}`;
}

/** In CHROOT_DIR: the NAR and narinfo files every chroot's cache links to, and the GC roots. No machine sees it. */
export const CACHE_POOL = '.bento-cache';
/** In a cache directory: the store path of the system, one line. */
export const CACHE_SYSTEM_FILE = 'system';
/** In a cache directory: every narinfo of the closure, gzipped, one download. */
export const CACHE_NARINFO_BUNDLE = 'narinfos.gz';
/** In a cache directory: the store path of the pin (pinStoreName), one line. */
export const CACHE_PIN_FILE = 'pin';

/**
 * The name of the pin of a prebuilt system's configuration: a store path
 * whose content is the system's store path, signed like the closure. Its
 * name carries the manifest digest, so a machine knows the pin of the
 * configuration it downloaded from any other (docs/protocol.md §11).
 */
export function pinStoreName(manifestDigest: string): string {
  return `bento-system-${manifestDigest}`;
}
