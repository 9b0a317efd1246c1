/**
 * The fleet as `bento status` and the alerts see it: each system's state
 * (a staged rollout's waiting systems held as "rollout pending"), the
 * systems that left, the warnings about what could not be read, and the
 * rollout in progress.
 */
import { waitingForWave, type RolloutState } from '../protocol/rollout-file.js';
import type { LogCache } from './log-cache.js';
import { readChroot } from './read-chroot.js';
import { decideStatus, holdForRollout, type SilenceRule, type SystemStatus } from './states.js';

export interface FleetReport {
  statuses: SystemStatus[];
  /** Systems that left the fleet: no row, one line under the table. */
  removed: string[];
  warnings: string[];
  /** The staged rollout in progress, if any. */
  rollout?: RolloutState;
}

/** `silence`: when a machine counts as silent (SILENT_AFTER, now); without it, none is. */
export async function readFleetReport(chrootDir: string, options: { logSizeLimit?: number; cache?: LogCache; silence?: SilenceRule } = {}): Promise<FleetReport> {
  const snapshot = await readChroot(chrootDir, { logSizeLimit: options.logSizeLimit, cache: options.cache });
  const waiting = waitingForWave(snapshot.rollout);
  const statuses = snapshot.systems.map((system) => {
    const status = decideStatus(system, options.silence);
    return waiting.has(system.name) ? holdForRollout(status) : status;
  });
  return { statuses, removed: snapshot.removed, warnings: snapshot.warnings, ...(snapshot.rollout ? { rollout: snapshot.rollout } : {}) };
}
