/**
 * `bento flake-update [input]`: updates the lock file of every flake under
 * hosts/ (found recursively, as the original bento did), all inputs or only
 * `input`, and prints one line per flake saying what changed, from a
 * comparison of flake.lock before and after (SPEC §8).
 *
 * Flakes are updated one after the other: they usually share inputs
 * (nixpkgs), which Nix then fetches once. A flake that fails is reported with
 * Nix's explanation and the others still update; the exit status is then 1.
 */
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { UserError } from '../errors.js';
import { sanitizeLines } from '../log.js';
import { compareLocks, describeLockChange, lockHasInput, parseFlakeLock, rootInputNames, updateFlakeLock, type LockedInput } from '../nix/flake-lock.js';
import { compareText } from '../status/read-chroot.js';

export interface FlakeUpdateOptions {
  fleetDir: string;
  /** Only this input (`nixpkgs`, or a nested path like `home-manager/nixpkgs`). */
  input?: string;
  stdout: Writable;
  stderr: Writable;
}

/** What Nix accepts in an input path: flake ids joined by `/`. */
const INPUT_PATH = /^[a-zA-Z][a-zA-Z0-9_-]*(\/[a-zA-Z][a-zA-Z0-9_-]*)*$/;

export interface FoundFlakes {
  /** Directories holding a flake.nix, relative to the fleet directory (`hosts/laptop`), sorted. */
  flakes: string[];
  /** What was left out and why (a flake.nix that is a symbolic link, a directory that cannot be read). */
  skipped: string[];
}

/**
 * Every directory under `hosts/` holding a flake.nix. `.git` is skipped and
 * symbolic links are never followed: the usual `utils -> ../../utils` link
 * leads out of hosts/, and a link inside it would list a flake twice.
 */
export function findFlakes(fleetDir: string): FoundFlakes {
  const found: FoundFlakes = { flakes: [], skipped: [] };
  const visit = (relative: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(path.join(fleetDir, relative), { withFileTypes: true });
    } catch (error) {
      // hosts/ itself missing is the caller's to explain; below it, one unreadable directory is skipped.
      if (relative === 'hosts') throw error;
      found.skipped.push(`${relative} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): skipped`);
      return;
    }
    for (const entry of entries) {
      if (entry.name === 'flake.nix') {
        if (entry.isFile()) found.flakes.push(relative);
        else if (entry.isSymbolicLink()) found.skipped.push(`${relative}/flake.nix is a symbolic link: skipped (make it a regular file to update it)`);
      } else if (entry.isDirectory() && entry.name !== '.git') {
        visit(`${relative}/${entry.name}`);
      }
    }
  };
  visit('hosts');
  found.flakes.sort(compareText);
  found.skipped.sort(compareText);
  return found;
}

/** The outcome of updating one flake. */
export type FlakeOutcome =
  | { kind: 'failed'; error: string }
  | { kind: 'updated'; before: string | undefined; after: string | undefined };

export interface FlakeReport {
  /** The line for stdout, or undefined. */
  line?: string;
  /** The message for stderr (a failure), or undefined. */
  error?: string;
  failed: boolean;
  /** False when `input` was given and this flake does not have it. */
  hasInput: boolean;
}

/**
 * Turns one flake's outcome into its report line. Pure: `before` and
 * `after` are the texts of flake.lock (undefined when there was none).
 */
export function reportFlake(label: string, outcome: FlakeOutcome, input?: string): FlakeReport {
  if (outcome.kind === 'failed') {
    return { error: `${label}: update failed:\n${sanitizeLines(outcome.error).replace(/^/gm, '  | ')}`, failed: true, hasInput: true };
  }
  let before: Map<string, LockedInput>;
  let after: Map<string, LockedInput>;
  try {
    before = outcome.before === undefined ? new Map() : parseFlakeLock(outcome.before);
  } catch {
    before = new Map(); // Nix rewrote a broken lock file: everything counts as new
  }
  try {
    after = outcome.after === undefined ? new Map() : parseFlakeLock(outcome.after);
  } catch (error) {
    return { error: `${label}: flake.lock cannot be read after the update: ${(error as Error).message}`, failed: true, hasInput: true };
  }
  const inputNames = outcome.after === undefined ? [] : rootInputNames(outcome.after);
  if (inputNames.length === 0) return { line: `${label}: no inputs`, failed: false, hasInput: input === undefined };
  const changes = compareLocks(before, after).map(describeLockChange);
  const hasInput = input === undefined || (outcome.after !== undefined && lockHasInput(outcome.after, input));
  const parts: string[] = [];
  if (!hasInput) parts.push(`no input named ${JSON.stringify(input)} (its inputs: ${inputNames.join(', ')})`);
  if (changes.length > 0) parts.push(changes.join(', '));
  else if (hasInput) parts.push('up to date');
  return { line: `${label}: ${parts.join('; ')}`, failed: false, hasInput };
}

export async function flakeUpdateCommand(options: FlakeUpdateOptions): Promise<number> {
  const { fleetDir, input } = options;
  if (input !== undefined && !INPUT_PATH.test(input)) {
    throw new UserError(`${JSON.stringify(input)} is not a flake input name`, 'give the name of an input as in flake.nix (e.g. nixpkgs), or a nested one like home-manager/nixpkgs');
  }
  let found: FoundFlakes;
  try {
    found = findFlakes(fleetDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UserError(`${path.join(fleetDir, 'hosts')} does not exist`, 'run bento in the fleet directory, or give it with --dir or BENTO_DIR');
    }
    throw error;
  }
  for (const message of found.skipped) await write(options.stderr, `warning: ${sanitizeLines(message)}\n`);
  if (found.flakes.length === 0) {
    await write(options.stdout, 'no flake.nix under hosts/: nothing to update\n');
    return 0;
  }

  let failures = 0;
  let withInput = 0;
  for (const label of found.flakes) {
    const dir = path.join(fleetDir, label);
    const lockFile = path.join(dir, 'flake.lock');
    let outcome: FlakeOutcome;
    try {
      const before = readIfPresent(lockFile);
      const result = await updateFlakeLock(dir, input);
      outcome = result.ok ? { kind: 'updated', before, after: readIfPresent(lockFile) } : { kind: 'failed', error: result.error };
    } catch (error) {
      // A lock file that cannot be read (a directory, no permission): this flake fails, the others go on.
      if (!(error instanceof Error) || !('code' in error)) throw error;
      outcome = { kind: 'failed', error: `${label}/flake.lock cannot be read: ${(error as NodeJS.ErrnoException).code}` };
    }
    const report = reportFlake(label, outcome, input);
    if (report.failed) failures++;
    if (report.hasInput && !report.failed) withInput++;
    if (report.line) await write(options.stdout, `${report.line}\n`);
    if (report.error) await write(options.stderr, `${report.error}\n`);
  }
  if (input !== undefined && withInput === 0 && failures === 0) {
    await write(options.stderr, `no flake under hosts/ has an input named ${JSON.stringify(input)}\n`);
    return 1;
  }
  return failures > 0 ? 1 : 0;
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Resolves once the text is handed to the stream, so nothing is lost if the CLI exits right after. */
function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}
