/**
 * The fleet as `bento status` and the alerts see it: each system's state
 * (a staged rollout's waiting systems held as "rollout pending"), the
 * systems that left, the warnings about what could not be read, and the
 * rollout in progress.
 */
import { waitingForWave, type RolloutState } from '../protocol/rollout-file.js';
import { readRebootRecord } from '../protocol/reboot-slots.js';
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
  const slots = readSlots(chrootDir, snapshot.warnings);
  const statuses = snapshot.systems.map((system) => {
    const status = withSlot(decideStatus(system, options.silence), slots);
    return waiting.has(system.name) ? holdForRollout(status) : status;
  });
  return { statuses, removed: snapshot.removed, warnings: snapshot.warnings, ...(snapshot.rollout ? { rollout: snapshot.rollout } : {}) };
}

/** The systems holding a reboot slot of bento reboots (docs/protocol.md §12); a damaged record is a warning. */
function readSlots(chrootDir: string, warnings: string[]): ReadonlySet<string> {
  try {
    return new Set(Object.keys(readRebootRecord(chrootDir).slots));
  } catch (error) {
    warnings.push((error as Error).message);
    return new Set();
  }
}

/** Its reboot slot: held, as bento reboots recorded it, or awaited, as its heartbeat says. */
function withSlot(status: SystemStatus, slots: ReadonlySet<string>): SystemStatus {
  if (slots.has(status.name)) return { ...status, rebootSlot: 'holds' };
  return status.rebootWaiting === 'slot' ? { ...status, rebootSlot: 'waits' } : status;
}
