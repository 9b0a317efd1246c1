/**
 * Deploy's cache of the fleet's system names: each flake's
 * `nixosConfigurations` names by flakeNamesKey (config.sh's values and the
 * flake's content, fleet/fleet.ts), so that a deploy of a fleet whose flakes
 * did not change needs neither a snapshot of hosts/ nor Nix
 * (docs/protocol.md §2). Content-addressed: an entry is never wrong, only
 * unused; the file holds the entries of the last deploy's fleet.
 *
 * It lives in CHROOT_DIR (one fleet's, §2), beside states.txt and outside
 * every system's chroot: no machine sees it, it is never in the fleet's
 * directory (committed) nor in generated/ (committed and served), and it
 * goes with the chroots it describes. Root's alone (0600), and trusted only
 * when nobody else could have written it: the file and CHROOT_DIR with every
 * directory above it root's and writable by nobody else, as sshd demands of
 * CHROOT_DIR anyway. A name read from it decides what is published and what
 * is retired.
 */
import { lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FLAKE_NAMES_CACHE } from '../protocol/layout.js';
import { SYSTEM_NAME } from '../protocol/names.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { chrootPathProblem } from './chroot-dir.js';

const FORMAT = 'bento flake names 1';

export function flakeNamesCachePath(chrootDir: string): string {
  return path.join(chrootDir, FLAKE_NAMES_CACHE);
}

/** The cached names, by key; empty when there is no cache, or one that cannot be trusted or read. */
export function readFlakeNamesCache(chrootDir: string): Map<string, string[]> {
  const file = flakeNamesCachePath(chrootDir);
  const stats = lstatSync(file, { throwIfNoEntry: false });
  if (!stats?.isFile() || stats.uid !== 0 || (stats.mode & 0o077) !== 0 || chrootPathProblem(chrootDir) !== undefined) return new Map();
  try {
    return parseFlakeNamesCache(readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
}

/** Parses the cache's text; anything unexpected makes the whole cache empty (it is asked again of Nix). */
export function parseFlakeNamesCache(text: string): Map<string, string[]> {
  const parsed = JSON.parse(text) as unknown;
  const entries = new Map<string, string[]>();
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== FORMAT) return entries;
  const flakes = (parsed as { flakes?: unknown }).flakes;
  if (typeof flakes !== 'object' || flakes === null) return entries;
  for (const [key, names] of Object.entries(flakes)) {
    if (!/^[0-9a-f]{64}$/.test(key) || !Array.isArray(names) || !names.every((name) => typeof name === 'string' && SYSTEM_NAME.test(name))) return new Map();
    entries.set(key, names as string[]);
  }
  return entries;
}

export function renderFlakeNamesCache(entries: ReadonlyMap<string, readonly string[]>): string {
  const flakes = Object.fromEntries([...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ format: FORMAT, flakes })}\n`;
}

/**
 * Replaces the cache with `entries` (the fleet's flakes now) when that
 * changes it: a deploy with nothing new writes nothing. A cache that cannot
 * be written is no failure (the next deploy asks Nix); false then.
 */
export function saveFlakeNamesCache(chrootDir: string, entries: ReadonlyMap<string, readonly string[]>): boolean {
  const text = renderFlakeNamesCache(entries);
  const current = readFlakeNamesCache(chrootDir);
  if (renderFlakeNamesCache(current) === text) return true;
  try {
    writeFileAtomicallySync(flakeNamesCachePath(chrootDir), text, 0o600, { durable: false });
    return true;
  } catch {
    return false;
  }
}
