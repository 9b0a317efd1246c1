/**
 * Building systems with Nix. The systems of every flake are evaluated by one
 * Nix process and built by one more (Nix shares and parallelises the work);
 * a failure is then tried again flake by flake and system by system, so
 * that it lands on the systems that caused it. A non-flake system is
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
import { run, type RunResult } from '../exec.js';
import { ToolError } from '../errors.js';
import { mapLimit, splitInto } from '../util/concurrency.js';
import { nixString } from '../util/quote.js';
import { attributeFailures } from './build-failures.js';
import { gitFlakeRef } from './flake-tree.js';
import { explainEvaluationError, pathFlakeRef, summarizeNixError } from './nix.js';
import { restrictedEvalArgs, restrictedEvaluation, type RestrictedEvaluation } from './restricted-eval.js';
import { evaluatesAsAnotherUser, otherEvaluator, runFleetNix, runFleetTool, unreadableByEvaluator } from './unprivileged.js';
import { FLAKES_PER_EVALUATOR, withWrapperFlake } from './wrapper-flake.js';

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

/** Systems of one flake to build: the flake's git work tree (flake-tree.ts) and their names. */
export interface FlakeSystems {
  dir: string;
  names: readonly string[];
}

/** A toplevel as `nix build` of it would build it: its derivation and its output. */
export interface Toplevel {
  drvPath: string;
  outPath: string;
}

/**
 * flake.nix of the flake whose output `toplevels` lists, for each flake of
 * `flakes` in order, `[ drvPath outPath ]` of the toplevel of each of its
 * systems. Each flake is an input named by its `git+file:` reference: Nix
 * fetches, locks (with the flake's own flake.lock) and calls it as it does
 * the flake built directly, which is what the machine builds, so the store
 * paths are the same (test/nix/build-flakes.test.ts builds both).
 */
export function toplevelsFlakeText(flakes: readonly FlakeSystems[]): string {
  const inputs = flakes.map((flake, index) => `  inputs.flake${index}.url = ${nixString(gitFlakeRef(flake.dir))};\n`).join('');
  const list = flakes.map((flake, index) => `      { flake = inputs.flake${index}; names = [ ${flake.names.map(nixString).join(' ')} ]; }\n`).join('');
  return (
    "# Written by bento: the toplevels of the fleet's flakes, each as its machine builds it.\n{\n" +
    inputs +
    '  outputs = inputs: {\n' +
    '    toplevels = map ({ flake, names }: map (name: let toplevel = flake.nixosConfigurations.${name}.config.system.build.toplevel; in [ toplevel.drvPath toplevel.outPath ]) names) [\n' +
    list +
    '    ];\n  };\n}\n'
  );
}

/** Parses the `toplevels` output of toplevelsFlakeText as `nix eval --json` prints it; undefined when it is not that. */
export function parseToplevels(stdout: string, flakes: readonly FlakeSystems[]): Toplevel[][] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== flakes.length) return undefined;
  const toplevels: Toplevel[][] = [];
  for (const [index, entries] of (parsed as unknown[]).entries()) {
    if (!Array.isArray(entries) || entries.length !== flakes[index]?.names.length) return undefined;
    const pairs: Toplevel[] = [];
    for (const entry of entries as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2 || !entry.every((item) => typeof item === 'string' && item.startsWith('/'))) return undefined;
      pairs.push({ drvPath: entry[0] as string, outPath: entry[1] as string });
    }
    toplevels.push(pairs);
  }
  return toplevels;
}

/**
 * The toplevels of the systems of `flakes`, evaluated in one Nix process
 * (pure mode, the evaluator's rights) through a flake whose inputs they
 * are: Nix fetches an uncommitted `git+file:` flake again for every
 * installable of a `nix build`, once here. Undefined when the evaluation
 * fails: the caller finds the culprit flake by flake.
 */
export async function evalFlakesToplevels(flakes: readonly FlakeSystems[], options: NixBuildOptions): Promise<Toplevel[][] | undefined> {
  return await withWrapperFlake('toplevels', toplevelsFlakeText(flakes), async (dir) => {
    // The staging copies are root's: Nix may not write a lock file into them, and the machine locks for itself anyway.
    const result = await runFleetNix(['eval', '--json', '--no-write-lock-file', ...maxJobs(options), pathFlakeRef(dir, 'toplevels')], {
      allowFailure: true,
      stream: options.verbose,
      builders: options.builders,
    });
    if (result.failed) return undefined;
    const toplevels = parseToplevels(result.stdout, flakes);
    if (!toplevels) throw new ToolError(result.command, 0, result.stdout.slice(0, 500), `unexpected output from ${result.command}`);
    return toplevels;
  });
}

