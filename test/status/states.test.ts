import { describe, expect, it } from 'vitest';
import { decideExitStatus, decideStatus, type StateId } from '../../src/status/states.js';
import { ago, flake, logEntry, snapshot } from './fixtures.js';

/** last_change_date is one hour old in every fixture unless said otherwise. */
describe('decideStatus: the rules of docs/protocol.md §7', () => {
  it('new machine: no log yet', () => {
    const status = decideStatus(snapshot('fresh', { expected: flake('996vw3r6') }));
    expect(status).toMatchObject({ state: 'new-machine', localVersion: '996vw3r6', remoteVersion: null, latestLog: null });
  });

  it('auto updated: the latest log is autoupdate, whatever else holds', () => {
    const status = decideStatus(
      snapshot('auto', {
        expected: flake('996vw3r6'),
        // Three logs newer than last_change_date would be "extra logs": autoupdate is tried first.
        logs: [logEntry('996vw3r6', 'success', 600), logEntry('11111111', 'failure', 300), logEntry('22222222', 'autoupdate', 60)],
      }),
    );
    expect(status.state).toBe('auto-updated');
    expect(status.remoteVersion).toEqual({ short: '22222222', match: 'differs' });
  });

  it('extra logs: more than one log newer than last_change_date', () => {
    const status = decideStatus(
      snapshot('twice', { expected: flake('996vw3r6'), logs: [logEntry('996vw3r6', 'success', 1200), logEntry('996vw3r6', 'success', 600)] }),
    );
    expect(status.state).toBe('extra-logs');
  });

  it('rebuild pending: no log since the change and the running version differs', () => {
    const status = decideStatus(snapshot('nas', { expected: flake('r7ips2c6'), logs: [logEntry('lvbajpc5', 'success', 7200)] }));
    expect(status).toMatchObject({ state: 'rebuild-pending', localVersion: 'r7ips2c6', remoteVersion: { short: 'lvbajpc5', match: 'differs' } });
  });

  it('sync pending: no log since the change and the running version is the expected one', () => {
    const status = decideStatus(snapshot('kikimora', { expected: flake('996vw3r6'), logs: [logEntry('996vw3r6', 'success', 7200)] }));
    expect(status).toMatchObject({ state: 'sync-pending', remoteVersion: { short: '996vw3r6', match: 'matches' } });
  });

  it('pending wins over the result of an old log (a failure before the change)', () => {
    const status = decideStatus(snapshot('x', { expected: flake('996vw3r6'), logs: [logEntry('11111111', 'failure', 7200)] }));
    expect(status.state).toBe('rebuild-pending');
  });

  it('rollbacked: the one new log is a rollback', () => {
    const status = decideStatus(snapshot('t470', { expected: flake('b2vvrxjy'), logs: [logEntry('ih7vxijm', 'rollback', 144)] }));
    expect(status).toMatchObject({ state: 'rollbacked', remoteVersion: { short: 'ih7vxijm', match: 'differs' } });
  });

  it('up to date: the one new log is a success', () => {
    const status = decideStatus(
      snapshot('x1', { expected: flake('fcz1s2yp'), logs: [logEntry('aaaaaaaa', 'failure', 9000), logEntry('fcz1s2yp', 'success', 157)] }),
    );
    expect(status).toMatchObject({ state: 'up-to-date', remoteVersion: { short: 'fcz1s2yp', match: 'matches' } });
  });

  it('a success naming another store path than the expected one is never up to date: failing (a replayed older system, docs/protocol.md §11)', () => {
    const status = decideStatus(snapshot('x1', { expected: flake('fcz1s2yp'), logs: [logEntry('aaaaaaaa', 'success', 157)] }));
    expect(status).toMatchObject({ state: 'failing', remoteVersion: { short: 'aaaaaaaa', match: 'differs' } });
  });

  it('failing: the one new log is a failure', () => {
    const status = decideStatus(snapshot('bad', { expected: flake('996vw3r6'), logs: [logEntry('11111111', 'failure', 100)] }));
    expect(status.state).toBe('failing');
  });

  describe('non-flake systems', () => {
    it('show non-flakes and 📌 (cannot know) and are up to date after a success', () => {
      const status = decideStatus(snapshot('interbus', { logs: [logEntry('1dyc4lgr', 'success', 11)] }));
      expect(status).toMatchObject({
        state: 'up-to-date',
        localVersion: 'non-flakes',
        expectedStorePath: null,
        remoteVersion: { short: '1dyc4lgr', match: 'cannot-know' },
      });
    });

    it('are rebuild pending (never sync pending) when a change waits: the client rebuilds on every change', () => {
      const status = decideStatus(snapshot('interbus', { logs: [logEntry('1dyc4lgr', 'success', 7200)] }));
      expect(status.state).toBe('rebuild-pending');
    });

    it('follow the other rules as flakes do', () => {
      expect(decideStatus(snapshot('n', {})).state).toBe('new-machine');
      expect(decideStatus(snapshot('n', { logs: [logEntry('1dyc4lgr', 'failure', 5)] })).state).toBe('failing');
      expect(decideStatus(snapshot('n', { logs: [logEntry('1dyc4lgr', 'rollback', 5)] })).state).toBe('rollbacked');
      expect(decideStatus(snapshot('n', { logs: [logEntry('1dyc4lgr', 'autoupdate', 5)] })).state).toBe('auto-updated');
    });
  });

  describe('unknown', () => {
    it('any problem reading the system makes it unknown', () => {
      const status = decideStatus(snapshot('x', { logs: [logEntry('1dyc4lgr', 'success', 5)], problems: ['x/logs holds an entry that is not a log'] }));
      expect(status.state).toBe('unknown');
    });

    it('without last_change_date only the rules that do not need it apply', () => {
      expect(decideStatus(snapshot('x', { lastChangeMs: null })).state).toBe('new-machine');
      expect(decideStatus(snapshot('x', { lastChangeMs: null, logs: [logEntry('1dyc4lgr', 'autoupdate', 5)] })).state).toBe('auto-updated');
      expect(decideStatus(snapshot('x', { lastChangeMs: null, logs: [logEntry('1dyc4lgr', 'success', 5)] })).state).toBe('unknown');
    });

    it('an unusable states.txt gives ? as local version and ❓ as match', () => {
      const status = decideStatus(snapshot('x', { expected: { kind: 'unknown' }, logs: [logEntry('1dyc4lgr', 'success', 5)], problems: ['states.txt'] }));
      expect(status).toMatchObject({ state: 'unknown', localVersion: '?', remoteVersion: { match: 'unknown' } });
    });
  });

  it('a log exactly as old as last_change_date is not newer than it', () => {
    const status = decideStatus(snapshot('x', { expected: flake('996vw3r6'), lastChangeMs: ago(100), logs: [logEntry('996vw3r6', 'success', 100)] }));
    expect(status.state).toBe('sync-pending');
  });
});

describe('decideExitStatus', () => {
  const only = (state: StateId) => [{ ...decideStatus(snapshot('x', {})), state }];
  it.each([
    ['new-machine', 0],
    ['auto-updated', 0],
    ['rebuild-pending', 0],
    ['sync-pending', 0],
    ['up-to-date', 0],
    ['unknown', 0],
    ['failing', 2],
    ['rollbacked', 2],
    ['extra-logs', 2],
  ] as const)('%s → %i', (state, code) => {
    expect(decideExitStatus(only(state))).toBe(code);
  });
  it('is 0 for an empty fleet', () => expect(decideExitStatus([])).toBe(0));
});
