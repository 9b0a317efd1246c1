import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { escapeLabelValue, renderPrometheus } from '../../src/status/render-prometheus.js';
import { decideStatus } from '../../src/status/states.js';
import { NOW, SILENCE, flake, hash, heartbeat, logEntry, snapshot } from './fixtures.js';

describe('renderPrometheus', () => {
  it('writes one 0/1 gauge per system and state, and ages, with HELP and TYPE once', () => {
    const statuses = [
      snapshot('nas', { expected: flake('r7ips2c6'), logs: [logEntry('r7ips2c6', 'failure', 90)] }),
      snapshot('new', { lastChangeMs: null }),
    ].map((system) => decideStatus(system, SILENCE));
    expect(renderPrometheus(statuses, NOW.getTime())).toBe(`# HELP bento_system_state State of each system in bento status: 1 for its current state, 0 for the others.
# TYPE bento_system_state gauge
bento_system_state{system="nas",state="new-machine"} 0
bento_system_state{system="nas",state="auto-updated"} 0
bento_system_state{system="nas",state="extra-logs"} 0
bento_system_state{system="nas",state="rebuild-pending"} 0
bento_system_state{system="nas",state="sync-pending"} 0
bento_system_state{system="nas",state="rollbacked"} 0
bento_system_state{system="nas",state="up-to-date"} 0
bento_system_state{system="nas",state="failing"} 1
bento_system_state{system="nas",state="unknown"} 0
bento_system_state{system="nas",state="rollout-pending"} 0
bento_system_state{system="nas",state="silent"} 0
bento_system_state{system="new",state="new-machine"} 1
bento_system_state{system="new",state="auto-updated"} 0
bento_system_state{system="new",state="extra-logs"} 0
bento_system_state{system="new",state="rebuild-pending"} 0
bento_system_state{system="new",state="sync-pending"} 0
bento_system_state{system="new",state="rollbacked"} 0
bento_system_state{system="new",state="up-to-date"} 0
bento_system_state{system="new",state="failing"} 0
bento_system_state{system="new",state="unknown"} 0
bento_system_state{system="new",state="rollout-pending"} 0
bento_system_state{system="new",state="silent"} 0
# HELP bento_last_log_age_seconds Seconds since the server received the latest log of each system.
# TYPE bento_last_log_age_seconds gauge
bento_last_log_age_seconds{system="nas"} 90
# HELP bento_last_change_age_seconds Seconds since the files of each system were last published (last_change_date).
# TYPE bento_last_change_age_seconds gauge
bento_last_change_age_seconds{system="nas"} 3600
# HELP bento_last_seen_timestamp_seconds When the server last heard from each system (its heartbeat, or its latest log), in seconds since the epoch.
# TYPE bento_last_seen_timestamp_seconds gauge
bento_last_seen_timestamp_seconds{system="nas"} 1717243110
# HELP bento_silent 1 when a system has not been seen for SILENT_AFTER, else 0.
# TYPE bento_silent gauge
bento_silent{system="nas"} 0
bento_silent{system="new"} 0
# HELP bento_drift 1 when a system runs another store path than its latest log names (changed by hand), else 0.
# TYPE bento_drift gauge
bento_drift{system="nas"} 0
bento_drift{system="new"} 0
# HELP bento_reboot_pending 1 when the booted kernel, initrd or modules of a system differ from those it runs, else 0.
# TYPE bento_reboot_pending gauge
bento_reboot_pending{system="nas"} 0
bento_reboot_pending{system="new"} 0
# HELP bento_running_info The store path each system says it runs (its heartbeat), as a label (always 1).
# TYPE bento_running_info gauge
`);
  });

  it('says when each system was last seen, what it runs, and whether it is silent, drifted or waits for a reboot', () => {
    const statuses = [
      snapshot('gone', { expected: flake('r7ips2c6'), logs: [logEntry('r7ips2c6', 'success', 9000)], heartbeat: heartbeat(7200, 'r7ips2c6') }),
      snapshot('hand', { expected: flake('r7ips2c6'), logs: [logEntry('r7ips2c6', 'success', 9000)], heartbeat: heartbeat(60, 'a1', true) }),
    ].map((system) => decideStatus(system, SILENCE));
    const text = renderPrometheus(statuses, NOW.getTime());
    expect(text).toContain(`\nbento_last_seen_timestamp_seconds{system="gone"} ${NOW.getTime() / 1000 - 7200}\nbento_last_seen_timestamp_seconds{system="hand"} ${NOW.getTime() / 1000 - 60}\n`);
    expect(text).toContain('\nbento_silent{system="gone"} 1\nbento_silent{system="hand"} 0\n');
    expect(text).toContain('\nbento_system_state{system="gone",state="silent"} 1\n');
    expect(text).toContain('\nbento_drift{system="gone"} 0\nbento_drift{system="hand"} 1\n');
    expect(text).toContain('\nbento_reboot_pending{system="gone"} 0\nbento_reboot_pending{system="hand"} 1\n');
    expect(text).toContain(`\nbento_running_info{system="gone",store_path="${hash('r7ips2c6')}-nixos-system-x-24.05"} 1\nbento_running_info{system="hand",store_path="${hash('a1')}-nixos-system-x-24.05"} 1\n`);
  });

  it('carries the rollout: its wave, whether it halted, why, and the systems at fault', () => {
    const statuses = [decideStatus(snapshot('canary', {}))];
    const rollout: RolloutState = {
      version: 1,
      startedAt: '2024-06-01T11:00:00.000Z',
      waves: [['canary'], ['*']],
      current: 0,
      status: 'running',
      systems: {},
    };
    const running = renderPrometheus(statuses, NOW.getTime(), rollout);
    expect(running).toContain('\nbento_rollout_halted 0\n');
    expect(running).toContain('\nbento_rollout_wave 1\n');
    expect(running).not.toContain('bento_rollout_at_fault');
    const halted = renderPrometheus(statuses, NOW.getTime(), { ...rollout, status: 'halted', halt: { at: rollout.startedAt, reason: 'did not report "success"', systems: ['canary', 'b'] } });
    expect(halted).toContain('\nbento_rollout_halted 1\n');
    expect(halted).toContain('\nbento_rollout_halt_info{reason="did not report \\"success\\""} 1\n');
    expect(halted).toContain('\nbento_rollout_at_fault{system="canary"} 1\nbento_rollout_at_fault{system="b"} 1\n');
    expect(halted.match(/^# TYPE bento_rollout_at_fault gauge$/gm)).toHaveLength(1);
    expect(renderPrometheus(statuses, NOW.getTime())).not.toContain('bento_rollout');
  });

  it('escapes label values as the exposition format wants', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const text = renderPrometheus([decideStatus(snapshot('we"ird\\\n', {}))], NOW.getTime());
    expect(text).toContain('bento_system_state{system="we\\"ird\\\\\\n",state="new-machine"} 1');
  });

  it('names the systems whose reboot waits for their window, and only then has the series', () => {
    const waiting = heartbeat(60, 'r7ips2c6', true);
    waiting.says = { ...waiting.says, rebootWindow: 'Sat,Sun 01:00-04:00', rebootWaiting: 'window' };
    const statuses = [snapshot('wait', { heartbeat: waiting }), snapshot('free', { heartbeat: heartbeat(60, 'r7ips2c6', true) })].map((system) => decideStatus(system, SILENCE));
    const text = renderPrometheus(statuses, NOW.getTime());
    expect(text).toContain('# TYPE bento_reboot_waiting gauge\nbento_reboot_waiting{system="wait",reason="window"} 1\n');
    expect(text).not.toContain('system="free",reason');
    expect(renderPrometheus(statuses.slice(1), NOW.getTime())).not.toContain('bento_reboot_waiting');
  });
});
