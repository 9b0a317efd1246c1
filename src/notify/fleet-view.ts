/**
 * The fleet report of `bento status` as alerts compare it: each system's
 * state with a one-line why and since when, and whether the rollout halted.
 * Names and log names come from the machines: sanitized, as status shows them.
 */
import type { FleetReport } from '../status/report.js';
import type { SystemStatus } from '../status/states.js';
import { sanitize } from '../util/sanitize.js';
import type { FleetView, MachineView } from './transitions.js';

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function machineView(status: SystemStatus, nowMs: number): MachineView {
  const view = stateView(status, nowMs);
  if (!status.drift || !status.running || !status.latestLog) return view;
  return { ...view, drift: true, why: `${view.why}; it runs ${sanitize(status.running)}, not the ${sanitize(status.latestLog.log.storeBasename)} its latest log names (changed by hand?)` };
}

function stateView(status: SystemStatus, nowMs: number): MachineView {
  const log = status.latestLog;
  const since = iso(log?.mtimeMs ?? status.lastChangeMs ?? nowMs);
  switch (status.state) {
    case 'silent':
      // lastSeenMs is set: only a machine that was seen can be silent.
      return { state: status.state, since: iso(status.lastSeenMs ?? nowMs), why: `not seen since ${iso(status.lastSeenMs ?? nowMs)} (SILENT_AFTER)` };
    case 'failing':
      return { state: status.state, since, why: log ? `its latest log, ${sanitize(log.fileName)}, reports ${log.log.result === 'success' ? 'another system than the one published' : log.log.result}` : 'failing' };
    case 'rollbacked':
      return { state: status.state, since, why: log ? `it switched and went back: ${sanitize(log.fileName)}` : 'rolled back' };
    default:
      return { state: status.state, since, why: log ? `latest log ${sanitize(log.fileName)}` : 'no log yet' };
  }
}

export function fleetViewOf(report: FleetReport, nowMs: number): FleetView {
  const machines: Record<string, MachineView> = {};
  for (const status of report.statuses) machines[status.name] = machineView(status, nowMs);
  const rollout = report.rollout;
  if (!rollout) return { machines, rollout: { status: 'none', why: '', since: iso(nowMs) } };
  if (rollout.status === 'halted') {
    const halt = rollout.halt;
    return { machines, rollout: { status: 'halted', why: halt ? `${halt.systems.join(', ')} ${halt.reason}` : 'halted', since: halt?.at ?? iso(nowMs) } };
  }
  return { machines, rollout: { status: rollout.status, why: '', since: rollout.startedAt } };
}
