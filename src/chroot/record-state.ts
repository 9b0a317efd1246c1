/**
 * Publication's side of states.txt (docs/protocol.md §3): one system's line
 * set or removed, the file replaced atomically (write + rename) so that a
 * reader never sees half of it, the lines of systems a deploy does not
 * touch kept. The format itself is protocol/states-file.ts.
 */
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { readStatesFile, renderStates, statesFilePath, validStates } from '../protocol/states-file.js';

/**
 * Sets `name`'s entry (undefined: removes it, for a system without a flake)
 * and replaces states.txt atomically when that changes it. Lines that cannot
 * be used (see parseStates) are dropped on the way: nothing can read them.
 * Returns the entry it had before, so a publication that then fails can put
 * it back.
 */
export function recordState(chrootDir: string, name: string, storeName: string | undefined): string | undefined {
  const file = readStatesFile(chrootDir);
  const states = validStates(file);
  const previous = states.get(name);
  const clean = file.warnings.length === 0 && states.size === file.entries.size;
  if (previous === storeName && clean) return previous;
  if (storeName === undefined) states.delete(name);
  else states.set(name, storeName);
  writeFileAtomicallySync(statesFilePath(chrootDir), renderStates(states));
  return previous;
}
