/**
 * `bento status --json`: one object per system, for scripts and monitoring.
 * The field names and state ids are a public interface: add fields, do not
 * rename them.
 */
import type { RebootWait } from '../protocol/heartbeat.js';
import type { RolloutState } from '../protocol/rollout-file.js';
import type { StateId, SystemStatus } from './states.js';

export interface SystemStatusJson {
  name: string;
  /** Store path basename states.txt expects; null for a non-flake system (or an unusable states.txt). */
  expectedStorePath: string | null;
  /** Store path basename named by the latest log; null before the first log. */
  remoteStorePath: string | null;
  state: StateId;
  /** When the server received the latest log (ISO 8601), or null. */
  lastLogTime: string | null;
  /** mtime of last_change_date (ISO 8601), or null when unknown. */
  lastChangeTime: string | null;
  /** When the server last heard from it (ISO 8601): its heartbeat, or its latest log; null when never. */
  lastSeen: string | null;
  /** Store path basenames its heartbeat says it runs and booted; null when it does not say. */
  running: string | null;
  booted: string | null;
  /** Not seen for SILENT_AFTER. */
  silent: boolean;
  /** Runs another system than its latest log names (changed by hand). */
  drift: boolean;
  /** The booted kernel, initrd or modules differ from the running system's. */
  rebootPending: boolean;
  /** The same as rebootPending: a reboot would change the kernel, initrd or modules (issue 24's name). */
  needsReboot: boolean;
  /** The reboot window the machine reports (REBOOT_WINDOW, `Mon..Fri 02:00-05:00`); null: any time, or an older client. */
  rebootWindow: string | null;
  /** What its pending reboot waits for: `window` (closed now) or `slot` (REBOOT_MAX); null when it does not wait. */
  rebootWaiting: RebootWait | null;
  /** Its reboot slot (REBOOT_MAX): `holds` one of bento reboots, `waits` for one; null: neither. */
  rebootSlot: 'holds' | 'waits' | null;
  /**
   * Its place in the staged rollout in progress, or null when it is in none.
   * When the rollout halted: `haltReason` says why (as `bento rollout
   * status` does) and `atFault` whether this system is one it names.
   */
  rollout: { wave: number; published: boolean; halted: boolean; atFault: boolean; haltReason: string | null } | null;
}

/** Converts statuses to their JSON objects (same order). */
export function toStatusJson(statuses: readonly SystemStatus[], rollout?: RolloutState): SystemStatusJson[] {
  return statuses.map((status) => ({
    name: status.name,
    expectedStorePath: status.expectedStorePath,
    remoteStorePath: status.latestLog?.log.storeBasename ?? null,
    state: status.state,
    lastLogTime: status.latestLog ? toIso(status.latestLog.mtimeMs) : null,
    lastChangeTime: status.lastChangeMs === null ? null : toIso(status.lastChangeMs),
    lastSeen: status.lastSeenMs === null ? null : toIso(status.lastSeenMs),
    running: status.running,
    booted: status.booted,
    silent: status.silent,
    drift: status.drift,
    rebootPending: status.rebootPending,
    needsReboot: status.rebootPending,
    rebootWindow: status.rebootWindow ?? null,
    rebootWaiting: status.rebootWaiting ?? null,
    rebootSlot: status.rebootSlot ?? null,
    rollout: rolloutOf(status.name, rollout),
  }));
}

function rolloutOf(name: string, rollout: RolloutState | undefined): SystemStatusJson['rollout'] {
  const system = rollout?.systems[name];
  if (!rollout || !system) return null;
  const halted = rollout.status === 'halted';
  return {
    wave: system.wave + 1,
    published: system.publishedAt !== undefined,
    halted,
    atFault: halted && (rollout.halt?.systems.includes(name) ?? false),
    haltReason: halted ? (rollout.halt?.reason ?? null) : null,
  };
}

/** The document printed by `--json`, ending with a newline. */
export function renderJson(statuses: readonly SystemStatus[], rollout?: RolloutState): string {
  return `${JSON.stringify(toStatusJson(statuses, rollout), null, 2)}\n`;
}

/** Whole milliseconds: file systems give sub-millisecond mtimes that Date cannot hold anyway. */
function toIso(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}
