/**
 * A directory's entries where its absence is no error: a walk of a tree
 * that may change under it, or a clean-up of what may be gone already.
 */
import { readdirSync } from 'node:fs';

/** The names in `dir`; undefined when it cannot be read (missing, not a directory, not readable). */
export function readDirIfAny(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch {
    return undefined;
  }
}
