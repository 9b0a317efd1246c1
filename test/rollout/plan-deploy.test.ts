/**
 * What a deploy with ROLLOUT_WAVES builds (rollout/plan-deploy.ts,
 * planRolloutBuilds), on a recorded rollout: no disk, no build.
 */
import { describe, expect, it } from 'vitest';
import type { Assembly } from '../../src/chroot/assemble.js';
import type { FleetSystem } from '../../src/fleet/fleet.js';
import type { RolloutState } from '../../src/protocol/rollout-file.js';
import { planRolloutBuilds } from '../../src/rollout/plan-deploy.js';
import { storePath } from '../status/fixtures.js';

const OLD = 'f'.repeat(64);
const STAGED = 'a'.repeat(64);
const NEW = 'b'.repeat(64);

const system = (name: string, wave: number) => ({ name, wave }) as FleetSystem;
const assemblies = (digests: Record<string, string>) => new Map(Object.entries(digests).map(([name, digest]) => [name, { name, digest } as Assembly]));

/** Wave 1 (canary) published; wave 2 (web) staged with STAGED; db held back by an abort with OLD. */
function rollout(status: RolloutState['status'] = 'running'): RolloutState {
  const entry = (wave: number, digest: string, publishedAt?: string) => ({ wave, exact: true, target: storePath('anw'), version: '.config-0123456789abcdef', digest, previous: {}, ...(publishedAt ? { publishedAt } : {}) });
  return {
    version: 1,
    startedAt: '2024-06-01T11:00:00.000Z',
    waves: [['canary'], ['*']],
    current: 0,
    status,
    systems: { canary: entry(0, STAGED, '2024-06-01T11:00:00.000Z'), web: entry(1, STAGED) },
    held: { db: { digest: OLD, at: '2024-06-01T11:30:00.000Z', why: 'aborted' } },
  };
}

describe('planRolloutBuilds', () => {
  const waves = [['canary'], ['*']];

  it('holds back what an abort held while its configuration is the same, and builds nothing new when the rest only waits', () => {
    const changed = [system('db', 1), system('web', 1)];
    const plan = planRolloutBuilds(rollout(), waves, changed, assemblies({ db: OLD, web: STAGED }));
    expect(Object.keys(plan.held)).toEqual(['db']);
    expect(plan.toBuild.map((s) => s.name)).toEqual(['web']);
    expect([...plan.waiting]).toEqual(['web']);
    expect(plan.nothingNew).toBe(true);
  });

  it('builds a held system given a new configuration, and a waiting one given another: something new', () => {
    const changed = [system('db', 1), system('web', 1)];
    const plan = planRolloutBuilds(rollout(), waves, changed, assemblies({ db: NEW, web: NEW }));
    expect(plan.held).toEqual({});
    expect(plan.toBuild.map((s) => s.name)).toEqual(['db', 'web']);
    expect(plan.waiting.size).toBe(0);
    expect(plan.nothingNew).toBe(false);
  });

  it('without waves, holds nothing and builds every changed system', () => {
    const changed = [system('db', 0), system('web', 0)];
    const plan = planRolloutBuilds(rollout(), undefined, changed, assemblies({ db: OLD, web: STAGED }));
    expect(plan.held).toEqual({});
    expect(plan.toBuild.map((s) => s.name)).toEqual(['db', 'web']);
    expect(plan.nothingNew).toBe(false);
  });

  it('a finished rollout keeps nobody waiting', () => {
    const plan = planRolloutBuilds(rollout('done'), waves, [system('web', 1)], assemblies({ web: STAGED }));
    expect(plan.waiting.size).toBe(0);
    expect(plan.nothingNew).toBe(false);
  });
});
