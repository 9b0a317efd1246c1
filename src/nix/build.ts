/**
 * Building systems with Nix. All systems of one flake go to a single
 * `nix build` (Nix shares and parallelises the work); a non-flake system is
 * built as `nixos-rebuild build --no-flake` would. NOLOCALBUILD evaluates
 * only. Nix's own --builders and --max-jobs pass through, so a large fleet
 * can build on remote builders.
 *
 * Fleet code never gets more rights than its writer: it is evaluated and
 * built by an unprivileged user through bento's own daemon (unprivileged.ts),
 * a flake in pure mode, a configuration.nix in restricted mode
 * (restricted-eval.ts).
 */
import path from 'node:path';
import { run } from '../exec.js';
import { ToolError } from '../errors.js';
import { nixString } from '../util/quote.js';
import { gitFlakeRef } from './flake-tree.js';
import { explainEvaluationError, summarizeNixError } from './nix.js';
import { restrictedEvalArgs, restrictedEvaluation, type RestrictedEvaluation } from './restricted-eval.js';
import { otherEvaluator, runFleetNix, runFleetTool, unreadableByEvaluator } from './unprivileged.js';

export interface NixBuildOptions {
  /** Only evaluate: the store paths, without building them. */
  evaluateOnly?: boolean;
  /** Stream Nix's output (VERBOSE). */
  verbose?: boolean;
  builders?: string;
  maxJobs?: string;
}

export type BuildOutcome = { ok: true; storePath: string; log: string } | { ok: false; error: string; log: string };

export function toplevelAttribute(name: string): string {
  // System names are validated identifiers ([a-z_][a-z0-9_-]*): no quoting needed in an attribute path.
  return `nixosConfigurations.${name}.config.system.build.toplevel`;
}

function maxJobs(options: NixBuildOptions): string[] {
  return options.maxJobs === undefined ? [] : ['--max-jobs', options.maxJobs];
}

/** Parses `nix build --json`: one object per installable, in order. */
export function parseNixBuildJson(stdout: string): string[] {
  const parsed = JSON.parse(stdout) as unknown;
  if (!Array.isArray(parsed)) throw new Error('nix build --json did not print a list');
  return parsed.map((item: unknown) => {
    const out = (item as { outputs?: { out?: unknown } })?.outputs?.out;
    if (typeof out !== 'string') throw new Error('nix build --json: an entry has no outputs.out');
    return out;
  });
}

/**
 * Builds (or evaluates) the toplevels of `names` in the flake at
 * `flakeDir`, a git work tree with everything added (flake-tree.ts), in one
 * Nix call. When that call fails, each system is tried
 * on its own so that the failure lands on the systems that caused it.
 */
export async function buildFlakeSystems(flakeDir: string, names: readonly string[], options: NixBuildOptions): Promise<Map<string, BuildOutcome>> {
  const outcomes = new Map<string, BuildOutcome>();
  const batch = await buildFlakeBatch(flakeDir, names, options);
  if (batch.ok) {
    names.forEach((name, index) => outcomes.set(name, { ok: true, storePath: batch.storePaths[index] as string, log: batch.log }));
    return outcomes;
  }
  if (names.length === 1) {
    outcomes.set(names[0] as string, { ok: false, error: batch.error, log: batch.log });
    return outcomes;
  }
  for (const name of names) {
    const single = await buildFlakeBatch(flakeDir, [name], options);
    outcomes.set(name, single.ok ? { ok: true, storePath: single.storePaths[0] as string, log: single.log } : { ok: false, error: single.error, log: single.log });
  }
  return outcomes;
}