/** Which of `storePaths` are not valid in the store (not built). One process. */
async function invalidStorePaths(storePaths: readonly string[]): Promise<Set<string>> {
  if (storePaths.length === 0) return new Set();
  const result = await run('nix-store', ['--check-validity', '--print-invalid', ...storePaths]);
  return new Set(result.stdout.split('\n').filter((line) => line !== ''));
}

/**
 * One Nix process realises the derivations it is given about one after
 * the other, whatever its max-jobs, when each takes little time to build
 * (a system's own, its dependencies substituted or built already): Nix's
 * own work per derivation (locks, the build user, registering the output)
 * is then the time, and it mostly waits. Two processes side by side take
 * about half as long (bench/README.md). So the derivations are shared
 * among up to `jobs` processes, at least this many each, so that each
 * repays its start; each process honours max-jobs, as the builds of
 * different flakes always did side by side. A dependency two shares need
 * is built once: the second waits for the first's lock, and looks again
 * every second with bento's daemon (DAEMON_LOCK_POLL_SETTINGS), every five
 * with another: bento not root builds in one process.
 */
const DERIVATIONS_PER_BUILDER = 16;

/** A flake group of at most this many that fails to evaluate is tried flake by flake, not split again. */
const SMALLEST_SPLIT = 4;

export interface BuildFlakesOptions extends NixBuildOptions {
  /** At most this many Nix calls at a time once a failure is tried again. */
  jobs: number;
  /** Called as the systems of the flake `flakes[index]` are done. */
  onFlake?: (index: number, outcomes: Map<string, BuildOutcome>) => void;
}

/**
 * Builds (or evaluates) the systems of every flake of `flakes`: their
 * toplevels in one evaluation (evalFlakesToplevels; many flakes in up to
 * `jobs` evaluations side by side), then every derivation
 * by `nix build --keep-going`, shared among up to `jobs` of them
 * (DERIVATIONS_PER_BUILDER). A group of flakes that fails to evaluate
 * is split in halves until the flakes at fault are found, and those are
 * built as before, flake by flake (buildFlakeSystems: together, then each
 * system); a system whose build failed gets the messages of the builders
 * that failed it (build-failures.ts), or, when none is found, its
 * derivation is built again alone (realiseAlone). Either way the failure
 * is Nix's own message for that flake or system.
 */
