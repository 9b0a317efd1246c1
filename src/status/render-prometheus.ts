/**
 * `bento status --prometheus FILE`: the fleet as metrics for node-exporter's
 * textfile collector. node-exporter may read the file at any moment, so the
 * status command replaces it atomically (util/atomic-write.ts; the temporary
 * name does not end in .prom, which node-exporter alone reads).
 */
import type { RolloutState } from '../protocol/rollout-file.js';
import { secondsBetween } from './elapsed.js';
import { STATE_IDS, type SystemStatus } from './states.js';

/** The exposition text: HELP and TYPE once per metric, then every sample. */
export function renderPrometheus(statuses: readonly SystemStatus[], nowMs: number, rollout?: RolloutState): string {
  const lines: string[] = [
    '# HELP bento_system_state State of each system in bento status: 1 for its current state, 0 for the others.',
    '# TYPE bento_system_state gauge',
  ];
  for (const status of statuses) {
    for (const state of STATE_IDS) {
      lines.push(`bento_system_state{system="${escapeLabelValue(status.name)}",state="${state}"} ${status.state === state ? 1 : 0}`);
    }
  }
  // Systems without a log, or without last_change_date, have no sample:
  // an absent series is how Prometheus says "no value".
  lines.push(
    '# HELP bento_last_log_age_seconds Seconds since the server received the latest log of each system.',
    '# TYPE bento_last_log_age_seconds gauge',
  );
  for (const status of statuses) {
    if (status.latestLog) lines.push(`bento_last_log_age_seconds{system="${escapeLabelValue(status.name)}"} ${secondsBetween(status.latestLog.mtimeMs, nowMs)}`);
  }
  lines.push(
    '# HELP bento_last_change_age_seconds Seconds since the files of each system were last published (last_change_date).',
    '# TYPE bento_last_change_age_seconds gauge',
  );
  for (const status of statuses) {
    if (status.lastChangeMs !== null) lines.push(`bento_last_change_age_seconds{system="${escapeLabelValue(status.name)}"} ${secondsBetween(status.lastChangeMs, nowMs)}`);
  }
  lines.push(
    '# HELP bento_last_seen_timestamp_seconds When the server last heard from each system (its heartbeat, or its latest log), in seconds since the epoch.',
    '# TYPE bento_last_seen_timestamp_seconds gauge',
  );
  for (const status of statuses) {
    if (status.lastSeenMs !== null) lines.push(`bento_last_seen_timestamp_seconds{system="${escapeLabelValue(status.name)}"} ${Math.floor(status.lastSeenMs / 1000)}`);
  }
  lines.push(
    '# HELP bento_silent 1 when a system has not been seen for SILENT_AFTER, else 0.',
    '# TYPE bento_silent gauge',
    ...statuses.map((status) => `bento_silent{system="${escapeLabelValue(status.name)}"} ${status.silent ? 1 : 0}`),
    '# HELP bento_drift 1 when a system runs another store path than its latest log names (changed by hand), else 0.',
    '# TYPE bento_drift gauge',
    ...statuses.map((status) => `bento_drift{system="${escapeLabelValue(status.name)}"} ${status.drift ? 1 : 0}`),
    '# HELP bento_reboot_pending 1 when the booted kernel, initrd or modules of a system differ from those it runs, else 0.',
    '# TYPE bento_reboot_pending gauge',
    ...statuses.map((status) => `bento_reboot_pending{system="${escapeLabelValue(status.name)}"} ${status.rebootPending ? 1 : 0}`),
    '# HELP bento_running_info The store path each system says it runs (its heartbeat), as a label (always 1).',
    '# TYPE bento_running_info gauge',
  );
  for (const status of statuses) {
    if (status.running !== null) lines.push(`bento_running_info{system="${escapeLabelValue(status.name)}",store_path="${escapeLabelValue(status.running)}"} 1`);
  }
  // Without a machine whose reboot waits, this series is absent.
  const waiting = statuses.filter((status) => status.rebootWaiting);
  if (waiting.length > 0) {
    lines.push(
      '# HELP bento_reboot_waiting 1 for each system whose pending reboot waits, and what for (reason="window": its reboot window is closed; "slot": a slot of REBOOT_MAX).',
      '# TYPE bento_reboot_waiting gauge',
      ...waiting.map((status) => `bento_reboot_waiting{system="${escapeLabelValue(status.name)}",reason="${status.rebootWaiting}"} 1`),
    );
  }
  // Without reboot slots (REBOOT_MAX), this series is absent.
  const slotted = statuses.filter((status) => status.rebootSlot);
  if (slotted.length > 0) {
    lines.push(
      '# HELP bento_reboot_slot 1 for each system that holds a reboot slot (slot="holds") or waits for one (slot="waits").',
      '# TYPE bento_reboot_slot gauge',
      ...slotted.map((status) => `bento_reboot_slot{system="${escapeLabelValue(status.name)}",slot="${status.rebootSlot}"} 1`),
    );
  }
  // Without a rollout in progress these series are absent.
  if (rollout) {
    lines.push(
      '# HELP bento_rollout_halted 1 when the staged rollout in progress halted (bento rollout status says why).',
      '# TYPE bento_rollout_halted gauge',
      `bento_rollout_halted ${rollout.status === 'halted' ? 1 : 0}`,
      '# HELP bento_rollout_wave The wave (1 for the first) the staged rollout in progress published last.',
      '# TYPE bento_rollout_wave gauge',
      `bento_rollout_wave ${rollout.current + 1}`,
    );
    // What the table prints under a halt: why, and the systems at fault.
    if (rollout.status === 'halted' && rollout.halt) {
      lines.push(
        '# HELP bento_rollout_halt_info The reason the staged rollout in progress halted, as a label (always 1).',
        '# TYPE bento_rollout_halt_info gauge',
        `bento_rollout_halt_info{reason="${escapeLabelValue(rollout.halt.reason)}"} 1`,
        '# HELP bento_rollout_at_fault 1 for each system the halted rollout names as at fault.',
        '# TYPE bento_rollout_at_fault gauge',
        ...rollout.halt.systems.map((name) => `bento_rollout_at_fault{system="${escapeLabelValue(name)}"} 1`),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Label values escape backslash, double quote and line feed (exposition format). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (char) => (char === '\n' ? '\\n' : `\\${char}`));
}
