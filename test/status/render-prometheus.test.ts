import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { escapeLabelValue, renderPrometheus } from '../../src/status/render-prometheus.js';
import { decideStatus } from '../../src/status/states.js';
import { NOW, flake, logEntry, snapshot } from './fixtures.js';

describe('renderPrometheus', () => {
  it('writes one 0/1 gauge per system and state, and ages, with HELP and TYPE once', () => {
    const statuses = [
      snapshot('nas', { expected: flake('r7ips2c6'), logs: [logEntry('r7ips2c6', 'failure', 90)] }),
      snapshot('new', { lastChangeMs: null }),
    ].map(decideStatus);
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
# HELP bento_last_log_age_seconds Seconds since the server received the latest log of each system.
# TYPE bento_last_log_age_seconds gauge
bento_last_log_age_seconds{system="nas"} 90
# HELP bento_last_change_age_seconds Seconds since the files of each system were last published (last_change_date).
# TYPE bento_last_change_age_seconds gauge
bento_last_change_age_seconds{system="nas"} 3600
`);
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
});
