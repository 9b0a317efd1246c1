/**
 * What `bento diff` compares for each system (docs/protocol.md, "Status"):
 * the closure a machine runs (the store path in its latest log) against the
 * one it should run (its line in states.txt). Pure: decided from the fleet
 * model and a chroot snapshot, so every case is tested without Nix.
 */
import { STATES_FILE } from '../protocol/layout.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { storePathOf } from '../nix/diff-closures.js';
import type { SystemSnapshot } from './read-chroot.js';
import { selectLatestLog } from '../protocol/log-file.js';

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
