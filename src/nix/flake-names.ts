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
 * With the names come the names of each flake's own inputs (attribute names
 * only: nothing is fetched for them), so that the caller can tell whether
 * the flake's flake.lock pins them all (flake-lock.ts, pinsInputs): names
 * that depend on an input no lock pins may change with nothing in hosts/
 * changing, and are not remembered (chroot/flake-names-cache.ts).
 */
import { ToolError } from '../errors.js';
import { nixString } from '../util/quote.js';
import { explainEvaluationError, pathFlakeRef, summarizeNixError } from './nix.js';
import { otherEvaluator, runFleetNix } from './unprivileged.js';
import { withWrapperFlake } from './wrapper-flake.js';

/** A flake's system names, and the names of its own inputs. */
export interface FlakeNames {
  names: string[];
  inputs: string[];
}

/** flake.nix of the flake whose output `names` lists, for each flake in `flakeDirs` in order, its system names and its inputs' names. */
export function namesFlakeText(flakeDirs: readonly string[]): string {
  const inputs = flakeDirs.map((dir, index) => `  inputs.flake${index}.url = ${nixString(pathFlakeRef(dir))};\n`).join('');
  const list = flakeDirs.map((_, index) => `inputs.flake${index}`).join(' ');
  return `# Written by bento: the system names of the fleet's flakes, and their inputs' names.\n{\n${inputs}  outputs = inputs: {\n    names = map (flake: { names = builtins.attrNames flake.nixosConfigurations; inputs = builtins.attrNames flake.inputs; }) [ ${list} ];\n  };\n}\n`;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((each) => typeof each === 'string');
}

function isFlakeNames(value: unknown): value is FlakeNames {
  return typeof value === 'object' && value !== null && isStrings((value as FlakeNames).names) && isStrings((value as FlakeNames).inputs);
}

/**
 * The names of `nixosConfigurations` of several flakes in one Nix process.
 * Any failure rejects the whole batch, with Nix's own explanation: the
 * caller then asks flake by flake to find the culprit.
 */
export async function evalFlakesSystemNames(flakeDirs: readonly string[]): Promise<FlakeNames[]> {
  return await withWrapperFlake('names', namesFlakeText(flakeDirs), async (dir) => {
    const result = await runFleetNix(
      ['eval', '--json', '--no-write-lock-file', '--option', 'allow-import-from-derivation', 'true', pathFlakeRef(dir, 'names')],
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
    if (!Array.isArray(parsed) || parsed.length !== flakeDirs.length || !parsed.every(isFlakeNames)) {
      throw new ToolError(result.command, 0, result.stdout.slice(0, 500), `unexpected output from ${result.command}`);
    }
    return parsed;
  });
}

/** The names of `nixosConfigurations` of one flake, and of its inputs; throws Nix's explanation. */
export async function evalFlakeSystemNames(flakeDir: string): Promise<FlakeNames> {
  return (await evalFlakesSystemNames([flakeDir]))[0] as FlakeNames;
}
