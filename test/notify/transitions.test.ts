import { describe, expect, it } from 'vitest';
import { alertPayload, transitionsBetween, type FleetView, type MachineView } from '../../src/notify/transitions.js';

const at = '2024-06-01T12:00:00.000Z';
const machine = (state: string, fields: Partial<MachineView> = {}): MachineView => ({ state, why: `${state} because`, since: at, ...fields });
const fleet = (machines: Record<string, MachineView>, rollout = 'none'): FleetView => ({ machines, rollout: { status: rollout, why: rollout === 'halted' ? 'canary did not report' : '', since: at } });

describe('transitionsBetween', () => {
  it('reports a machine that starts needing a person, and its recovery, and nothing for quiet moves', () => {
    const quiet = fleet({ nas: machine('up-to-date'), pi: machine('up-to-date') });
    expect(transitionsBetween(quiet, fleet({ nas: machine('rebuild-pending'), pi: machine('sync-pending') }))).toEqual([]);

    const failing = fleet({ nas: machine('failing'), pi: machine('up-to-date') });
    expect(transitionsBetween(quiet, failing)).toEqual([{ system: 'nas', from: 'up-to-date', to: 'failing', when: at, why: 'failing because', recovered: false }]);
    // Still failing: nothing more.
    expect(transitionsBetween(failing, failing)).toEqual([]);
    expect(transitionsBetween(failing, quiet)).toEqual([{ system: 'nas', from: 'failing', to: 'up-to-date', when: at, why: 'up-to-date because', recovered: true }]);
  });

  it('counts silent, rolled back and drift, and a move between two of them', () => {
    const before = fleet({ a: machine('up-to-date'), b: machine('up-to-date'), c: machine('up-to-date') });
    const after = fleet({ a: machine('silent'), b: machine('rollbacked'), c: machine('up-to-date', { drift: true }) });
    expect(transitionsBetween(before, after).map((t) => [t.system, t.to, t.recovered])).toEqual([
      ['a', 'silent', false],
      ['b', 'rollbacked', false],
      ['c', 'drift', false],
    ]);
    const worse = fleet({ a: machine('failing'), b: machine('rollbacked'), c: machine('up-to-date', { drift: true }) });
    expect(transitionsBetween(after, worse)).toEqual([{ system: 'a', from: 'silent', to: 'failing', when: at, why: 'failing because', recovered: false }]);
  });

  it('treats a machine that appears failing as an alert and one that left as recovered', () => {
    expect(transitionsBetween(fleet({}), fleet({ new: machine('failing') }))[0]).toMatchObject({ system: 'new', from: 'absent', to: 'failing', recovered: false });
    expect(transitionsBetween(fleet({ gone: machine('failing') }), fleet({}))[0]).toMatchObject({ system: 'gone', from: 'failing', to: 'absent', recovered: true, why: 'no longer in the fleet' });
    expect(transitionsBetween(fleet({}), fleet({ new: machine('new-machine') }))).toEqual([]);
  });

  it('reports a rollout that halts and one that goes on', () => {
    const halted = transitionsBetween(fleet({}, 'running'), fleet({}, 'halted'));
    expect(halted).toEqual([{ system: null, from: 'running', to: 'halted', when: at, why: 'canary did not report', recovered: false }]);
    expect(transitionsBetween(fleet({}, 'halted'), fleet({}, 'halted'))).toEqual([]);
    expect(transitionsBetween(fleet({}, 'halted'), fleet({}, 'none'))[0]).toMatchObject({ recovered: true, to: 'none' });
    expect(transitionsBetween(fleet({}, 'running'), fleet({}, 'done'))).toEqual([]);
  });
});

describe('alertPayload', () => {
  it('carries the transitions and a one-line summary a chat shows as it is', () => {
    const transitions = transitionsBetween(fleet({ nas: machine('failing'), pi: machine('up-to-date') }, 'running'), fleet({ nas: machine('up-to-date'), pi: machine('silent') }, 'halted'));
    const payload = alertPayload(transitions);
    expect(payload.text).toBe('bento: nas recovered (up-to-date); pi silent; rollout halted');
    expect(payload.transitions).toHaveLength(3);
  });
});