async function buildFlakeBatch(
  flakeDir: string,
  names: readonly string[],
  options: NixBuildOptions,
): Promise<{ ok: true; storePaths: string[]; log: string } | { ok: false; error: string; log: string }> {
  // The staging copy is root's: Nix may not write a lock file into it, and the machine locks for itself anyway.
  const result = options.evaluateOnly
    ? await runFleetNix(
        [
          'eval',
          '--json',
          '--no-write-lock-file',
          gitFlakeRef(flakeDir, 'nixosConfigurations'),
          '--apply',
          `configurations: map (name: configurations.\${name}.config.system.build.toplevel.outPath) [ ${names.map(nixString).join(' ')} ]`,
        ],
        { allowFailure: true, stream: options.verbose },
      )
    : await runFleetNix(['build', '--json', '--no-link', '--no-write-lock-file', ...maxJobs(options), ...names.map((name) => gitFlakeRef(flakeDir, toplevelAttribute(name)))], {
        allowFailure: true,
        stream: options.verbose,
        builders: options.builders,
      });
  if (result.failed) return { ok: false, error: explainEvaluationError(summarizeNixError(result.stderr), 'flake', otherEvaluator()) || `exit status ${result.exitCode}`, log: result.all };
  try {
    const storePaths = options.evaluateOnly ? (JSON.parse(result.stdout) as string[]) : parseNixBuildJson(result.stdout);
    if (storePaths.length !== names.length || !storePaths.every((p) => typeof p === 'string')) throw new Error('unexpected output');
    return { ok: true, storePaths, log: result.all };
  } catch (error) {
    throw new ToolError(result.command, 0, result.stdout.slice(0, 500), `unexpected output from nix: ${(error as Error).message}`);
  }
}

/**
 * Builds (or evaluates) a configuration.nix the way
 * `nixos-rebuild build --no-flake -I nixos-config=…` does: `<nixpkgs/nixos>`
 * from NIX_PATH, attribute `system`, in restricted mode (restricted-eval.ts):
 * it reads its own directory and the search path, nothing else.
 */
export async function buildNonFlakeSystem(configurationFile: string, options: NixBuildOptions): Promise<BuildOutcome> {
  const evaluation = await restrictedEvaluation();
  const restricted = restrictedEvalArgs(configurationFile, path.dirname(configurationFile), evaluation);
  const args = ['<nixpkgs/nixos>', '-A', 'system', ...restricted];
  const result = options.evaluateOnly
    ? await runFleetTool('nix-instantiate', args, { allowFailure: true, stream: options.verbose })
    : await runFleetTool('nix-build', ['--no-out-link', ...maxJobs(options), ...args], { allowFailure: true, stream: options.verbose, builders: options.builders });
  if (result.failed) {
    const error = explainEvaluationError(summarizeNixError(result.stderr), 'configuration', otherEvaluator()) || `exit status ${result.exitCode}`;
    // The cause, when it is one, goes first: a build line shows the first error line (nixErrorHeadline).
    const unreadable = (await unreadableSearchPath(evaluation)).map((line) => `error: ${line}`);
    return { ok: false, error: [...unreadable, error].join('\n'), log: result.all };
  }
  let storePath = result.stdout.trim().split('\n').pop() ?? '';
  if (options.evaluateOnly) {
    // nix-instantiate gives the derivation; its output path is known without building it.
    storePath = (await run('nix-store', ['--query', '--outputs', storePath])).stdout.trim().split('\n')[0] ?? storePath;
  }
  return { ok: true, storePath, log: result.all };
}

/**
 * For a failed evaluation: the search path entries the evaluator cannot
 * read (Nix treats them as missing: "file 'nixpkgs/nixos' was not found"),
 * one line each.
 */
async function unreadableSearchPath(evaluation: RestrictedEvaluation): Promise<string[]> {
  const local = evaluation.searchPath.filter((entry) => path.isAbsolute(entry.path));
  const unreadable = new Set(await unreadableByEvaluator(local.map((entry) => entry.path)));
  return local
    .filter((entry) => unreadable.has(entry.path))
    .map((entry) => `the Nix search path entry ${entry.prefix ? `${entry.prefix}=` : ''}${entry.path} cannot be read by the user ${otherEvaluator() ?? ''}, who evaluates configuration.nix files: make it readable by everyone (every entry is readable by fleet code anyway)`);
}
