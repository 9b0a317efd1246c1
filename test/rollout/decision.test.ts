/** The advance decision of a rollout, on recorded logs (no disk, no clock). */
import { describe, expect, it } from 'vitest';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import type { LogEntry } from '../../src/protocol/log-file.js';
import { decideAdvance, reportOf, type ReportedLog } from '../../src/rollout/decision.js';
import { NOW, ago, logEntry, storePath } from '../status/fixtures.js';

const WAIT = 3600;

/** Wave 1: canary (published 20 minutes ago); wave 2: a, b (waiting); c, a non-flake, in wave 2 too. */
function rollout(): RolloutState {
  const published = new Date(ago(1200)).toISOString();
  const system = (wave: number, target: string, publishedAt?: string) => ({
    wave,
    exact: true,
    target: storePath(target),
    version: '.config-0123456789abcdef',
    digest: 'a'.repeat(64),
    previous: {},
    ...(publishedAt ? { publishedAt } : {}),
  });
  return {
    version: 1,
    startedAt: published,
    waves: [['canary'], ['*']],
    current: 0,
    status: 'running',
    systems: { canary: system(0, 'cnw', published), a: system(1, 'anw'), b: system(1, 'bnw'), c: { ...system(1, 'cxx'), exact: false } },
  };
}

const logs = (entries: Record<string, LogEntry[]>) => (name: string) => entries[name] ?? [];

/** The configuration every system of rollout() was given, and an earlier one. */
const NEW = 'a'.repeat(64);
const OLD = 'f'.repeat(64);
const withHeader = (log: LogEntry, configuration: string): ReportedLog => ({ ...log, header: { protocol: 1, configuration } });

describe('reportOf', () => {
  it('counts a success only for the exact target, received after the publication', () => {
    const state = rollout();
    expect(reportOf(state, 'canary', [logEntry('cnw', 'success', 60)]).outcome).toBe('succeeded');
    expect(reportOf(state, 'canary', [logEntry('cld', 'success', 60)]).outcome).toBe('waiting');
    // The right target, but before the publication (an earlier rollout of the same configuration).
    expect(reportOf(state, 'canary', [logEntry('cnw', 'success', 1800)]).outcome).toBe('waiting');
    expect(reportOf(state, 'canary', [logEntry('cnw', 'autoupdate', 60)]).outcome).toBe('waiting');
  });

  it('takes a failure or a rollback after the publication as failed, whatever store path it names', () => {
    const state = rollout();
    // A failed build names the system the machine still runs.
    expect(reportOf(state, 'canary', [logEntry('cld', 'failure', 60)])).toEqual({ outcome: 'failed', atMs: ago(60) });
    expect(reportOf(state, 'canary', [logEntry('cld', 'rollback', 30), logEntry('cnw', 'success', 60)]).outcome).toBe('failed');
    expect(reportOf(state, 'canary', [logEntry('cld', 'failure', 1800), logEntry('cnw', 'success', 60)]).outcome).toBe('succeeded');
  });

  it('passes a system without a flake only on a success whose header names the configuration it was given, and nothing before its wave', () => {
    const state = rollout();
    state.systems.c = { ...(state.systems.c as RolloutState['systems'][string]), wave: 0, publishedAt: state.startedAt };
    // It builds with its own channels: the store path says nothing, the header does.
    expect(reportOf(state, 'c', [withHeader(logEntry('whz', 'success', 60), NEW)]).outcome).toBe('succeeded');
    expect(reportOf(rollout(), 'a', [withHeader(logEntry('anw', 'success', 60), NEW)]).outcome).toBe('waiting');
  });

  it('does not pass a system without a flake on a success queued for an earlier configuration and sent after the publication', () => {
    const state = rollout();
    state.systems.c = { ...(state.systems.c as RolloutState['systems'][string]), wave: 0, publishedAt: state.startedAt };
    const late = withHeader(logEntry('cld', 'success', 60), OLD);
    expect(reportOf(state, 'c', [late])).toEqual({ outcome: 'waiting', note: `a success for another configuration (${OLD.slice(0, 16)}, sent late) does not count` });
    // A log without the header (a client older than it) cannot tell: it does not count either.
    expect(reportOf(state, 'c', [logEntry('cld', 'success', 60)]).outcome).toBe('waiting');
    expect(reportOf(state, 'c', [late, withHeader(logEntry('cnw', 'success', 30), NEW)]).outcome).toBe('succeeded');
  });

  it('for a flake, wants both the target and, when the log says, the configuration', () => {
    const state = rollout();
    expect(reportOf(state, 'canary', [withHeader(logEntry('cnw', 'success', 60), NEW)]).outcome).toBe('succeeded');
    // The same store path built from another configuration (only a comment changed): not this wave's success.
    expect(reportOf(state, 'canary', [withHeader(logEntry('cnw', 'success', 60), OLD)]).outcome).toBe('waiting');
    expect(reportOf(state, 'canary', [withHeader(logEntry('cld', 'success', 60), NEW)]).outcome).toBe('waiting');
  });

  it('takes a failure for an earlier configuration, sent late, for what it is: not this wave\'s', () => {
    const state = rollout();
    expect(reportOf(state, 'canary', [withHeader(logEntry('cld', 'failure', 60), OLD)]).outcome).toBe('waiting');
    expect(reportOf(state, 'canary', [withHeader(logEntry('cld', 'failure', 60), NEW)]).outcome).toBe('failed');
    expect(reportOf(state, 'canary', [withHeader(logEntry('cld', 'rollback', 90), OLD), withHeader(logEntry('cnw', 'success', 60), NEW)]).outcome).toBe('succeeded');
  });
});

describe('decideAdvance', () => {
  it('advances to the next wave when every system of the current one succeeded', () => {
    expect(decideAdvance(rollout(), logs({ canary: [logEntry('cnw', 'success', 60)] }), NOW.getTime(), WAIT)).toEqual({ kind: 'advance', next: 1 });
  });

  it('is done after the last wave', () => {
    const state = rollout();
    for (const name of ['a', 'b', 'c']) (state.systems[name] as RolloutState['systems'][string]).publishedAt = state.startedAt;
    state.current = 1;
    const all = { a: [logEntry('anw', 'success', 10)], b: [logEntry('bnw', 'success', 10)], c: [withHeader(logEntry('zz', 'success', 10), NEW)] };
    expect(decideAdvance(state, logs(all), NOW.getTime(), WAIT)).toEqual({ kind: 'advance', next: undefined });
  });

  it('waits for systems that have not reported, within ROLLOUT_WAIT', () => {
    expect(decideAdvance(rollout(), logs({}), NOW.getTime(), WAIT)).toEqual({ kind: 'wait', waiting: ['canary'] });
  });

  it('halts past ROLLOUT_WAIT, naming the systems that did not report', () => {
    expect(decideAdvance(rollout(), logs({}), NOW.getTime(), 600)).toEqual({
      kind: 'halt',
      reason: 'did not report success within ROLLOUT_WAIT (10min) of their publication',
      systems: ['canary'],
    });
  });

  it('halts on a failure or a rollback, naming the system, even within ROLLOUT_WAIT', () => {
    expect(decideAdvance(rollout(), logs({ canary: [logEntry('cld', 'rollback', 60)] }), NOW.getTime(), WAIT)).toEqual({
      kind: 'halt',
      reason: 'reported a failure or a rollback for the new configuration',
      systems: ['canary'],
    });
  });
});
