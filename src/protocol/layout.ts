/**
 * The chroot layout (docs/protocol.md §2), the wire protocol with the machines:
 *
 *   CHROOT_DIR/states.txt                  <name>=<store path basename> per flake system
 *   CHROOT_DIR/rollout.json                the staged rollout in progress, if any
 *   CHROOT_DIR/reboots.json                the reboot slots granted and awaited (REBOOT_MAX, reboot-slots.ts)
 *   CHROOT_DIR/<name>/                     root:sftp_users 0755
 *   CHROOT_DIR/<name>/last_change_date     mtime = last change; content = manifest digest
 *   CHROOT_DIR/<name>/config -> .config-<id>   the published files (a symlink swapped atomically)
 *   CHROOT_DIR/<name>/logs/                owned by the system's user
 *   CHROOT_DIR/<name>/removed              the system left the fleet (its logs stay for the record)
 *   CHROOT_DIR/<name>/reboot-slot          the reboot slot the machine holds (docs/protocol.md §12)
 *   CHROOT_DIR/<name>/.cache-<id>/         a prebuilt system's binary cache (docs/protocol.md §11)
 *   CHROOT_DIR/.bento-cache/               the NARs those caches link to, and what each cache holds; root's alone
 *
 * and the one walker of CHROOT_DIR (listChrootDir), which every stage and
 * command that looks for the systems there uses.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { TEMPORARY_NAME } from '../util/atomic-write.js';
import { compareText } from '../util/text.js';
import { SYSTEM_NAME } from './names.js';

export const STATES_FILE = 'states.txt';
/** The staged rollout in progress, if any (docs/protocol.md §10). */
export const ROLLOUT_FILE = 'rollout.json';
/** The reboot slots granted and awaited (docs/protocol.md §12). */
export const REBOOTS_FILE = 'reboots.json';
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

/** What CHROOT_DIR holds, by listChrootDir's rules. */
export interface ChrootListing {
  /**
   * The entries that are a system's directory, sorted by name: named like a
   * system, and a directory or a symbolic link to one (`link`). The
   * administrator owns CHROOT_DIR, so a reader may follow such a link; what
   * writes or removes (deploy's retirement, the prune) never goes through one.
   */
  systems: { name: string; link: boolean }[];
  /** Temporary files of an atomic write killed half-way (of this bento, `.<name>.tmp-<pid>`, and of earlier ones, `states.txt.<pid>.tmp`) and a killed deploy's staging area (stagingAreaName, a directory): deploy removes them. */
  temporaries: string[];
  /** Entries that are nothing of bento's, with why, for a reader's warning: a name no system can have, or not a directory. */
  strays: { name: string; why: 'not a system name' | 'not a directory' }[];
}

/** An older bento's temporary states.txt. */
const OLD_STATES_TEMPORARY = /^states\.txt\.\d+\.tmp$/;

/** What stagingAreaName gives: a dot name, never a system's. */
const STAGING_AREA = /^\.staging-\d+$/;

/**
 * The directory of CHROOT_DIR where deploy process `pid` writes version
 * directories while Nix builds (chroot/publish.ts, writeVersionsAhead):
 * in CHROOT_DIR, so on the systems' file system, and a rename moves each
 * into its system's directory. One left by a killed deploy is a temporary
 * entry of listChrootDir.
 */
export function stagingAreaName(pid: number): string {
  return `.staging-${pid}`;
}

/**
 * Lists CHROOT_DIR (docs/protocol.md §2); throws readdir's error. Skipped
 * silently: bento's own files (states.txt, rollout.json, reboots.json) and dot names (the
 * cache pool, files being written); a temporary file is listed apart; any
 * other entry is a system's directory or a stray. Names come from the
 * directory, which a machine cannot write: still, a stray's name is quoted
 * raw, to be sanitized where it is printed.
 */
export function listChrootDir(chrootDir: string): ChrootListing {
  const listing: ChrootListing = { systems: [], temporaries: [], strays: [] };
  for (const entry of readdirSync(chrootDir, { withFileTypes: true })) {
    const name = entry.name;
    if (TEMPORARY_NAME.test(name) || OLD_STATES_TEMPORARY.test(name) || STAGING_AREA.test(name)) listing.temporaries.push(name);
    else if (name === STATES_FILE || name === ROLLOUT_FILE || name === REBOOTS_FILE || name.startsWith('.')) continue;
    else if (!SYSTEM_NAME.test(name)) listing.strays.push({ name, why: 'not a system name' });
    else if (entry.isDirectory()) listing.systems.push({ name, link: false });
    else if (entry.isSymbolicLink() && isDirectoryBehind(path.join(chrootDir, name))) listing.systems.push({ name, link: true });
    else listing.strays.push({ name, why: 'not a directory' });
  }
  listing.systems.sort((a, b) => compareText(a.name, b.name));
  listing.temporaries.sort(compareText);
  return listing;
}

function isDirectoryBehind(link: string): boolean {
  try {
    return statSync(link).isDirectory();
  } catch {
    return false;
  }
}
