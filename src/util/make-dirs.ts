/**
 * mkdir -p with an exact mode, and copies with exact modes. mkdir(2) and
 * open(2) apply the process umask: under
 * `umask 077` the directories bento makes in the snapshot and in the chroots
 * would be 0700, which its own check of host directories then refuses and
 * the machines cannot read. Each missing directory is made one at a time,
 * from the top down, and given `mode` with chmod (which ignores the umask).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** Makes `dir` and its missing parents with exactly `mode`; directories that exist are left as they are. */
export function makeDirsSync(dir: string, mode: number): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  while (!existsSync(current) && path.dirname(current) !== current) {
    missing.unshift(current);
    current = path.dirname(current);
  }
  for (const component of missing) {
    mkdirSync(component, { mode });
    chmodSync(component, mode);
  }
}

/** A file to copy: its path below the destination ('/' separators), where it is read from, and whether it is executable. */
export interface FileToCopy {
  relative: string;
  source: string;
  executable: boolean;
}

/**
 * Copies `files` below `destination`: the directories they need 0755, each
 * file 0755 or 0644 as it is executable or not, whatever the umask.
 */
export function copyFilesWithModes(destination: string, files: readonly FileToCopy[]): void {
  const made = new Set<string>([destination]);
  for (const file of files) {
    const target = path.join(destination, file.relative);
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      makeDirsSync(parent, 0o755);
      made.add(parent);
    }
    copyFileSync(file.source, target);
    chmodSync(target, file.executable ? 0o755 : 0o644);
  }
}
