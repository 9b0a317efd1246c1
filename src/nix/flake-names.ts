/**
 * The system names of flakes: the attribute names of their
 * `nixosConfigurations`, asked of Nix in pure mode like every other
 * evaluation of fleet code, and with the evaluator's rights
 * (unprivileged.ts).
 *
 * `builtins.getFlake` on a directory needs impure mode (a `path:` flake
 * without a hash is not locked), which would let a flake read any file, and
 * read the environment, while its names are computed. Instead the flakes
 * become the inputs of a small flake bento writes, whose one output lists
 * their names: Nix locks and evaluates it in pure mode, all flakes in one
 * process (one evaluator start instead of one per flake).
 *
 * Nix writes the wrapper's flake.lock (in bento's temporary directory, not
 * in the fleet; wrapper-flake.ts): it says how Nix locked each flake's inputs for this
 * evaluation, which tells whether the flake's own flake.lock pins them
 * (flake-lock.ts, lockPinsEvaluation). Names that depend on an input no
 * lock pins may change with nothing in hosts/ changing, and are not
 * remembered (chroot/flake-names-cache.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ToolError } from '../errors.js';
import { nixString } from '../util/quote.js';
import { lockPinsEvaluation } from './flake-lock.js';
import { explainEvaluationError, pathFlakeRef, summarizeNixError } from './nix.js';
import { otherEvaluator, readEvaluatorFile, runFleetNix } from './unprivileged.js';
import { withWrapperFlake } from './wrapper-flake.js';

/** A flake's system names, and whether they rest only on what its files fix. */
export interface FlakeNames {
  names: string[];
  /** Its flake.lock pins every input as Nix locked it for this evaluation (lockPinsEvaluation), and Nix reuses it next time (no input of an input given by url: namesFlakeText). */
  lockPinned: boolean;
}

/**
 * flake.nix of the flake whose output `answer` holds `names`, for each
 * flake in `flakeDirs` in order, its system names, and `overridden`,
 * whether its flake.nix gives an input of one of its inputs otherwise than
 * by `follows` (`inputs.a.inputs.b.url = …`): Nix 2.8 never reuses the
 * lock's node of such an input (computeLocks: `!hasOverride`) and locks it
 * anew on every evaluation, with the `original` of the input's own
 * flake.nix, so that its lock reads as pinned while the branch moves. It
 * is read from the flake's flake.nix in the store, by Nix itself.
 */
export function namesFlakeText(flakeDirs: readonly string[]): string {
  const inputs = flakeDirs.map((dir, index) => `  inputs.flake${index}.url = ${nixString(pathFlakeRef(dir))};\n`).join('');
  const list = flakeDirs.map((_, index) => `inputs.flake${index}`).join(' ');
  const overridden = `let given = depth: declared: builtins.any (name: let input = declared.\${name}; in (depth > 0 && !(input ? follows)) || given (depth + 1) (input.inputs or { })) (builtins.attrNames declared); in given 0 ((import (flake.outPath + "/flake.nix")).inputs or { })`;
  return `# Written by bento: the system names of the fleet's flakes.\n{\n${inputs}  outputs = inputs: rec {\n    names = map (flake: builtins.attrNames flake.nixosConfigurations) [ ${list} ];\n    overridden = map (flake: ${overridden}) [ ${list} ];\n    answer = { inherit names overridden; };\n  };\n}\n`;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((each) => typeof each === 'string');
}

/** The flake.lock of the flake in `dir` (bento's copy); undefined when it has none that can be read (then nothing is pinned). */
function readLockText(dir: string): string | undefined {
  try {
    return readFileSync(path.join(dir, 'flake.lock'), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The names of `nixosConfigurations` of several flakes in one Nix process.
 * Any failure rejects the whole batch, with Nix's own explanation: the
 * caller then asks flake by flake to find the culprit.
 */
export async function evalFlakesSystemNames(flakeDirs: readonly string[]): Promise<FlakeNames[]> {
  return await withWrapperFlake('names', namesFlakeText(flakeDirs), async (dir) => {
    const result = await runFleetNix(
      // The wrapper's lock is written (into `dir`): how Nix locked each flake's inputs.
      ['eval', '--json', '--option', 'allow-import-from-derivation', 'true', pathFlakeRef(dir, 'answer')],
      { allowFailure: true },
    );
    if (result.failed) {
      if (/attribute 'nixosConfigurations' missing/.test(result.stderr)) throw new Error('the flake has no nixosConfigurations output');
      throw new Error(explainEvaluationError(summarizeNixError(result.stderr), 'flake', otherEvaluator()) || `nix eval exited with ${result.exitCode}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.stdout);
    } catch {
      parsed = undefined;
    }
    const { names, overridden } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { names?: unknown; overridden?: unknown };
    const sized = (value: unknown): value is unknown[] => Array.isArray(value) && value.length === flakeDirs.length;
    if (!sized(names) || !names.every(isStrings) || !sized(overridden) || !overridden.every((each) => typeof each === 'boolean')) {
      throw new ToolError(result.command, 0, result.stdout.slice(0, 500), `unexpected output from ${result.command}`);
    }
    // Still the lock with no inputs when Nix did not write it (an input it
    // could not lock: "will not write lock file"), or none that can be
    // read: no flake's names are remembered.
    let wrapperLock: string | undefined;
    try {
      wrapperLock = readEvaluatorFile(path.join(dir, 'flake.lock'));
    } catch {
      wrapperLock = undefined;
    }
    return names.map((each, index) => ({
      names: each,
      lockPinned: wrapperLock !== undefined && !overridden[index] && lockPinsEvaluation(readLockText(flakeDirs[index] as string), wrapperLock, `flake${index}`),
    }));
  }, { lockFile: true });
}

/** The names of `nixosConfigurations` of one flake, and of its inputs; throws Nix's explanation. */
export async function evalFlakeSystemNames(flakeDir: string): Promise<FlakeNames> {
  return (await evalFlakesSystemNames([flakeDir]))[0] as FlakeNames;
}
