/**
 * `bento diff [NAME...]`: for each selected flake system, what would change
 * on the machine if it applied its new configuration: the closure it runs
 * (the store path in its latest log) against the one it should run (its line
 * in CHROOT_DIR/states.txt), through nvd when it is installed and
 * `nix store diff-closures` otherwise.
 *
 * Deciding what to compare is pure (status/diff-plan.ts); only the validity
 * check and the diff itself call Nix. A system that cannot be
 * compared gets one line saying why, and the others still are. Exit status:
 * 0, or 1 when some comparison could not be made.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { STATES_FILE } from '../protocol/layout.js';
import { loadFleet } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import { sanitizeLines } from '../log.js';
import { chooseClosureDiffTool, diffClosures, queryValidPaths, storePathOf } from '../nix/diff-closures.js';
import { planDiff, missingPathProblem, type DiffPlan } from '../status/diff-plan.js';
import { readChroot } from '../status/read-chroot.js';
import { writeText as write } from '../util/write-stream.js';
import { selectedNames } from './shared/flags.js';
import { reportSkippedHostDirs } from './generate.js';
import { defineCommand, type CommandIO } from './io.js';

export interface DiffOptions {
  fleetDir: string;
  /** From NAME and the positional arguments; empty means every system. */
  names: string[];
  /**
   * false: strip the colours of the diff tool's output (nix colours sizes
   * even into a pipe). Pass `stdout.isTTY && !NO_COLOR`; left out, the
   * output is passed through as it is.
   */
  color?: boolean;
}

/** The line printed for the systems that need no diff tool. */
export function describePlan(plan: Exclude<DiffPlan, { kind: 'compare' }>): string {
  switch (plan.kind) {
    case 'latest':
      return `${plan.name} is running the latest version`;
    case 'not-reported':
      return `${plan.name} has not reported yet${plan.neverDeployed ? ' (CHROOT_DIR has no directory for it: never deployed?)' : ''}`;
    case 'non-flake':
      return `${plan.name} is a non-flake system: it cannot be compared (no expected store path is recorded for non-flake systems)`;
    case 'no-expected':
      return `${plan.name}: cannot compare: ${plan.reason}`;
  }
}

export function compareHeader(plan: Extract<DiffPlan, { kind: 'compare' }>): string {
  return `Changes in ${plan.name} between ${plan.oldBasename} and ${plan.newBasename}`;
}

export async function diffCommand(options: DiffOptions, io: CommandIO): Promise<number> {
  const fleet = await loadFleet(options.fleetDir);
  await reportSkippedHostDirs(io, fleet);
  for (const broken of fleet.brokenHosts) {
    await write(io.stderr, `warning: ${broken.place}: ${sanitizeLines(broken.message)}\n  (its systems are left out)\n`);
  }
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);
  const chrootDir = fleet.config.chrootDir;
  if (selected.some((system) => system.kind === 'flake') && !existsSync(path.join(chrootDir, STATES_FILE))) {
    throw new UserError(
      `${path.join(chrootDir, STATES_FILE)} does not exist: no expected store path to compare with`,
      '`bento deploy` writes it; check CHROOT_DIR in config.sh if you have deployed already',
    );
  }
  const snapshot = await readChroot(chrootDir, { logSizeLimit: fleet.config.logSizeLimit });
  const byName = new Map(snapshot.systems.map((system) => [system.name, system]));
  const plans = selected.map((system) => planDiff(system, byName.get(system.name)));

  // Problems with the logs of the selected systems (a bad file name, say): the rest still counts.
  for (const system of selected) {
    for (const problem of byName.get(system.name)?.problems ?? []) await write(io.stderr, `warning: ${sanitizeLines(problem)}\n`);
  }

  const comparisons = plans.filter((plan): plan is Extract<DiffPlan, { kind: 'compare' }> => plan.kind === 'compare');
  const validPaths = await queryValidPaths(comparisons.flatMap((plan) => [storePathOf(plan.oldBasename), storePathOf(plan.newBasename)]));
  const tool = comparisons.length > 0 ? chooseClosureDiffTool(process.env.PATH) : 'nix';

  let failed = false;
  for (const plan of plans) {
    if (plan.kind !== 'compare') {
      if (plan.kind === 'no-expected') {
        failed = true;
        await write(io.stderr, `${sanitizeLines(describePlan(plan))}\n`);
      } else {
        await write(io.stdout, `${describePlan(plan)}\n`);
      }
      continue;
    }
    const missing = missingPathProblem(plan, validPaths);
    if (missing) {
      failed = true;
      await write(io.stderr, `${missing}\n`);
      continue;
    }
    await write(io.stdout, `${compareHeader(plan)}\n`);
    const result = await diffClosures(storePathOf(plan.oldBasename), storePathOf(plan.newBasename), tool);
    if (!result.ok) {
      failed = true;
      await write(io.stderr, `${plan.name}: cannot compare: ${result.command} failed:\n${sanitizeLines(result.error).replace(/^/gm, '  | ')}\n`);
    } else if (result.output.trim() === '') {
      await write(io.stdout, '  (no version or size change in the closure)\n');
    } else {
      const output = options.color === false ? stripColors(result.output) : result.output;
      await write(io.stdout, output.endsWith('\n') ? output : `${output}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Removes ANSI SGR sequences (colours, bold). */
export function stripColors(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

export const command = defineCommand<{ name?: string[] }, DiffOptions>({
  define(command) {
    command.option('-n, --name <name...>', 'only these systems (also: NAME="a b"); default: all');
  },
  options: ({ flags }, world) => ({ fleetDir: world.fleetDir, names: selectedNames(world, flags.name), color: world.isTTY && !world.env.NO_COLOR }),
  run: diffCommand,
});
