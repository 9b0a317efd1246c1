/**
 * Publication into a system's chroot. The new files are written into a
 * fresh versioned directory, then the `config` symlink is replaced by a
 * rename (atomic), and only then is last_change_date rewritten: a machine
 * polling meanwhile downloads either the old files or the new ones, never a
 * mix, and a deploy killed at any point leaves the chroot whole.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Assembly } from './assemble.js';
import { systemChroot, versionDirName } from './layout.js';
import { MANIFEST_NAME, renderChangeStamp } from './manifest.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';

export interface Published {
  /** The manifest config/ holds now, if any. */
  manifest?: string;
  /** The digest last_change_date announces, if any. */
  stampDigest?: string;
}

/** What the chroot holds for a system now. */
export function readPublished(chrootDir: string, name: string): Published {
  const chroot = systemChroot(chrootDir, name);
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  };
  return {
    manifest: read(path.join(chroot.config, MANIFEST_NAME)),
    stampDigest: read(chroot.lastChangeDate)?.split(/\s/)[0] || undefined,
  };
}

/** True when config/ holds exactly `assembly` and last_change_date announces it. */
export function isPublished(published: Published, assembly: Assembly): boolean {
  return published.manifest === assembly.manifest && published.stampDigest === assembly.digest;
}

/**
 * The system's directory and logs/ with the ownership sshd's ChrootDirectory
 * demands: <name>/ root:sftp_users 0755 (nothing looser), logs/ owned by the
 * system's user so it can upload there and nowhere else.
 */
export function ensureSystemDirs(chrootDir: string, name: string, uid: number, sftpGroupId: number): void {
  const chroot = systemChroot(chrootDir, name);
  ensureDir(chroot.dir, 0, sftpGroupId);
  ensureDir(chroot.logs, uid, sftpGroupId);
}

/** A 0755 directory with that owner; left untouched when it already is one. */
function ensureDir(dir: string, uid: number, gid: number): void {
  let stats = lstatSync(dir, { throwIfNoEntry: false });
  if (stats && !stats.isDirectory()) {
    rmSync(dir, { force: true });
    stats = undefined;
  }
  if (!stats) mkdirSync(dir, { mode: 0o755 });
  if (!stats || stats.uid !== uid || stats.gid !== gid) chownSync(dir, uid, gid);
  if (!stats || (stats.mode & 0o7777) !== 0o755) chmodSync(dir, 0o755);
}

/** Writes `assembly` as the system's new config/ and announces it. */
export function publishSystem(chrootDir: string, assembly: Assembly, now: Date): void {
  const chroot = systemChroot(chrootDir, assembly.name);
  const versionName = versionDirName(assembly.digest);
  const versionDir = path.join(chroot.dir, versionName);
  const temporary = `${versionDir}.tmp-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  try {
    writeVersionDir(temporary, assembly);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }

  const current = currentVersion(chroot.config);
  if (current !== versionName) rmSync(versionDir, { recursive: true, force: true });
  if (!existsSync(versionDir)) renameSync(temporary, versionDir);
  else rmSync(temporary, { recursive: true, force: true });

  swapConfigLink(chroot.config, versionName, now);
  writeFileAtomicallySync(chroot.lastChangeDate, renderChangeStamp(assembly.manifest, now));
  removeOldVersions(chroot.dir, versionName, current);
}

function writeVersionDir(dir: string, assembly: Assembly): void {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const made = new Set<string>([dir]);
  for (const file of assembly.files) {
    const target = path.join(dir, file.relative);
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      mkdirSync(parent, { recursive: true, mode: 0o755 });
      made.add(parent);
    }
    copyFileSync(file.source, target);
    chmodSync(target, file.executable ? 0o755 : 0o644);
  }
  writeFileSync(path.join(dir, MANIFEST_NAME), assembly.manifest, { mode: 0o644 });
}

/** The version directory `config` points to, if it is a link. */
function currentVersion(configLink: string): string | undefined {
  try {
    return readlinkSync(configLink);
  } catch {
    return undefined;
  }
}

function swapConfigLink(configLink: string, versionName: string, now: Date): void {
  const link = `${configLink}.tmp-${process.pid}`;
  rmSync(link, { force: true });
  symlinkSync(versionName, link);
  const existing = lstatSync(configLink, { throwIfNoEntry: false });
  if (existing?.isDirectory()) {
    // A chroot published by the original bento: its config/ is a plain
    // directory, which a symlink cannot replace in one rename. Moved aside,
    // it is removed with the other old versions.
    renameSync(configLink, path.join(path.dirname(configLink), `.config-legacy-${now.getTime()}`));
  }
  renameSync(link, configLink);
}

/**
 * Keeps the current version and the one before it (a machine may still be
 * downloading it); removes older ones and leftovers of interrupted runs.
 */
function removeOldVersions(systemDir: string, current: string, previous: string | undefined): void {
  for (const entry of readdirSync(systemDir)) {
    // Temporary names: the config link's, and last_change_date's of this bento and of earlier ones.
    if (!entry.startsWith('.config-') && !/^config\.tmp-|^\.?last_change_date\.tmp-/.test(entry)) continue;
    if (entry === current || entry === previous) continue;
    rmSync(path.join(systemDir, entry), { recursive: true, force: true });
  }
}

