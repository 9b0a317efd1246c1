/**
 * Copies a host directory with its symlinks followed (the usual
 * `utils -> ../../utils` link becomes a real directory), which is what a
 * machine receives and what Nix evaluates. Build results (`result` links into
 * /nix/store) and `.git` are left out: they are never configuration.
 */
import { cp, readlink, lstat } from 'node:fs/promises';
import path from 'node:path';

export async function copyHostTree(source: string, destination: string): Promise<void> {
  await cp(source, destination, {
    recursive: true,
    dereference: true,
    errorOnExist: false,
    force: true,
    filter: async (entry) => {
      if (path.basename(entry) === '.git') return false;
      const stats = await lstat(entry);
      if (stats.isSymbolicLink()) {
        const target = await readlink(entry);
        if (target.startsWith('/nix/store/')) return false;
      }
      return true;
    },
  });
}
