/**
 * A configuration.nix is evaluated in Nix's restricted mode: it may read its
 * host directory (the staging copy of its snapshot) and the entries of the
 * Nix search path, nothing else of the server. Restricted mode is the second
 * wall: when bento is root the evaluation runs as the unprivileged evaluator
 * too (unprivileged.ts), because restricted mode checks only the paths the
 * Nix language reads, not what the tools Nix runs for it read or execute
 * (`builtins.fetchMercurial` runs hg, which runs the repository's own
 * .hg/hgrc hooks; `builtins.fetchGit` runs git, which follows a gitfile's
 * `gitdir:` anywhere on the server). The search path entries are resolved
 * by bento (links followed, as root) and must be readable by the evaluator.
 *
 * What Nix 2.8 does, as tried on this machine:
 * - restrict-eval allows exactly the search path entries (-I, nix-path) and,
 *   for an entry in the store, its closure; every file read (import,
 *   readFile, readDir, pathExists, path, filterSource, fetchGit and fetchurl
 *   of a local path or file:// URL) must lie under one of them, once
 *   symbolic links are resolved. So each entry is given with its links
 *   resolved: a NIX_PATH of channels (links into the store) works.
 * - builtins.getEnv returns "" and network fetches need `allowed-uris`.
 * - builtins.fetchTree of a local path is NOT checked: with the `flakes`
 *   feature on (an admin's nix.conf often enables it), it copies any
 *   directory of the server into the store. So that feature, and
 *   fetch-closure, are turned off for this evaluation; a configuration.nix
 *   that needs them fails with Nix's "experimental Nix feature … is
 *   disabled".
 * - Builds (and imports from derivations) run as Nix's build users
 *   (build-users-group = nixbld), through bento's daemon, which hands them
 *   none of root's credentials (unprivileged.ts).
 *
 * The server's own `nixos-config` entry is dropped: bento names the host's
 * configuration.nix instead, as nixos-rebuild does on the machine.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { nixSettings } from './nix.js';

export interface SearchPathEntry {
  /** `nixpkgs` in `nixpkgs=/path`; empty for a directory of entries. */
  prefix: string;
  path: string;
}

/**
 * The search path entry naming the host directory, so that restricted mode
 * lets the configuration read its own files (configuration.nix alone is
 * what `nixos-config` allows).
 */
export const HOST_ENTRY_PREFIX = 'bento-host';

/**
 * Experimental features that add no way to read the server's files during
 * evaluation (Nix 2.8's list, minus `flakes`, whose fetchTree and getFlake
 * copy local paths unchecked, and `fetch-closure`, which reads a store
 * named by URL).
 */
const HARMLESS_FEATURES = new Set(['nix-command', 'ca-derivations', 'impure-derivations', 'recursive-nix', 'no-url-literals']);

export { parseShowConfig } from './nix.js';

/** nix-path's entries (`prefix=path` or `path`), split as Nix splits them: at the first `=`. */
export function parseSearchPath(value: string): SearchPathEntry[] {
  return value
    .split(' ')
    .filter((word) => word !== '')
    .map((word) => {
      const at = word.indexOf('=');
      return at < 0 ? { prefix: '', path: word } : { prefix: word.slice(0, at), path: word.slice(at + 1) };
    });
}

/** Nix's isUri (src/libutil/util.cc): these entries are downloaded, not read from a directory. */
function isUri(value: string): boolean {
  if (value.startsWith('channel:')) return true;
  const scheme = /^([a-z0-9+]+):\/\//.exec(value)?.[1];
  return scheme !== undefined && ['http', 'https', 'file', 'channel', 'git', 's3', 'ssh'].includes(scheme);
}

/**
 * The entries as restricted mode must see them: links resolved (from
 * `cwd`, as Nix resolves relative entries), URLs as they are, `nixos-config`
 * left out. An entry that does not exist stays: Nix warns and ignores it.
 */
export function resolveSearchPath(entries: readonly SearchPathEntry[], cwd = process.cwd(), realpath: (file: string) => string = realpathSync): SearchPathEntry[] {
  return entries
    .filter((entry) => entry.prefix !== 'nixos-config')
    .map((entry) => {
      if (isUri(entry.path)) return entry;
      try {
        return { prefix: entry.prefix, path: realpath(path.resolve(cwd, entry.path)) };
      } catch {
        return entry;
      }
    });
}

/** The experimental features this evaluation keeps of those configured. */
export function restrictedFeatures(configured: string): string[] {
  return configured.split(' ').filter((feature) => HARMLESS_FEATURES.has(feature));
}

export interface RestrictedEvaluation {
  searchPath: SearchPathEntry[];
  features: string[];
}

/**
 * The server's search path and experimental features, as Nix itself
 * resolves them from NIX_PATH, nix.conf and NIX_CONFIG (`nix show-config`).
 */
export async function restrictedEvaluation(): Promise<RestrictedEvaluation> {
  const config = await nixSettings();
  return { searchPath: resolveSearchPath(parseSearchPath(config.get('nix-path') ?? '')), features: restrictedFeatures(config.get('experimental-features') ?? '') };
}

/**
 * The arguments of nix-build / nix-instantiate that evaluate
 * `configurationFile` (in `hostDir`) in restricted mode: bento's search
 * path replaces nix-path, with the configuration first.
 */
export function restrictedEvalArgs(configurationFile: string, hostDir: string, evaluation: RestrictedEvaluation): string[] {
  const entries: SearchPathEntry[] = [{ prefix: 'nixos-config', path: configurationFile }, ...evaluation.searchPath, { prefix: HOST_ENTRY_PREFIX, path: hostDir }];
  return [
    '--option',
    'restrict-eval',
    'true',
    '--option',
    'allow-unsafe-native-code-during-evaluation',
    'false',
    '--option',
    'experimental-features',
    evaluation.features.join(' '),
    '--option',
    'nix-path',
    '',
    ...entries.flatMap((entry) => ['-I', entry.prefix ? `${entry.prefix}=${entry.path}` : entry.path]),
  ];
}
