/**
 * mkdir -p with an exact mode. mkdir(2) applies the process umask: under
 * `umask 077` the directories bento makes in the snapshot and in the chroots
 * would be 0700, which its own check of host directories then refuses and
 * the machines cannot read. Each missing directory is made one at a time,
 * from the top down, and given `mode` with chmod (which ignores the umask).
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
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
