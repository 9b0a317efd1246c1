/**
 * Deploy's cache of the fleet's system names: each flake's
 * `nixosConfigurations` names by flakeNamesKey (config.sh's values and the
 * flake's content, fleet/fleet.ts), so that a deploy of a fleet whose flakes
 * did not change needs neither a snapshot of hosts/ nor Nix.
 * Content-addressed: an entry is never wrong, only unused; the file holds
 * the entries of the last deploy's fleet. What a flake's content does not
 * fix is not remembered: a flake with an input its flake.lock does not pin
 * as Nix locked it (no lock, an input added since, an input's url or
 * follows edited without `bento flake-update` or `nix flake lock`, an
 * input of an input given by url in flake.nix, which Nix 2.8 never
 * reuses from the lock) is
 * locked anew by Nix in memory on every evaluation, and its names may
 * change with nothing in hosts/ changing (nix/flake-names.ts, which
 * compares the flake's lock with the one Nix wrote for the evaluation:
 * flake-lock.ts lockPinsEvaluation).
 *
 * One file per CHROOT_DIR (a CHROOT_DIR holds one fleet), in
 * /var/cache/bento: never in the fleet's directory (committed), in
 * generated/ (committed and served) or in CHROOT_DIR (published, and a
 * deploy that publishes one system changes nothing else there). Root's
 * alone (0600 in a 0700 directory), and trusted only when nobody else could
 * have written it: the file and every directory above it root's and
 * writable by nobody else. A name read from it decides what is published
 * and what is retired. Losing it costs one `nix eval`.
 */
import { SYSTEM_NAME } from '../protocol/names.js';
import { ROOT_CACHE_DIR, parseRootCache, rootCacheFile, writeRootCache } from './root-cache.js';

/** Where the caches live (root-cache.ts). */
export const FLAKE_NAMES_CACHE_DIR = ROOT_CACHE_DIR;

const FORMAT = 'bento flake names 1';

/** The cache of the fleet deployed into `chrootDir`, in `cacheDir`. */
export function flakeNamesCachePath(chrootDir: string, cacheDir = FLAKE_NAMES_CACHE_DIR): string {
  return rootCacheFile('flake-names', chrootDir, cacheDir);
}

/** The cached names, by key; empty when there is no cache, or one that cannot be trusted or read. */
export function readFlakeNamesCache(chrootDir: string, cacheDir = FLAKE_NAMES_CACHE_DIR): Map<string, string[]> {
  return parseRootCache(flakeNamesCachePath(chrootDir, cacheDir), cacheDir, parseFlakeNamesCache, new Map());
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
export function saveFlakeNamesCache(chrootDir: string, entries: ReadonlyMap<string, readonly string[]>, cacheDir = FLAKE_NAMES_CACHE_DIR): boolean {
  const text = renderFlakeNamesCache(entries);
  const current = readFlakeNamesCache(chrootDir, cacheDir);
  if (renderFlakeNamesCache(current) === text) return true;
  return writeRootCache(flakeNamesCachePath(chrootDir, cacheDir), cacheDir, text);
}
