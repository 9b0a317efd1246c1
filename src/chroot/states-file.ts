/**
 * states.txt: `<name>=<store path basename>` per flake system, the version
 * each machine should run. Replaced atomically (write + rename) so a reader
 * never sees half a file; lines of systems this run does not touch are kept.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { STATES_FILE } from './layout.js';

export type States = Map<string, string>;

export function parseStates(text: string): States {
  const states: States = new Map();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) states.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return states;
}

export function renderStates(states: States): string {
  return [...states.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, storeName]) => `${name}=${storeName}\n`)
    .join('');
}

export function readStates(chrootDir: string): States {
  try {
    return parseStates(readFileSync(path.join(chrootDir, STATES_FILE), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
}

/** Sets `name`'s entry and replaces states.txt atomically. */
export function recordState(chrootDir: string, name: string, storeName: string): void {
  const states = readStates(chrootDir);
  if (states.get(name) === storeName) return;
  states.set(name, storeName);
  const target = path.join(chrootDir, STATES_FILE);
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, renderStates(states), { mode: 0o644 });
  renameSync(temporary, target);
}
