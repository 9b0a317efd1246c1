/** The fleet as status and the alerts see it: each system's state, a staged rollout's waiting systems held as "rollout pending". */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFleetReport } from '../../src/status/report.js';
import { writtenRolloutState } from '../helpers/rollout-state.js';
import { addSystem, logName, makeChroot, storePath } from './fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('readFleetReport', () => {
  it('holds the systems still waiting for their wave as rollout-pending, but not a failing one', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    await writeFile(path.join(made.dir, 'states.txt'), `canary=${storePath('cnw')}\nweb-1=${storePath('wnw')}\ndb=${storePath('dbw')}\n`);
    // canary's wave is published; web-1 and db wait for theirs. web-1 runs what it had; db failed.
    await addSystem(made.dir, 'canary', { lastChangeAgo: 600, logs: [[logName('cnw', 'success', '20240601-1155'), 300]] });
    await addSystem(made.dir, 'web-1', { lastChangeAgo: 600, logs: [[logName('wnw', 'success', '20240601-1155'), 300]] });
    await addSystem(made.dir, 'db', { lastChangeAgo: 600, logs: [[logName('dbw', 'failure', '20240601-1155'), 300]] });
    const rollout = writtenRolloutState();
    rollout.status = 'running';
    delete rollout.halt;
    delete rollout.held;
    rollout.systems.db = { ...rollout.systems['web-1']!, target: storePath('dbw') };
    await writeFile(path.join(made.dir, 'rollout.json'), `${JSON.stringify(rollout, null, 2)}\n`);

    const report = await readFleetReport(made.dir);
    expect(Object.fromEntries(report.statuses.map((status) => [status.name, status.state]))).toEqual({ canary: 'up-to-date', db: 'failing', 'web-1': 'rollout-pending' });
    expect(report.rollout?.status).toBe('running');
    expect(report.warnings).toEqual([]);
  });

  it('without a rollout, reports each state as it is, and no rollout', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    await writeFile(path.join(made.dir, 'states.txt'), `web-1=${storePath('wnw')}\n`);
    await addSystem(made.dir, 'web-1', { lastChangeAgo: 600, logs: [[logName('wnw', 'success', '20240601-1155'), 300]] });
    const report = await readFleetReport(made.dir);
    expect(report.statuses.map((status) => [status.name, status.state])).toEqual([['web-1', 'up-to-date']]);
    expect(report).not.toHaveProperty('rollout');
  });
});
