/**
 * The state of each system (docs/protocol.md §7), from a snapshot of its chroot. Pure:
 * the same snapshot always gives the same status, so every rule is tested on
 * fixtures without touching the disk.
 */
import { selectLatestLog, type LogEntry } from '../protocol/log-file.js';
import type { RebootWait } from '../protocol/heartbeat.js';
import type { SystemSnapshot } from './read-chroot.js';

/** Machine-readable state ids, in the order the rules are tried (used by JSON and Prometheus). */
export const STATE_IDS = [
  'new-machine',
  'auto-updated',
  'extra-logs',
  'rebuild-pending',
  'sync-pending',
  'rollbacked',
  'up-to-date',
  'failing',
  'unknown',
  'rollout-pending',
  'silent',
] as const;
export type StateId = (typeof STATE_IDS)[number];

/** States that mean a machine needs a human: they make `bento status` exit 2. */
export const ALERT_STATES: ReadonlySet<StateId> = new Set<StateId>(['failing', 'silent', 'rollbacked', 'extra-logs']);

/** When a machine counts as silent: not seen for `silentAfterMs` (SILENT_AFTER) at `nowMs`. */
export interface SilenceRule {
  nowMs: number;
  silentAfterMs: number;
}

/**
 * How the running version compares with the expected one: `cannot-know` for a
 * non-flake system, `unknown` when states.txt is unusable.
 */
export type VersionMatch = 'matches' | 'differs' | 'cannot-know' | 'unknown';

export interface SystemStatus {
  name: string;
  state: StateId;
  /** First 8 characters of the expected hash, `non-flakes`, or `?` when states.txt is unusable. */
  localVersion: string;
  /** Expected store path basename (flake systems only). */
  expectedStorePath: string | null;
  /** The latest log, by the time the server received it. */
  latestLog: LogEntry | null;
  /** First 8 characters of the latest log's hash and how it compares; null without a log. */
  remoteVersion: { short: string; match: VersionMatch } | null;
  lastChangeMs: number | null;
  /**
   * When the server last heard from it (docs/protocol.md §5a): its
   * heartbeat, or its latest log when that came later or it has no
   * heartbeat (an older client); null when neither.
   */
  lastSeenMs: number | null;
  /** Store path basenames its heartbeat says it runs and booted; null when it does not say. */
  running: string | null;
  booted: string | null;
  /** Not seen for SILENT_AFTER (only a machine with a heartbeat: an older client's quiet cannot be told from death). */
  silent: boolean;
  /** Its heartbeat, newer than its latest log, says it runs another system than that log names: changed by hand. */
  drift: boolean;
  /** Its heartbeat says the booted kernel, initrd or modules differ from the running system's. */
  rebootPending: boolean;
  /** The reboot window its heartbeat names (REBOOT_WINDOW, normalised); null: any time, or not said. */
  rebootWindow?: string | null;
  /** What its pending reboot waits for, as its heartbeat says; null when it does not wait. */
  rebootWaiting?: RebootWait | null;
  /** Its reboot slot (REBOOT_MAX): it holds one (bento reboots' record), or waits for one (its heartbeat). */
  rebootSlot?: 'holds' | 'waits' | null;
}

const SHORT_HASH = 8;

/** States that a staged rollout's "waiting for its wave" never hides. */
const SHOWN_OVER_ROLLOUT: ReadonlySet<StateId> = new Set<StateId>([...ALERT_STATES, 'unknown', 'new-machine']);

/**
 * The status of a system whose new configuration a staged rollout holds
 * back for a later wave: "rollout pending", unless it needs a human or is new.
 */
export function holdForRollout(status: SystemStatus): SystemStatus {
  return SHOWN_OVER_ROLLOUT.has(status.state) ? status : { ...status, state: 'rollout-pending' };
}

/**
 * Applies the rules of docs/protocol.md §7 to one system; with `silence`,
 * also whether it is silent, which outranks every state but failing.
 */
