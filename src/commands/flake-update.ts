/**
 * `bento flake-update [input]`: updates the lock file of every flake under
 * hosts/ (found recursively, as the original bento did), all inputs or only
 * `input`, and prints one line per flake saying what changed, from a
 * comparison of flake.lock before and after.
 *
 * Flakes are updated one after the other: they usually share inputs
 * (nixpkgs), which Nix then fetches once. A flake that fails is reported with
 * Nix's explanation and the others still update; the exit status is then 1.
 */
import { UserError } from '../errors.js';
import { updateHostFlakeLock } from '../fleet/host-flake-lock.js';
import { findFlakes, missingHostsError, type FoundFlakes } from '../fleet/host-tree.js';
import { requireFleetDirectory } from '../config/config.js';
import { sanitizeLines } from '../log.js';
import { compareLocks, describeLockChange, lockHasInput, parseFlakeLock, rootInputNames, type LockedInput } from '../nix/flake-lock.js';
import { writeText as write } from '../util/write-stream.js';
import { defineCommand, type CommandIO } from './io.js';

export interface FlakeUpdateOptions {
  fleetDir: string;
  /** Only this input (`nixpkgs`, or a nested path like `home-manager/nixpkgs`). */
  input?: string;
}

/** What Nix accepts in an input path: flake ids joined by `/`. */
const INPUT_PATH = /^[a-zA-Z][a-zA-Z0-9_-]*(\/[a-zA-Z][a-zA-Z0-9_-]*)*$/;

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

export async function flakeUpdateCommand(options: FlakeUpdateOptions, io: CommandIO): Promise<number> {
  const { fleetDir, input } = options;
  if (input !== undefined && !INPUT_PATH.test(input)) {
    throw new UserError(`${JSON.stringify(input)} is not a flake input name`, 'give the name of an input as in flake.nix (e.g. nixpkgs), or a nested one like home-manager/nixpkgs');
  }
  // It reads no config.sh, but says what every other command says of a directory that is not a fleet.
  requireFleetDirectory(fleetDir);
  let found: FoundFlakes;
  try {
    found = findFlakes(fleetDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missingHostsError(fleetDir);
    throw error;
  }
  for (const message of found.skipped) await write(io.stderr, `warning: ${sanitizeLines(message)}\n`);
  if (found.flakes.length === 0) {
    await write(io.stdout, 'no flake.nix under hosts/: nothing to update\n');
    return 0;
  }

  let failures = 0;
  let withInput = 0;
  for (const label of found.flakes) {
    let outcome: FlakeOutcome;
    try {
      // Nix locks a copy with the rights of an unprivileged user (fleet/host-flake-lock.ts).
      const result = await updateHostFlakeLock(fleetDir, label, input);
      outcome = result.ok ? { kind: 'updated', before: result.before, after: result.after } : { kind: 'failed', error: result.error };
    } catch (error) {
      // A lock file that cannot be read (a directory, no permission): this flake fails, the others go on.
      if (!(error instanceof Error) || !('code' in error)) throw error;
      outcome = { kind: 'failed', error: `${label}/flake.lock cannot be read: ${(error as NodeJS.ErrnoException).code}` };
    }
    const report = reportFlake(label, outcome, input);
    if (report.failed) failures++;
    if (report.hasInput && !report.failed) withInput++;
    if (report.line) await write(io.stdout, `${report.line}\n`);
    if (report.error) await write(io.stderr, `${report.error}\n`);
  }
  if (input !== undefined && withInput === 0 && failures === 0) {
    await write(io.stderr, `no flake under hosts/ has an input named ${JSON.stringify(input)}\n`);
    return 1;
  }
  return failures > 0 ? 1 : 0;
}

export const command = defineCommand<Record<string, never>, FlakeUpdateOptions>({
  define(command) {
    command.argument('[input]', 'only this input (e.g. nixpkgs, or home-manager/nixpkgs)');
  },
  options: ({ args }, world) => ({ fleetDir: world.fleetDir, input: args[0] as string | undefined }),
  run: flakeUpdateCommand,
});
