/**
 * Publication's side of states.txt (docs/protocol.md §3): systems' lines
 * set or removed, the file replaced atomically (write + rename) so that a
 * reader never sees half of it, the lines of systems a deploy does not
 * touch kept. One read and at most one write for any number of systems: a
 * deploy records every line of a batch at once (publish.ts,
 * publishStagedBatch). The format itself is protocol/states-file.ts.
 */
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { readStatesFile, renderStates, statesFilePath, validStates } from '../protocol/states-file.js';

/**
 * Sets each entry of `changes` (undefined: removes it, for a system without
 * a flake) and replaces states.txt atomically when that changes it. Lines
 * that cannot be used (see parseStates) are dropped on the way: nothing can
 * read them. Returns the entries they had before, so that publications that
 * then fail can put them back.
 */
export function recordStates(chrootDir: string, changes: ReadonlyMap<string, string | undefined>): Map<string, string | undefined> {
  const file = readStatesFile(chrootDir);
  const states = validStates(file);
  const previous = new Map<string, string | undefined>();
  let changed = file.warnings.length > 0 || states.size !== file.entries.size;
  for (const [name, storeName] of changes) {
    previous.set(name, states.get(name));
    if (states.get(name) === storeName) continue;
    changed = true;
    if (storeName === undefined) states.delete(name);
    else states.set(name, storeName);
  }
  if (changed) writeFileAtomicallySync(statesFilePath(chrootDir), renderStates(states));
  return previous;
}

/** recordStates for one system; returns the entry it had before. */
export function recordState(chrootDir: string, name: string, storeName: string | undefined): string | undefined {
  return recordStates(chrootDir, new Map([[name, storeName]])).get(name);
}
