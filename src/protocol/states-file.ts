/**
 * states.txt: `<name>=<store path basename>` per flake system, the version
 * each machine should run (docs/protocol.md, "states.txt"). The one parser of
 * the format, used by publication (which rewrites the file) and by status and
 * diff (which read it). It is strict: a line that is not a system name, `=`
 * and a store path basename is reported, never guessed at.
 *
 * How publication rewrites it (atomically, keeping the lines of systems a
 * deploy does not touch) is chroot/record-state.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { SYSTEM_NAME } from './names.js';
import { compareText, truncate } from '../util/text.js';
import { STATES_FILE } from './layout.js';
import { storeBasenameProblem } from './store-path.js';

/** One system's line: its store path basename, or why the line cannot be used. */
export type StatesEntry = { line: number; storeBasename: string } | { line: number; problem: string };

export interface StatesFile {
  /** Each system's entry (the last one when a name is listed twice). */
  entries: Map<string, StatesEntry>;
  /** Lines that were ignored, and names listed twice: `states.txt:LINE: …`. */
  warnings: string[];
}

/** Parses the text of states.txt. Never throws: every problem is reported. */
export function parseStates(text: string): StatesFile {
  const result: StatesFile = { entries: new Map(), warnings: [] };
  text.split('\n').forEach((raw, index) => {
    const number = index + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const equals = line.indexOf('=');
    const name = equals === -1 ? '' : line.slice(0, equals);
    if (!SYSTEM_NAME.test(name)) {
      result.warnings.push(`${STATES_FILE}:${number}: ignored, not <system name>=<store path>: ${JSON.stringify(truncate(line))}`);
      return;
    }
    const previous = result.entries.get(name);
    if (previous !== undefined) result.warnings.push(`${STATES_FILE}:${number}: ${name} is listed again (line ${previous.line} is ignored)`);
    const storeBasename = line.slice(equals + 1);
    const problem = storeBasenameProblem(storeBasename);
    result.entries.set(
      name,
      problem ? { line: number, problem: `${STATES_FILE}:${number}: ${problem}: ${JSON.stringify(truncate(storeBasename))}` } : { line: number, storeBasename },
    );
  });
  return result;
}

/** The usable entries only: system name → store path basename. */
export function validStates(file: StatesFile): Map<string, string> {
  const states = new Map<string, string>();
  for (const [name, entry] of file.entries) if ('storeBasename' in entry) states.set(name, entry.storeBasename);
  return states;
}

export function renderStates(states: ReadonlyMap<string, string>): string {
  return [...states.entries()]
    .sort(([a], [b]) => compareText(a, b))
    .map(([name, storeName]) => `${name}=${storeName}\n`)
    .join('');
}

/** The path of states.txt in CHROOT_DIR. */
export function statesFilePath(chrootDir: string): string {
  return path.join(chrootDir, STATES_FILE);
}

/** Reads and parses states.txt; a missing file is an empty one, any other read error is thrown. */
export function readStatesFile(chrootDir: string): StatesFile {
  let text: string;
  try {
    text = readFileSync(statesFilePath(chrootDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: new Map(), warnings: [] };
    throw error;
  }
  return parseStates(text);
}

/**
 * readStatesFile for deploy and a rollout, which decide by it: a states.txt
 * that exists but cannot be read (a directory, a disk error) is the
 * server's to mend, not a bug in bento, so a UserError naming it stops them
 * before they publish. status reads it with readStatesFile and shows every
 * system unknown instead.
 */
export function readStatesFileToDecide(chrootDir: string): StatesFile {
  try {
    return readStatesFile(chrootDir);
  } catch (error) {
    throw new UserError(
      `cannot read ${statesFilePath(chrootDir)}: ${(error as Error).message}`,
      'restore it, or move it away: machines never read it (status shows from it what each flake system should run), and deploy writes the line of each system it publishes again',
    );
  }
}
