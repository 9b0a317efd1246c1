/** The pure decisions of `bento diff`, without Nix. */
import { describe, expect, it } from 'vitest';
import { compareHeader, describePlan, stripColors } from '../../src/commands/diff.js';
import { missingPathProblem, planDiff, type DiffPlan } from '../../src/status/diff-plan.js';
import type { Expected, SystemSnapshot } from '../../src/status/read-chroot.js';
import type { LogEntry } from '../../src/protocol/log-file.js';
import { parseLogName } from '../../src/protocol/log-name.js';

const OLD = '8s73182w32md5cdmbpkiddf981b4nmv2-nixos-system-x1-1.0';
const NEW = 'mz6vrl4ngfjrdvz9v6l2gq5bdlalbn5r-nixos-system-x1-2.0';

function log(basename: string, mtimeMs: number, result = 'success'): LogEntry {
  const fileName = `20240101-1200_${basename}_${result}.log.gz`;
  const parsed = parseLogName(fileName);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { fileName, log: parsed.log, mtimeMs };
}

function snapshot(expected: Expected, logs: LogEntry[], problems: string[] = []): SystemSnapshot {
  return { name: 'x1', expected, lastChangeMs: 0, logs, problems, heartbeat: null };
}

const flake = { name: 'x1', kind: 'flake' } as const;
const expectedNew: Expected = { kind: 'flake', storeBasename: NEW, hash: NEW.slice(0, 32) };

describe('planDiff', () => {
  it('compares the latest log (by arrival) with states.txt', () => {
    const plan = planDiff(flake, snapshot(expectedNew, [log(NEW, 1), log(OLD, 2)]));
    expect(plan).toEqual({ kind: 'compare', name: 'x1', oldBasename: OLD, newBasename: NEW, autoUpdated: false });
    expect(compareHeader(plan as Extract<DiffPlan, { kind: 'compare' }>)).toBe(`Changes in x1 between ${OLD} and ${NEW}`);
  });

  it('says a machine runs the latest version when they are equal', () => {
    const plan = planDiff(flake, snapshot(expectedNew, [log(OLD, 1), log(NEW, 2, 'rollback')]));
    expect(plan.kind).toBe('latest');
    expect(describePlan(plan as Exclude<DiffPlan, { kind: 'compare' }>)).toBe('x1 is running the latest version');
  });

  it('knows machines that have not reported, never deployed, or are not flakes', () => {
    expect(describePlan(planDiff(flake, snapshot(expectedNew, [])) as Exclude<DiffPlan, { kind: 'compare' }>)).toBe('x1 has not reported yet');
    expect(planDiff(flake, undefined)).toEqual({ kind: 'not-reported', name: 'x1', neverDeployed: true });
    expect(planDiff({ name: 'x1', kind: 'non-flake' }, snapshot({ kind: 'non-flake' }, [log(OLD, 1)]))).toEqual({ kind: 'non-flake', name: 'x1' });
  });

  it('cannot compare a flake system without a usable line in states.txt', () => {
    const missing = planDiff(flake, snapshot({ kind: 'non-flake' }, [log(OLD, 1)]));
    expect(describePlan(missing as Exclude<DiffPlan, { kind: 'compare' }>)).toMatch(/^x1: cannot compare: states\.txt has no line for it/);
    const broken = planDiff(flake, snapshot({ kind: 'unknown' }, [log(OLD, 1)], ['x1: states.txt:3: the store path has no name after its hash: "abc"']));
    expect(broken).toEqual({ kind: 'no-expected', name: 'x1', reason: 'states.txt:3: the store path has no name after its hash: "abc"' });
  });
});

describe('missingPathProblem', () => {
  const plan = { kind: 'compare', name: 'x1', oldBasename: OLD, newBasename: NEW, autoUpdated: false } as const;
  it('names the missing path and why it matters', () => {
    expect(missingPathProblem(plan, new Set([`/nix/store/${OLD}`, `/nix/store/${NEW}`]))).toBeUndefined();
    expect(missingPathProblem(plan, new Set([`/nix/store/${OLD}`]))).toBe(
      `x1: cannot compare ${OLD} with ${NEW}: /nix/store/${NEW} (what it should run, from states.txt) is not in the local store: garbage-collected since the deploy? \`bento build\` builds it again`,
    );
    const both = missingPathProblem(plan, new Set()) ?? '';
    expect(both).toContain(`/nix/store/${OLD} (what it runs`);
    expect(both).toContain(`; and /nix/store/${NEW} (what it should run`);
    expect(both.split('\n')).toHaveLength(1);
  });

  it('explains why a machine that updated itself runs a system unknown here', () => {
    const auto = planDiff(flake, snapshot(expectedNew, [log(OLD, 1, 'autoupdate')]));
    expect(auto).toMatchObject({ kind: 'compare', autoUpdated: true });
    expect(missingPathProblem(auto as Extract<DiffPlan, { kind: 'compare' }>, new Set([`/nix/store/${NEW}`]))).toContain(
      'is not in the local store: it updated its own flake inputs (SELF_UPDATE), so that system was built on the machine, not here',
    );
  });
});

describe('choosing the diff tool', () => {
  it('strips colours on request', () => {
    expect(stripColors('hello: 1.0 → 2.0, \x1b[31;1m+19.5 KiB\x1b[0m\n')).toBe('hello: 1.0 → 2.0, +19.5 KiB\n');
  });
});
