/**
 * `bento diff [NAME...]`: for each selected flake system, what would change
 * on the machine if it applied its new configuration (SPEC §8): the closure
 * it runs (the store path in its latest log) against the one it should run
 * (its line in CHROOT_DIR/states.txt), through nvd when it is installed and
 * `nix store diff-closures` otherwise.
 *
 * Deciding what to compare is pure (planDiff, missingPathProblem); only the
 * validity check and the diff itself call Nix. A system that cannot be
 * compared gets one line saying why, and the others still are. Exit status:
 * 0, or 1 when some comparison could not be made.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { UserError } from '../errors.js';
import { STATES_FILE } from '../chroot/layout.js';
import { loadFleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import { sanitizeLines } from '../log.js';
import { chooseClosureDiffTool, diffClosures, queryValidPaths, storePathOf } from '../nix/diff-closures.js';
import { readChroot, type SystemSnapshot } from '../status/read-chroot.js';
import { selectLatestLog } from '../status/states.js';

export interface DiffOptions {
  fleetDir: string;
  /** From NAME and the positional arguments; empty means every system. */
  names: string[];
  stdout: Writable;
  stderr: Writable;
  /**
   * false: strip the colours of the diff tool's output (nix colours sizes
   * even into a pipe). Pass `stdout.isTTY && !NO_COLOR`; left out, the
   * output is passed through as it is.
   */
  color?: boolean;
}

/** What diff does for one system. */
export type DiffPlan =
  /** Runs `oldBasename` (its latest log), should run `newBasename` (states.txt). */
  | { kind: 'compare'; name: string; oldBasename: string; newBasename: string; autoUpdated: boolean }
  | { kind: 'latest'; name: string; basename: string }
  | { kind: 'not-reported'; name: string; neverDeployed: boolean }
  | { kind: 'non-flake'; name: string }
  /** A flake system whose expected store path is not known: a failed comparison. */
  | { kind: 'no-expected'; name: string; reason: string };

/**
 * Decides what to do for one system from the fleet model and its chroot
 * snapshot (undefined when CHROOT_DIR has no directory for it).
 */
export function planDiff(system: Pick<FleetSystem, 'name' | 'kind'>, snapshot: SystemSnapshot | undefined): DiffPlan {
  const { name } = system;
  if (system.kind === 'non-flake') return { kind: 'non-flake', name };
  const latest = snapshot ? selectLatestLog(snapshot.logs) : undefined;
  if (!snapshot || !latest) return { kind: 'not-reported', name, neverDeployed: !snapshot };
  const expected = snapshot.expected;
  if (expected.kind === 'non-flake') {
    return { kind: 'no-expected', name, reason: `${STATES_FILE} has no line for it (run \`bento deploy\` to record the store path it should run)` };
  }
  if (expected.kind === 'unknown') {
    const why = snapshot.problems.find((problem) => problem.includes(STATES_FILE)) ?? `its line in ${STATES_FILE} cannot be used`;
    return { kind: 'no-expected', name, reason: why.startsWith(`${name}: `) ? why.slice(name.length + 2) : why };
  }
  const oldBasename = latest.log.storeBasename;
  if (oldBasename === expected.storeBasename) return { kind: 'latest', name, basename: oldBasename };
  return { kind: 'compare', name, oldBasename, newBasename: expected.storeBasename, autoUpdated: latest.log.result === 'autoupdate' };
}

/** Why a planned comparison cannot run, given the store paths present locally; undefined when it can. */
export function missingPathProblem(plan: Extract<DiffPlan, { kind: 'compare' }>, validPaths: ReadonlySet<string>): string | undefined {
  const oldPath = storePathOf(plan.oldBasename);
  const newPath = storePathOf(plan.newBasename);
  const missing: string[] = [];
  if (!validPaths.has(oldPath)) {
    const why = plan.autoUpdated
      ? 'it updated its own flake inputs (SELF_UPDATE), so that system was built on the machine, not here'
      : 'garbage-collected, or never built here';
    missing.push(`${oldPath} (what it runs, from its latest log) is not in the local store: ${why}`);
  }
  if (!validPaths.has(newPath)) missing.push(`${newPath} (what it should run, from ${STATES_FILE}) is not in the local store: garbage-collected since the deploy? \`bento build\` builds it again`);
  if (missing.length === 0) return undefined;
  return `${plan.name}: cannot compare ${plan.oldBasename} with ${plan.newBasename}: ${missing.join('; and ')}`;
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

export async function diffCommand(options: DiffOptions): Promise<number> {
  const fleet = await loadFleet(options.fleetDir);
  for (const broken of fleet.brokenHosts) {
    await write(options.stderr, `warning: ${broken.place}: ${sanitizeLines(broken.message)}\n  (its systems are left out)\n`);
  }
  const selected = selectSystems(fleet.systems, options.names);
  const chrootDir = fleet.config.chrootDir;
  if (selected.some((system) => system.kind === 'flake') && !existsSync(path.join(chrootDir, STATES_FILE))) {
    throw new UserError(
      `${path.join(chrootDir, STATES_FILE)} does not exist: no expected store path to compare with`,
      '`bento deploy` writes it; check CHROOT_DIR in config.sh if you have deployed already',
    );
  }
  const snapshot = await readChroot(chrootDir);
  const byName = new Map(snapshot.systems.map((system) => [system.name, system]));
  const plans = selected.map((system) => planDiff(system, byName.get(system.name)));

  // Problems with the logs of the selected systems (a bad file name, say): the rest still counts.
  for (const system of selected) {
    for (const problem of byName.get(system.name)?.problems ?? []) await write(options.stderr, `warning: ${sanitizeLines(problem)}\n`);
  }

  const comparisons = plans.filter((plan): plan is Extract<DiffPlan, { kind: 'compare' }> => plan.kind === 'compare');
  const validPaths = await queryValidPaths(comparisons.flatMap((plan) => [storePathOf(plan.oldBasename), storePathOf(plan.newBasename)]));
  const tool = comparisons.length > 0 ? chooseClosureDiffTool(process.env.PATH) : 'nix';

  let failed = false;
  for (const plan of plans) {
    if (plan.kind !== 'compare') {
      if (plan.kind === 'no-expected') {
        failed = true;
        await write(options.stderr, `${sanitizeLines(describePlan(plan))}\n`);
      } else {
        await write(options.stdout, `${describePlan(plan)}\n`);
      }
      continue;
    }
    const missing = missingPathProblem(plan, validPaths);
    if (missing) {
      failed = true;
      await write(options.stderr, `${missing}\n`);
      continue;
    }
    await write(options.stdout, `${compareHeader(plan)}\n`);
    const result = await diffClosures(storePathOf(plan.oldBasename), storePathOf(plan.newBasename), tool);
    if (!result.ok) {
      failed = true;
      await write(options.stderr, `${plan.name}: cannot compare: ${result.command} failed:\n${sanitizeLines(result.error).replace(/^/gm, '  | ')}\n`);
    } else if (result.output.trim() === '') {
      await write(options.stdout, '  (no version or size change in the closure)\n');
    } else {
      const output = options.color === false ? stripColors(result.output) : result.output;
      await write(options.stdout, output.endsWith('\n') ? output : `${output}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Removes ANSI SGR sequences (colours, bold). */
export function stripColors(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

/** Resolves once the text is handed to the stream, so nothing is lost if the CLI exits right after. */
function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}