export async function buildFlakesSystems(flakes: readonly FlakeSystems[], options: BuildFlakesOptions): Promise<Map<string, BuildOutcome>[]> {
  const outcomes = new Array<Map<string, BuildOutcome>>(flakes.length);
  const done = (index: number, flakeOutcomes: Map<string, BuildOutcome>) => {
    outcomes[index] = flakeOutcomes;
    options.onFlake?.(index, flakeOutcomes);
  };
  const evaluated = new Map<number, Toplevel[]>();
  const unevaluated: number[] = [];
  const evaluate = async (indices: number[]): Promise<void> => {
    const toplevels = await evalFlakesToplevels(
      indices.map((index) => flakes[index] as FlakeSystems),
      options,
    );
    if (toplevels) indices.forEach((index, position) => evaluated.set(index, toplevels[position] as Toplevel[]));
    else if (indices.length <= SMALLEST_SPLIT) unevaluated.push(...indices);
    else {
      const half = Math.ceil(indices.length / 2);
      await evaluate(indices.slice(0, half));
      await evaluate(indices.slice(half));
    }
  };
  // Shared among up to `jobs` evaluations side by side (wrapper-flake.ts).
  await Promise.all(splitInto(flakes.map((_, index) => index), options.jobs, FLAKES_PER_EVALUATOR).map(evaluate));

  const retries: Array<{ index: number; name: string; toplevel: Toplevel }> = [];
  const partial = new Map<number, Map<string, BuildOutcome>>();
  if (evaluated.size > 0) {
    const byFlake = [...evaluated.entries()].sort(([a], [b]) => a - b);
    const toplevels = byFlake.flatMap(([, flakeToplevels]) => flakeToplevels);
    let log = '';
    let invalid = new Set<string>();
    let causes = new Map<string, string>();
    if (!options.evaluateOnly) {
      const drvPaths = [...new Set(toplevels.map((toplevel) => toplevel.drvPath))];
      // Shared among up to `jobs` builds side by side (DERIVATIONS_PER_BUILDER)
      // when they go through bento's own daemon, whose lock polling is short
      // (unprivileged.ts, DAEMON_LOCK_POLL_SETTINGS); else one build.
      const shares = evaluatesAsAnotherUser() ? options.jobs : 1;
      const realised = await Promise.all(splitInto(drvPaths, shares, DERIVATIONS_PER_BUILDER).map((part) => realise(part, options, { keepGoing: true })));
      log = realised.map((result) => result.all).join('');
      if (realised.some((result) => result.failed)) {
        invalid = await invalidStorePaths(toplevels.map((toplevel) => toplevel.outPath));
        // What failed each of them, from the log, not by building it again (build-failures.ts).
        causes = await attributeFailures(
          toplevels.filter((toplevel) => invalid.has(toplevel.outPath)).map((toplevel) => toplevel.drvPath),
          log,
          options.jobs,
        );
      }
    }
    for (const [index, flakeToplevels] of byFlake) {
      const flake = flakes[index] as FlakeSystems;
      const flakeOutcomes = new Map<string, BuildOutcome>();
      flake.names.forEach((name, position) => {
        const toplevel = flakeToplevels[position] as Toplevel;
        const cause = causes.get(toplevel.drvPath);
        // Its log is those builders' messages, not every build's output (shown once per failed system).
        if (cause !== undefined) flakeOutcomes.set(name, { ok: false, error: cause, log: cause });
        else if (invalid.has(toplevel.outPath)) retries.push({ index, name, toplevel });
        else flakeOutcomes.set(name, { ok: true, storePath: toplevel.outPath, log });
      });
      if (flakeOutcomes.size === flake.names.length) done(index, flakeOutcomes);
      else partial.set(index, flakeOutcomes);
    }
  }

  const pending = new Map([...partial.keys()].map((index) => [index, retries.filter((retry) => retry.index === index).length]));
  const tasks: Array<() => Promise<void>> = [
    ...unevaluated.sort((a, b) => a - b).map((index) => async () => {
      const flake = flakes[index] as FlakeSystems;
      done(index, await buildFlakeSystems(flake.dir, flake.names, options));
    }),
    ...retries.map(({ index, name, toplevel }) => async () => {
      const flake = flakes[index] as FlakeSystems;
      const flakeOutcomes = partial.get(index) as Map<string, BuildOutcome>;
      flakeOutcomes.set(name, await realiseAlone(toplevel, options));
      const left = (pending.get(index) as number) - 1;
      pending.set(index, left);
      // In the flake's order, as the other paths give them.
      if (left === 0) done(index, new Map(flake.names.map((each) => [each, flakeOutcomes.get(each) as BuildOutcome])));
    }),
  ];
  await mapLimit(tasks, options.jobs, (task) => task());
  return outcomes;
}

/** `nix build` of derivations evaluated already (through the evaluator, as every build of fleet code): what it printed. */
function realise(drvPaths: readonly string[], options: NixBuildOptions, { keepGoing }: { keepGoing: boolean }): Promise<RunResult> {
  return runFleetNix(['build', '--no-link', ...(keepGoing ? ['--keep-going'] : []), ...maxJobs(options), ...drvPaths], { allowFailure: true, stream: options.verbose, builders: options.builders });
}

/**
 * A toplevel evaluated already, built again alone for Nix's own message
 * about it (its derivation, not its flake: no evaluation again).
 */
async function realiseAlone(toplevel: Toplevel, options: NixBuildOptions): Promise<BuildOutcome> {
  const result = await realise([toplevel.drvPath], options, { keepGoing: false });
  if (result.failed) return { ok: false, error: summarizeNixError(result.stderr) || `exit status ${result.exitCode}`, log: result.all };
  return { ok: true, storePath: toplevel.outPath, log: result.all };
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
