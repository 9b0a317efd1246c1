import { describe, expect, it } from 'vitest';
import { decideExitStatus, decideStatus, type StateId } from '../../src/status/states.js';
import { SILENCE, ago, flake, heartbeat, logEntry, snapshot, storePath } from './fixtures.js';

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

describe('the heartbeat: seen, silent, drift, reboot pending (docs/protocol.md §5a, §7)', () => {
  const upToDate = { expected: flake('996vw3r6'), lastChangeMs: ago(90_000), logs: [logEntry('996vw3r6', 'success', 86_400)] };

  it('a machine is seen at its heartbeat, or its latest log when that came later or it has none', () => {
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60, '996vw3r6') }), SILENCE).lastSeenMs).toBe(ago(60));
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(90_000, '996vw3r6') }), SILENCE).lastSeenMs).toBe(ago(86_400));
    expect(decideStatus(snapshot('x', upToDate), SILENCE).lastSeenMs).toBe(ago(86_400));
    expect(decideStatus(snapshot('x', {}), SILENCE).lastSeenMs).toBeNull();
  });

  it('is silent once not seen for SILENT_AFTER, which outranks every state but failing', () => {
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(3600, '996vw3r6') }), SILENCE)).toMatchObject({ state: 'up-to-date', silent: false });
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(3601, '996vw3r6') }), SILENCE)).toMatchObject({ state: 'silent', silent: true });
    const rolledBack = { expected: flake('996vw3r6'), lastChangeMs: ago(90_000), logs: [logEntry('11111111', 'rollback', 86_400)], heartbeat: heartbeat(7200, '11111111') };
    expect(decideStatus(snapshot('x', rolledBack), SILENCE).state).toBe('silent');
    const failed = { expected: flake('996vw3r6'), lastChangeMs: ago(90_000), logs: [logEntry('11111111', 'failure', 86_400)], heartbeat: heartbeat(7200, '11111111') };
    expect(decideStatus(snapshot('x', failed), SILENCE)).toMatchObject({ state: 'failing', silent: true });
    // A machine that bootstrapped by hand and then went dark: no log yet.
    expect(decideStatus(snapshot('x', { heartbeat: heartbeat(7200) }), SILENCE).state).toBe('silent');
    expect(decideExitStatus([decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(7200, '996vw3r6') }), SILENCE)])).toBe(2);
  });

  it('never calls a machine without a heartbeat silent (an older client: quiet and dead look the same), nor without a rule', () => {
    expect(decideStatus(snapshot('x', upToDate), SILENCE)).toMatchObject({ state: 'up-to-date', silent: false });
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(7200, '996vw3r6') }))).toMatchObject({ state: 'up-to-date', silent: false });
  });

  it('drifts when a heartbeat at or after the latest log names another running system', () => {
    const hand = decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60, '22222222') }), SILENCE);
    expect(hand).toMatchObject({ state: 'up-to-date', drift: true, running: storePath('22222222') });
    // The same session: the heartbeat written after the log, the same mtime on a coarse file system.
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(86_400, '22222222') }), SILENCE).drift).toBe(true);
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60, '996vw3r6') }), SILENCE).drift).toBe(false);
    // A heartbeat older than the latest log describes the system before that attempt.
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(90_000, '22222222') }), SILENCE).drift).toBe(false);
    // Nothing to compare with: no log, or a heartbeat that does not say.
    expect(decideStatus(snapshot('x', { heartbeat: heartbeat(60, '22222222') }), SILENCE).drift).toBe(false);
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60) }), SILENCE).drift).toBe(false);
  });

  it('a reboot is pending when the heartbeat says so', () => {
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60, '996vw3r6', true) }), SILENCE)).toMatchObject({ state: 'up-to-date', rebootPending: true, booted: storePath('996vw3r6') });
    expect(decideStatus(snapshot('x', { ...upToDate, heartbeat: heartbeat(60, '996vw3r6') }), SILENCE).rebootPending).toBe(false);
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
    ['silent', 2],
  ] as const)('%s → %i', (state, code) => {
    expect(decideExitStatus(only(state))).toBe(code);
  });
  it('is 0 for an empty fleet', () => expect(decideExitStatus([])).toBe(0));
});
