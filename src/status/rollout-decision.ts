/**
 * Whether a rollout can go on (docs/protocol.md §10), decided from what the
 * machines of the current wave reported since their wave was published.
 * Pure: the same state, logs and time always give the same decision, so
 * every case is tested on recorded logs.
 *
 * A machine counts as having succeeded when a `success` log reached the
 * server after its publication, naming the store path the server built for
 * it. Without a flake the machine builds with its own channels, so the
 * server's store path is not what it will run: any success counts. A
 * `failure` or `rollback` log after the publication stops the rollout: a
 * failed build or switch names the system the machine still runs, not the
 * target, so it is recognised by its time, not its name.
 */
import { nextWave, systemsOfWave, type RolloutState } from '../chroot/rollout-state.js';
import type { LogEntry } from './read-chroot.js';

export type AdvanceDecision =
  /** Every system of the current wave succeeded: publish `next` (undefined: the rollout is done). */
  | { kind: 'advance'; next: number | undefined }
  /** Still waiting for these systems. */
  | { kind: 'wait'; waiting: string[] }
  | { kind: 'halt'; reason: string; systems: string[] };

/** What a system reported since its publication: the outcome, and when the log that says so arrived. */
export interface SystemReport {
  outcome: 'succeeded' | 'failed' | 'waiting';
  /** mtime of that log (ms). */
  atMs?: number;
}

/** What `name` reported since its publication, from its logs. */
export function reportOf(state: RolloutState, name: string, logs: readonly LogEntry[]): SystemReport {
  const system = state.systems[name];
  if (!system?.publishedAt) return { outcome: 'waiting' };
  const since = Date.parse(system.publishedAt);
  const after = logs.filter((log) => log.mtimeMs > since).sort((a, b) => a.mtimeMs - b.mtimeMs);
  const failure = after.find((log) => log.log.result === 'failure' || log.log.result === 'rollback');
  if (failure) return { outcome: 'failed', atMs: failure.mtimeMs };
  const success = after.find((log) => log.log.result === 'success' && (!system.exact || log.log.storeBasename === system.target));
  return success ? { outcome: 'succeeded', atMs: success.mtimeMs } : { outcome: 'waiting' };
}

/** How each system of a wave stands. */
export function reportWave(state: RolloutState, wave: number, logsOf: (name: string) => readonly LogEntry[]): Map<string, SystemReport> {
  return new Map(systemsOfWave(state, wave).map((name) => [name, reportOf(state, name, logsOf(name))]));
}

/**
 * The decision for the current wave of a running rollout. `waitSeconds` is
 * ROLLOUT_WAIT: a wave that has not all succeeded that long after its
 * publication halts the rollout, naming the systems that did not report.
 */
export function decideAdvance(state: RolloutState, logsOf: (name: string) => readonly LogEntry[], nowMs: number, waitSeconds: number): AdvanceDecision {
  const report = reportWave(state, state.current, logsOf);
  const failed = [...report].filter(([, system]) => system.outcome === 'failed').map(([name]) => name);
  if (failed.length > 0) return { kind: 'halt', reason: 'reported a failure or a rollback for the new configuration', systems: failed };
  const waiting = [...report].filter(([, system]) => system.outcome === 'waiting').map(([name]) => name);
  if (waiting.length === 0) return { kind: 'advance', next: nextWave(state, state.current) };
  const published = systemsOfWave(state, state.current).map((name) => Date.parse(state.systems[name]?.publishedAt ?? '')).filter((time) => !Number.isNaN(time));
  const since = published.length > 0 ? Math.min(...published) : nowMs;
  if (nowMs - since > waitSeconds * 1000) {
    return { kind: 'halt', reason: `did not report success within ROLLOUT_WAIT (${formatSeconds(waitSeconds)}) of their publication`, systems: waiting };
  }
  return { kind: 'wait', waiting };
}

export function formatSeconds(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}min`;
  return `${seconds}s`;
}

/** The line status prints under its table about the rollout in progress. */
export function describeRollout(state: RolloutState): string {
  const wave = `wave ${state.current + 1} of ${state.waves.length} (${state.waves[state.current]?.join(',') ?? '?'})`;
  if (state.status === 'halted') {
    return `rollout HALTED at ${wave}: ${state.halt?.systems.join(', ') ?? '?'} ${state.halt?.reason ?? ''} (bento rollout status)`;
  }
  const waiting = Object.values(state.systems).filter((system) => !system.publishedAt).length;
  return `rollout at ${wave}; ${waiting} system${waiting === 1 ? ' waits' : 's wait'} for a later wave (bento rollout status)`;
}

/** The systems whose new configuration the rollout still holds back. */
export function waitingForWave(state: RolloutState | undefined): Set<string> {
  if (!state) return new Set();
  return new Set(Object.entries(state.systems).filter(([, system]) => !system.publishedAt).map(([name]) => name));
}
