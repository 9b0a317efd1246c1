/**
 * status/read-logs.ts with its worker thread, from the built modules (the
 * worker runs dist/status/read-logs.js): a fleet read on two threads, or by
 * the worker alone, says exactly what it says read on one — the logs named
 * old but received last, clocks wrong on the machine, a log rewritten in
 * place, logs removed by the prune, the heartbeat, broken entries — first
 * and with a cache, after each of those changes.
 */
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type * as ReadChrootModule from '../../src/status/read-chroot.js';
import type * as ReadLogsModule from '../../src/status/read-logs.js';
import type * as LogCacheModule from '../../src/status/log-cache.js';
import { addSystem, logName, makeChroot, touch, writeLog } from './fixtures.js';

const built = async <Module>(file: string): Promise<Module> => (await import(pathToFileURL(path.join(PACKAGE_ROOT, 'dist', 'status', file)).href)) as Module;
const { readChroot } = await built<typeof ReadChrootModule>('read-chroot.js');
const { readLogsInParallel } = await built<typeof ReadLogsModule>('read-logs.js');
const { LogCache } = await built<typeof LogCacheModule>('log-cache.js');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A heartbeat as the client sends it: written aside, renamed into logs/. */
async function poll(logs: string, name: string): Promise<void> {
  await writeFile(path.join(logs, '.heartbeat.tmp-7'), `bento heartbeat of ${name} on x\nprotocol: 2\nrunning: ${'a'.repeat(32)}-nixos-system-x-24.05\n\n`);
  await rename(path.join(logs, '.heartbeat.tmp-7'), path.join(logs, 'heartbeat'));
}

/** A fleet of every case, `copies` times over (enough directories to share). */
async function fleet(copies: number): Promise<string> {
  const made = await makeChroot();
  cleanups.push(made.cleanup);
  const dir = made.dir;
  for (let n = 0; n < copies; n++) {
    // In order: names and times agree.
    await addSystem(dir, `plain-${n}`, { logs: [[logName('aa', 'success', '20240601-0900'), 9000], [logName('bb', 'failure', '20240601-1130'), 1800]] });
    // Named 23 years ago (the machine's clock), received last: the latest.
    await addSystem(dir, `old-name-${n}`, { logs: [[logName('aa', 'success', '20240601-1150'), 7200], [logName('cc', 'rollback', '20010101-0000'), 600]] });
    // Clocks ahead: a name in 2099, and a log whose mtime is a day ahead (it counts at its ctime, with a warning).
    await addSystem(dir, `clock-ahead-${n}`, { logs: [[logName('dd', 'success', '20991231-2359'), 7000], [logName('ff', 'failure', '20240601-1000'), 6000]] });
    const ahead = Date.now() / 1000 + 86_400;
    await utimes(path.join(dir, `clock-ahead-${n}`, 'logs', logName('ff', 'failure', '20240601-1000')), ahead, ahead);
    // Broken entries beside a whole log, and a heartbeat.
    await addSystem(dir, `broken-${n}`, { logs: [[logName('aa', 'failure', '20240601-1000'), 5000]] });
    const broken = path.join(dir, `broken-${n}`, 'logs');
    await writeFile(path.join(broken, logName('bb', 'success', '20240601-1100')), 'all good, trust me\n'.repeat(10));
    await writeFile(path.join(broken, logName('cc', 'success', '20240601-1101')), '');
    await mkdir(path.join(broken, logName('dd', 'success', '20240601-1102')));
    await writeFile(path.join(broken, 'notes.txt'), 'hello');
    await writeFile(path.join(broken, `.${logName('ff', 'success')}.tmp-1`), '');
    await poll(broken, `broken-${n}`);
    // No last_change_date; logs/ not a directory; no log yet.
    await addSystem(dir, `no-date-${n}`, { lastChangeAgo: null, logs: [[logName('aa', 'success'), 600]] });
    await addSystem(dir, `no-logs-dir-${n}`);
    await rm(path.join(dir, `no-logs-dir-${n}`, 'logs'), { recursive: true });
    await writeFile(path.join(dir, `no-logs-dir-${n}`, 'logs'), '');
    await addSystem(dir, `new-${n}`);
  }
  return dir;
}

