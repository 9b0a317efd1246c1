import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { renderJson } from '../../src/status/render-json.js';
import { decideStatus } from '../../src/status/states.js';
import { SILENCE, flake, hash, heartbeat, logEntry, snapshot } from './fixtures.js';

describe('renderJson', () => {
  it('prints one object per system with stable field names and state ids', () => {
    const statuses = [
      snapshot('interbus', { logs: [logEntry('1dyc4lgr', 'success', 11)] }),
      snapshot('kikimora', { expected: flake('996vw3r6'), lastChangeMs: Date.UTC(2024, 5, 1, 11, 57, 12), logs: [logEntry('996vw3r6', 'failure', 60)] }),
      snapshot('fresh', { expected: flake('r7ips2c6'), lastChangeMs: null }),
      snapshot('gone', { logs: [logEntry('1dyc4lgr', 'success', 9000)], heartbeat: heartbeat(7200, 'r7ips2c6', true) }),
    ].map((system) => decideStatus(system, SILENCE));
    expect(renderJson(statuses)).toBe(`[
  {
    "name": "interbus",
    "expectedStorePath": null,
    "remoteStorePath": "${hash('1dyc4lgr')}-nixos-system-x-24.05",
    "state": "up-to-date",
    "lastLogTime": "2024-06-01T11:59:49.000Z",
    "lastChangeTime": "2024-06-01T11:00:00.000Z",
    "lastSeen": "2024-06-01T11:59:49.000Z",
    "running": null,
    "booted": null,
    "silent": false,
    "drift": false,
    "rebootPending": false,
    "needsReboot": false,
    "rebootWindow": null,
    "rebootWaiting": null,
    "rebootSlot": null,
    "rollout": null
  },
  {
    "name": "kikimora",
    "expectedStorePath": "${hash('996vw3r6')}-nixos-system-x-24.05",
    "remoteStorePath": "${hash('996vw3r6')}-nixos-system-x-24.05",
    "state": "failing",
    "lastLogTime": "2024-06-01T11:59:00.000Z",
    "lastChangeTime": "2024-06-01T11:57:12.000Z",
    "lastSeen": "2024-06-01T11:59:00.000Z",
    "running": null,
    "booted": null,
    "silent": false,
    "drift": false,
    "rebootPending": false,
    "needsReboot": false,
    "rebootWindow": null,
    "rebootWaiting": null,
    "rebootSlot": null,
    "rollout": null
  },
  {
    "name": "fresh",
    "expectedStorePath": "${hash('r7ips2c6')}-nixos-system-x-24.05",
    "remoteStorePath": null,
    "state": "new-machine",
    "lastLogTime": null,
    "lastChangeTime": null,
    "lastSeen": null,
    "running": null,
    "booted": null,
    "silent": false,
    "drift": false,
    "rebootPending": false,
    "needsReboot": false,
    "rebootWindow": null,
    "rebootWaiting": null,
    "rebootSlot": null,
    "rollout": null
  },
  {
    "name": "gone",
    "expectedStorePath": null,
    "remoteStorePath": "${hash('1dyc4lgr')}-nixos-system-x-24.05",
    "state": "silent",
    "lastLogTime": "2024-06-01T09:30:00.000Z",
    "lastChangeTime": "2024-06-01T11:00:00.000Z",
    "lastSeen": "2024-06-01T10:00:00.000Z",
    "running": "${hash('r7ips2c6')}-nixos-system-x-24.05",
    "booted": "${hash('r7ips2c6')}-nixos-system-x-24.05",
    "silent": true,
    "drift": true,
    "rebootPending": true,
    "needsReboot": true,
    "rebootWindow": null,
    "rebootWaiting": null,
    "rebootSlot": null,
    "rollout": null
  }
]
`);
  });

  it('says where each system stands in a staged rollout', () => {
    const statuses = [snapshot('canary', { logs: [logEntry('1dyc4lgr', 'success', 11)] }), snapshot('rest', {})].map((system) => decideStatus(system));
    const system = { exact: true, target: `${hash('1dyc4lgr')}-nixos-system-x-24.05`, version: '.config-0123456789abcdef', digest: 'a'.repeat(64), previous: {} };
    const rollout: RolloutState = {
      version: 1,
      startedAt: '2024-06-01T11:00:00.000Z',
      waves: [['canary'], ['*']],
      current: 0,
      status: 'halted',
      halt: { at: '2024-06-01T12:00:00.000Z', reason: 'reported failure', systems: ['canary'] },
      systems: { canary: { ...system, wave: 0, publishedAt: '2024-06-01T11:00:00.000Z' }, rest: { ...system, wave: 1 } },
    };
    const json = JSON.parse(renderJson(statuses, rollout)) as { name: string; rollout: unknown }[];
    expect(json.map((entry) => [entry.name, entry.rollout])).toEqual([
      ['canary', { wave: 1, published: true, halted: true, atFault: true, haltReason: 'reported failure' }],
      ['rest', { wave: 2, published: false, halted: true, atFault: false, haltReason: 'reported failure' }],
    ]);
    // Running: no reason, nobody at fault.
    const running = JSON.parse(renderJson(statuses, { ...rollout, status: 'running', halt: undefined })) as { rollout: unknown }[];
    expect(running[0]?.rollout).toEqual({ wave: 1, published: true, halted: false, atFault: false, haltReason: null });
  });

  it('prints an empty array for an empty fleet', () => {
    expect(renderJson([])).toBe('[]\n');
  });
});
