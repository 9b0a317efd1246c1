/**
 * Whether a rollout can go on (docs/protocol.md §10), decided from what the
 * machines of the current wave reported since their wave was published.
 * Pure: the same state, logs and time always give the same decision, so
 * every case is tested on recorded logs.
 *
 * A wave is passed only by success logs for the exact configuration it was
 * given: a `success` log that reached the server after the system's
 * publication and whose header (docs/protocol.md §5) names the
 * configuration's digest — and, for a system that runs exactly what the
 * server built (a flake, a prebuilt system), the store path the server
 * built. A log whose header names another configuration is about an
 * earlier attempt (a log the machine queued and sent late): it neither
 * passes nor halts the wave. A log that does not say which configuration it
 * applied (no header: the original bento's client) passes a system of the
 * first kind on its store path alone, and never a system without a flake,
 * which builds with its own channels (any of its successes could be an old
 * one). A `failure` or `rollback` log after the publication stops the
 * rollout, unless it names another configuration: a failed build or switch
 * names the system the machine still runs, not the target, so it is
 * recognised by its time and its header, not its name.
 */
import { nextWave, systemsOfWave, type RolloutState, type RolloutSystem } from '../protocol/rollout-file.js';
import type { LogHeader } from '../protocol/log-header.js';
import type { LogEntry } from '../protocol/log-file.js';

/** A log as the decision reads it: its name and arrival, and what its header says (absent: nothing). */
export interface ReportedLog extends LogEntry {
  header?: LogHeader;
}

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
  /** While waiting: why a success log that arrived since the publication does not count. */
  note?: string;
}

/** What `name` reported since its publication, from its logs. */
export function reportOf(state: RolloutState, name: string, logs: readonly ReportedLog[]): SystemReport {
  const system = state.systems[name];
  if (!system?.publishedAt) return { outcome: 'waiting' };
  const since = Date.parse(system.publishedAt);
  const after = logs.filter((log) => log.mtimeMs > since).sort((a, b) => a.mtimeMs - b.mtimeMs);
  const about = after.filter((log) => log.header?.configuration === undefined || log.header.configuration === system.digest);
  const failure = about.find((log) => log.log.result === 'failure' || log.log.result === 'rollback');
  if (failure) return { outcome: 'failed', atMs: failure.mtimeMs };
  const success = about.find((log) => passes(system, log));
  if (success) return { outcome: 'succeeded', atMs: success.mtimeMs };
  const unconfirmed = after.find((log) => log.log.result === 'success');
  return unconfirmed ? { outcome: 'waiting', note: whyNotCounted(system, unconfirmed) } : { outcome: 'waiting' };
}

/** Whether the success log `log` passes `system`'s wave (see the top of this file). */
function passes(system: RolloutSystem, log: ReportedLog): boolean {
  if (log.log.result !== 'success') return false;
  if (system.exact && log.log.storeBasename !== system.target) return false;
  const configuration = log.header?.configuration;
  return configuration === system.digest || (configuration === undefined && system.exact);
}

function whyNotCounted(system: RolloutSystem, log: ReportedLog): string {
  const configuration = log.header?.configuration;
  if (configuration !== undefined && configuration !== system.digest) return `a success for another configuration (${configuration.slice(0, 16)}, sent late) does not count`;
  if (system.exact) return 'a success for another store path does not count';
  return 'a success that does not say which configuration it applied (a client without the log header) does not count for a system without a flake';
}

/** How each system of a wave stands. */
export function reportWave(state: RolloutState, wave: number, logsOf: (name: string) => readonly ReportedLog[]): Map<string, SystemReport> {
  return new Map(systemsOfWave(state, wave).map((name) => [name, reportOf(state, name, logsOf(name))]));
}

/**
 * The decision for the current wave of a running rollout. `waitSeconds` is
 * ROLLOUT_WAIT: a wave that has not all succeeded that long after its
 * publication halts the rollout, naming the systems that did not report.
 */
export function decideAdvance(state: RolloutState, logsOf: (name: string) => readonly ReportedLog[], nowMs: number, waitSeconds: number): AdvanceDecision {
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

