/**
 * A host directory as a machine receives it: its files with symlinks
 * followed (the usual `utils -> ../../utils` link becomes a real directory),
 * without `.git` or build results (`result` links into /nix/store). Listing,
 * copying for evaluation and builds, and publication all use this one rule.
 */
import { copyFileSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

/**
 * Regular files under `dir`, following symlinks; `.git` and links into
 * /nix/store (build results) are left out. `where` names `dir` in messages.
 */
export function listHostFiles(dir: string, where: string): { relative: string; source: string; executable: boolean }[] {
  const found: { relative: string; source: string; executable: boolean }[] = [];
  const walk = (absolute: string, relative: string, ancestors: Set<string>) => {
    for (const entry of readdirSync(absolute).sort()) {
      if (entry === '.git') continue;
      const entryPath = path.join(absolute, entry);
      const entryRelative = relative ? `${relative}/${entry}` : entry;
      const link = lstatSync(entryPath);
      if (link.isSymbolicLink() && readlinkSync(entryPath).startsWith('/nix/store/')) continue;
      let stats;
      try {
        stats = statSync(entryPath);
      } catch {
        throw new UserError(`${where}/${entryRelative} is a broken symlink`);
      }
      if (stats.isDirectory()) {
        const real = realpathSync(entryPath);
        if (ancestors.has(real)) throw new UserError(`${where}/${entryRelative} is a symlink loop`);
        walk(entryPath, entryRelative, new Set([...ancestors, real]));
      } else if (stats.isFile()) {
        found.push({ relative: entryRelative, source: entryPath, executable: (stats.mode & 0o111) !== 0 });
      }
    }
  };
  walk(dir, '', new Set([realpathSync(dir)]));
  return found;
}

/** Copies the files of a host directory (listHostFiles) into `destination`, modes kept. */
export function copyHostTree(source: string, destination: string, where = source): void {
  const made = new Set<string>();
  for (const file of listHostFiles(source, where)) {
    const target = path.join(destination, file.relative);
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    copyFileSync(file.source, target);
  }
}