/** What status would show: the snapshot, logs in a stable order. */
async function read(dir: string, sharing: 'here' | 'worker' | 'shared', cache?: InstanceType<typeof LogCache>) {
  const snapshot = await readChroot(dir, { parallelFrom: sharing === 'here' ? Infinity : 1, sharing: sharing === 'here' ? 'shared' : sharing, ...(cache ? { cache } : {}) });
  return { ...snapshot, systems: snapshot.systems.map((system) => ({ ...system, logs: [...system.logs].sort((a, b) => a.fileName.localeCompare(b.fileName)) })) };
}

/** Past RACY_MS for every directory: as a status timer finds them. */
async function settle(dir: string, names: readonly string[]): Promise<void> {
  const time = Date.now() / 1000 - 60;
  for (const name of names) await utimes(path.join(dir, name, 'logs'), time, time).catch(() => undefined);
}

describe('the worker thread', () => {
  it('answers every work it is given when it works alone', async () => {
    const dir = await fleet(2);
    const works = ['plain-0', 'old-name-0', 'broken-1', 'no-logs-dir-1'].map((name) => ({ dir: path.join(dir, name, 'logs'), name, lastChangeMs: Date.now() - 3_600_000, sizeLimit: 1 << 20, digest: true }));
    const alone = await readLogsInParallel(works, 'worker');
    expect(alone.byWorker).toBe(works.length);
    expect(alone.results).toEqual((await readLogsInParallel(works, 'here')).results);
  });

  it('reads a fleet as one thread does, with no cache', async () => {
    const dir = await fleet(3);
    const here = await read(dir, 'here');
    expect(here.systems.find((system) => system.name === 'old-name-0')?.logs.map((log) => log.fileName)).toEqual([logName('cc', 'rollback', '20010101-0000')]);
    expect(here.warnings.some((warning) => warning.includes('has a modification time in the future'))).toBe(true);
    expect(await read(dir, 'worker')).toEqual(here);
    expect(await read(dir, 'shared')).toEqual(here);
  });

  it('with a cache, through polls, a log rewritten in place, an old-named log received last and the prune, says what one thread says without a cache', async () => {
    const dir = await fleet(2);
    const names = (await read(dir, 'here')).systems.map((system) => system.name);
    await settle(dir, names);
    const caches = { here: new LogCache(), worker: new LogCache() };
    const check = async () => {
      const truth = await read(dir, 'here');
      expect(await read(dir, 'here', caches.here)).toEqual(truth);
      expect(await read(dir, 'worker', caches.worker)).toEqual(truth);
    };
    await check();
    await settle(dir, names);
    await check();

    // Every machine polls: a heartbeat renamed into each logs/.
    for (const name of names.filter((name) => !name.startsWith('no-logs-dir'))) await poll(path.join(dir, name, 'logs'), name);
    await settle(dir, names);
    await check();

    // The latest log, the one each cache remembers, written again in place (the original client's put).
    await writeLog(path.join(dir, 'plain-0', 'logs', logName('bb', 'failure', '20240601-1130')), 30);
    await check();

    // A log named in 2001 arrives last; the prune removes the oldest log.
    await writeLog(path.join(dir, 'plain-1', 'logs', logName('cc', 'success', '20010101-0000')), 10);
    await rm(path.join(dir, 'old-name-1', 'logs', logName('aa', 'success', '20240601-1150')));
    await touch(path.join(dir, 'plain-1', 'last_change_date'), 20);
    await settle(dir, names);
    await check();
    expect((await read(dir, 'worker', caches.worker)).systems.find((system) => system.name === 'plain-1')?.logs.map((log) => log.fileName)).toEqual([logName('cc', 'success', '20010101-0000')]);
    expect(caches.worker.hits).toBeGreaterThan(0);
  });
});
