/**
 * Flags and environment variables that several commands share: NAME and
 * --name, --jobs, VERBOSE and --verbose, the whole numbers commander checks.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { NixBuildOptions } from '../../nix/build.js';
import type { CommandWorld } from '../io.js';

/** Splits NAME="a b,c" into names: spaces or commas, as the original bento took them. */
export function parseNameList(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((name) => name !== '');
}

/** The systems named by NAME, then by the arguments or --name values (each may list several). */
export function selectedNames(world: CommandWorld, given: readonly string[] | undefined): string[] {
  return [...parseNameList(world.env.NAME), ...(given ?? []).flatMap((name) => parseNameList(name))];
}

/** commander prints the option and this message, then exits 1. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** Like positiveInteger, 0 included. */
export function nonNegativeInteger(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The flags of deploy and build that select systems and drive Nix. */
export interface SelectionFlags {
  name?: string[];
  jobs?: number;
  verbose?: boolean;
  builders?: string;
  maxJobs?: string;
}

/** Adds the options shared by deploy and build: --name, --jobs, --verbose, --builders, --max-jobs. */
export function defineSelectionFlags(command: Command): Command {
  return command
    .option('-n, --name <name...>', 'only these systems (also: NAME="a b"); default: all')
    .option('-j, --jobs <n>', 'Nix evaluations and builds at once (default: number of cores)', positiveInteger)
    .option('-v, --verbose', "show Nix's output as it builds (also: VERBOSE=1)")
    .option('--builders <spec>', "passed to Nix: build on these remote builders (Nix's --builders)")
    .option('--max-jobs <n>', "passed to Nix: its --max-jobs (0: only remote builders)");
}

/** What deploy and build take from the selection flags: names, jobs and Nix's options. */
export function selectionOptions(flags: SelectionFlags, world: CommandWorld, evaluateOnly?: boolean): { names: string[]; jobs: number; nix: NixBuildOptions } {
  return {
    names: selectedNames(world, flags.name),
    jobs: flags.jobs ?? world.cores,
    nix: { evaluateOnly, verbose: Boolean(flags.verbose || world.env.VERBOSE), builders: flags.builders, maxJobs: flags.maxJobs },
  };
}
