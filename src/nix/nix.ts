/**
 * Every call to nix goes through here. Flakes and the new CLI are enabled per
 * call (users may not have them in nix.conf), and failures are turned into
 * short messages that keep Nix's own last error lines.
 */
import { run, type RunOptions, type RunResult } from '../exec.js';
import { ToolError } from '../errors.js';

export const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes'] as const;

export async function runNix(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('nix', [...NIX_FEATURE_ARGS, ...args], options);
}

/** Removes ANSI colours and keeps the lines of Nix's output that explain an error. */
export function summarizeNixError(output: string): string {
  const plain = output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  const lines = plain.split('\n').filter((line) => line.trim() !== '');
  const errorAt = lines.findIndex((line) => line.startsWith('error'));
  const relevant = errorAt >= 0 ? lines.slice(errorAt) : lines.slice(-10);
  return relevant.slice(0, 15).join('\n');
}

/** A `path:` flake reference: the directory as it is, without git filtering. */
export function pathFlakeRef(directory: string, attribute?: string): string {
  return `path:${directory}${attribute ? `#${attribute}` : ''}`;
}

/**
 * The names of `nixosConfigurations` of several flakes in one Nix process
 * (one evaluator start instead of one per flake). Any failure rejects the
 * whole batch, with Nix's own explanation: the caller then asks flake by
 * flake to find the culprit.
 */
export async function evalFlakesSystemNames(flakeDirs: readonly string[]): Promise<string[][]> {
  const items = flakeDirs
    .map((dir) => `(builtins.attrNames (builtins.getFlake ${JSON.stringify(pathFlakeRef(dir))}).nixosConfigurations)`)
    .join(' ');
  const result = await runNix(['eval', '--impure', '--json', '--option', 'allow-import-from-derivation', 'true', '--expr', `[ ${items} ]`], {
    allowFailure: true,
  });
  if (result.failed) {
    if (/attribute 'nixosConfigurations' missing/.test(result.stderr)) throw new Error('the flake has no nixosConfigurations output');
    throw new Error(summarizeNixError(result.stderr) || `nix eval exited with ${result.exitCode}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== flakeDirs.length || !parsed.every((names) => Array.isArray(names) && names.every((n) => typeof n === 'string'))) {
    throw new ToolError(result.command, 0, result.stdout.slice(0, 500), `unexpected output from ${result.command}`);
  }
  return parsed as string[][];
}

/** The names of `nixosConfigurations` of one flake; throws Nix's explanation. */
export async function evalFlakeSystemNames(flakeDir: string): Promise<string[]> {
  return (await evalFlakesSystemNames([flakeDir]))[0] as string[];
}
