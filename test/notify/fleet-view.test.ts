/** The fleet report as alerts compare it: a state, a one-line why and a since for each system, and the rollout. */
import { describe, expect, it } from 'vitest';
import { fleetViewOf } from '../../src/notify/fleet-view.js';
import type { SystemStatus } from '../../src/status/states.js';
import { ago, logEntry, NOW, storePath } from '../status/fixtures.js';

function status(name: string, state: SystemStatus['state'], latestLog: SystemStatus['latestLog'], lastChangeMs: number | null = ago(3600)): SystemStatus {
  return {
    name, state, localVersion: 'non-flakes', expectedStorePath: null, latestLog, remoteVersion: null, lastChangeMs,
    lastSeenMs: latestLog?.mtimeMs ?? null, running: null, booted: null, silent: false, drift: false, rebootPending: false,
  };
}

describe('fleetViewOf', () => {
  it('says why each system is in its state, since its latest log, else since the last change, else now', () => {
    const failed = logEntry('11111111', 'failure', 60);
    const odd = logEntry('22222222', 'success', 120);
    const back = logEntry('33333333', 'rollback', 180);
    const view = fleetViewOf(
      {
        statuses: [
          status('a', 'failing', failed),
          status('b', 'failing', odd),
          status('c', 'rollbacked', back),
          status('d', 'up-to-date', odd),
          status('e', 'sync-pending', null),
          status('f', 'new-machine', null, null),
          status('g', 'failing', null),
        ],
        removed: [],
        warnings: [],
      },
      NOW.getTime(),
    );
    expect(view.machines).toEqual({
      a: { state: 'failing', since: new Date(ago(60)).toISOString(), why: `its latest log, ${failed.fileName}, reports failure` },
      b: { state: 'failing', since: new Date(ago(120)).toISOString(), why: `its latest log, ${odd.fileName}, reports another system than the one published` },
      c: { state: 'rollbacked', since: new Date(ago(180)).toISOString(), why: `it switched and went back: ${back.fileName}` },
      d: { state: 'up-to-date', since: new Date(ago(120)).toISOString(), why: `latest log ${odd.fileName}` },
      e: { state: 'sync-pending', since: new Date(ago(3600)).toISOString(), why: 'no log yet' },
      f: { state: 'new-machine', since: NOW.toISOString(), why: 'no log yet' },
      g: { state: 'failing', since: new Date(ago(3600)).toISOString(), why: 'failing' },
    });
    expect(view.rollout).toEqual({ status: 'none', why: '', since: NOW.toISOString() });
  });

  it('says since when a silent machine was not seen, and what a drifted one runs', () => {
    const ok = logEntry('11111111', 'success', 9000);
    const statuses: SystemStatus[] = [
      { ...status('quiet', 'silent', ok), lastSeenMs: ago(7200), silent: true },
      { ...status('hand', 'up-to-date', ok), running: storePath('22222222'), drift: true },
    ];
    const view = fleetViewOf({ statuses, removed: [], warnings: [] }, NOW.getTime());
    const seen = new Date(ago(7200)).toISOString();
    expect(view.machines).toEqual({
      quiet: { state: 'silent', since: seen, why: `not seen since ${seen} (SILENT_AFTER)` },
      hand: {
        state: 'up-to-date',
        drift: true,
        since: new Date(ago(9000)).toISOString(),
        why: `latest log ${ok.fileName}; it runs ${storePath('22222222')}, not the ${storePath('11111111')} its latest log names (changed by hand?)`,
      },
    });
  });

  it('says which systems halted a rollout and why, and since when a running one started', () => {
    const rollout = { version: 1 as const, startedAt: '2026-11-26T10:00:00.000Z', waves: [['*']], current: 0, systems: {} };
    const halted = fleetViewOf({ statuses: [], removed: [], warnings: [], rollout: { ...rollout, status: 'halted', halt: { at: '2026-11-26T11:00:00.000Z', reason: 'failed', systems: ['web-1', 'web-2'] } } }, NOW.getTime());
    expect(halted.rollout).toEqual({ status: 'halted', why: 'web-1, web-2 failed', since: '2026-11-26T11:00:00.000Z' });
    const running = fleetViewOf({ statuses: [], removed: [], warnings: [], rollout: { ...rollout, status: 'running' } }, NOW.getTime());
    expect(running.rollout).toEqual({ status: 'running', why: '', since: '2026-11-26T10:00:00.000Z' });
  });
});