export function decideStatus(system: SystemSnapshot, silence?: SilenceRule): SystemStatus {
  const latestLog = selectLatestLog(system.logs) ?? null;
  const match = latestLog ? compareVersions(system, latestLog) : null;
  const heartbeat = system.heartbeat;
  const lastSeenMs = heartbeat || latestLog ? Math.max(heartbeat?.receivedMs ?? -Infinity, latestLog?.mtimeMs ?? -Infinity) : null;
  const silent = heartbeat !== null && lastSeenMs !== null && silence !== undefined && silence.nowMs - lastSeenMs > silence.silentAfterMs;
  const state = decideState(system, latestLog, match);
  const running = heartbeat?.says.running ?? null;
  return {
    name: system.name,
    state: silent && state !== 'failing' ? 'silent' : state,
    localVersion: describeLocalVersion(system),
    expectedStorePath: system.expected.kind === 'flake' ? system.expected.storeBasename : null,
    latestLog,
    remoteVersion: latestLog && match ? { short: latestLog.log.hash.slice(0, SHORT_HASH), match } : null,
    lastChangeMs: system.lastChangeMs,
    lastSeenMs,
    running,
    booted: heartbeat?.says.booted ?? null,
    silent,
    // A heartbeat sent with or after the latest log describes the system
    // after that log's attempt (the client writes it last in the session):
    // running another one means someone switched by hand since.
    drift: heartbeat !== null && latestLog !== null && running !== null && heartbeat.receivedMs >= latestLog.mtimeMs && running !== latestLog.log.storeBasename,
    rebootPending: heartbeat?.says.rebootPending === true,
    rebootWindow: heartbeat?.says.rebootWindow ?? null,
    rebootWaiting: heartbeat?.says.rebootPending === true ? (heartbeat.says.rebootWaiting ?? null) : null,
  };
}

/**
 * The rules, tried in the order of docs/protocol.md §7; the first that applies wins.
 *
 * Two cases the reference leaves open:
 * - Non-flake systems have no expected version, so "remote ≠ expected" cannot
 *   be decided. They are reported as *rebuild pending* when a change waits:
 *   for them the client runs nixos-rebuild on every published change, since
 *   nothing tells it the result will be the same (the original scripts give
 *   the same answer). Their remote version carries 📌.
 * - When last_change_date is missing, the rules that compare logs with it
 *   cannot be decided, and neither can the ones after them: the state is
 *   *unknown* unless an earlier rule (no log, autoupdate) already applied.
 */
function decideState(system: SystemSnapshot, latest: LogEntry | null, match: VersionMatch | null): StateId {
  if (system.problems.length > 0) return 'unknown';
  if (!latest) return 'new-machine';
  if (latest.log.result === 'autoupdate') return 'auto-updated';
  const lastChangeMs = system.lastChangeMs;
  if (lastChangeMs === null) return 'unknown';
  const newer = countLogsAfter(system.logs, lastChangeMs);
  if (newer > 1) return 'extra-logs';
  if (newer === 0) return match === 'matches' ? 'sync-pending' : 'rebuild-pending';
  switch (latest.log.result) {
    case 'rollback':
      return 'rollbacked';
    case 'success':
      // A success naming another system than states.txt expects (an older
      // client that took a replayed cache, docs/protocol.md §11) is not up to date.
      return match === 'differs' ? 'failing' : 'up-to-date';
    case 'failure':
      return 'failing';
  }
}

function countLogsAfter(logs: readonly LogEntry[], timeMs: number): number {
  let count = 0;
  for (const log of logs) if (log.mtimeMs > timeMs) count++;
  return count;
}

function compareVersions(system: SystemSnapshot, latest: LogEntry): VersionMatch {
  const expected = system.expected;
  if (expected.kind === 'non-flake') return 'cannot-know';
  if (expected.kind === 'unknown') return 'unknown';
  return expected.hash === latest.log.hash ? 'matches' : 'differs';
}

function describeLocalVersion(system: SystemSnapshot): string {
  switch (system.expected.kind) {
    case 'flake':
      return system.expected.hash.slice(0, SHORT_HASH);
    case 'non-flake':
      return 'non-flakes';
    case 'unknown':
      return '?';
  }
}

/** 2 when any system needs a human (failing, silent, rollbacked, extra logs) or a rollout halted, else 0; 1 is left for errors. */
export function decideExitStatus(statuses: readonly SystemStatus[], rolloutHalted = false): number {
  return rolloutHalted || statuses.some((status) => ALERT_STATES.has(status.state)) ? 2 : 0;
}
