/**
 * status/read-logs.ts: one logs/ read for status. The names narrow nothing:
 * the server's mtimes (received times) order the logs whatever the machine's
 * clock wrote in the names; a cache's names' digest spares only the reading
 * of a directory whose names did not change. The worker thread is run from
 * the built module (read-logs-worker.test.ts); here the sources run, where
 * every sharing reads on this thread.
 */
import { statSync } from 'node:fs';
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logNamesDigest } from '../../src/status/log-cache.js';
import { lookHeartbeat, readLogsDir, readLogsInParallel, unreadableLogProblem, type LogsResult, type LogsWork } from '../../src/status/read-logs.js';
import { ago, logName, makeChroot, writeLog } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function logsDir(): Promise<string> {
  const made = await makeChroot();
  cleanups.push(made.cleanup);
  const dir = path.join(made.dir, 'x1', 'logs');
  await mkdir(dir, { recursive: true });
  return dir;
}

const work = (dir: string, lastChangeMs: number | null = ago(3600), extra: Partial<LogsWork> = {}): LogsWork => ({ dir, name: 'x1', lastChangeMs, sizeLimit: 1 << 20, digest: false, ...extra });

function read(result: LogsResult): Extract<LogsResult, { kind: 'read' }> {
  if (result.kind !== 'read') throw new Error(`expected a read, got ${result.kind}`);
  return result;
}

const names = (result: LogsResult) => read(result).logs.map((log) => log.fileName);

describe('readLogsDir', () => {
  it('orders by the time the server received each log, not by the date in its name (a machine whose clock was years behind)', async () => {
    const dir = await logsDir();
    const oldNamed = logName('aa', 'failure', '20010101-0000');
    await writeLog(path.join(dir, logName('bb', 'success', '20240601-1100')), 7200);
    await writeLog(path.join(dir, logName('cc', 'success', '20240601-1150')), 5400);
    // Named 23 years ago, received last.
    await writeLog(path.join(dir, oldNamed), 5000);
    expect(names(readLogsDir(work(dir)))).toEqual([oldNamed]);
  });

  it('a name dated in the future (a clock ahead) outranks nothing; an mtime in the future counts as its ctime, with a warning', async () => {
    const dir = await logsDir();
    const future = logName('dd', 'success', '20991231-2359');
    const latest = logName('gg', 'failure', '20240601-1100');
    await writeLog(path.join(dir, future), 7200);
    await writeLog(path.join(dir, latest), 5000);
    expect(names(readLogsDir(work(dir)))).toEqual([latest]);

    const touched = logName('ff', 'success', '20240601-1000');
    await writeLog(path.join(dir, touched), 9000);
    const ahead = Date.now() / 1000 + 86_400;
    await utimes(path.join(dir, touched), ahead, ahead);
    const result = read(readLogsDir(work(dir, null)));
    // Its ctime (now) is after every fixture mtime: the latest, but no longer a day ahead.
    expect(result.logs.map((log) => log.fileName)).toEqual([touched]);
    // (ctimeMs has a fraction of a millisecond that Date.now() rounds down.)
    expect(result.logs[0]?.mtimeMs).toBeLessThan(Date.now() + 1);
    expect(result.warnings.join('\n')).toContain(`x1/logs/${touched} has a modification time in the future`);
  });

  it('a log rewritten in place takes its new time: an old log written again becomes the latest', async () => {
    const dir = await logsDir();
    const first = logName('aa', 'success', '20240601-0900');
    const second = logName('bb', 'failure', '20240601-1000');
    await writeLog(path.join(dir, first), 7200);
    await writeLog(path.join(dir, second), 5400);
    expect(names(readLogsDir(work(dir, null)))).toEqual([second]);
    await writeLog(path.join(dir, first), 60);
    expect(names(readLogsDir(work(dir, null)))).toEqual([first]);
  });

  it('keeps every log newer than last_change_date and the latest; a broken latest falls back to the one before', async () => {
    const dir = await logsDir();
    const older = logName('aa', 'success', '20240601-0800');
    const newer1 = logName('bb', 'failure', '20240601-1130');
    const newer2 = logName('cc', 'success', '20240601-1140');
    await writeLog(path.join(dir, older), 9000);
    await writeLog(path.join(dir, newer1), 1800);
    await writeLog(path.join(dir, newer2), 1200);
    expect(names(readLogsDir(work(dir, ago(3600)))).sort()).toEqual([newer1, newer2].sort());
    await writeFile(path.join(dir, newer2), 'all good, trust me\n'.repeat(10));
    await utimes(path.join(dir, newer2), ago(1200) / 1000, ago(1200) / 1000);
    const result = read(readLogsDir(work(dir, ago(3600))));
    expect(result.logs.map((log) => log.fileName)).toEqual([newer1]);
    expect(result.warnings.join('\n')).toContain(`"${newer2}" (it is not gzip)`);
    expect(result.rejected.map(([name]) => name)).toEqual([newer2]);
  });

  it('skips the heartbeat and upload temporaries silently, names the other strays, and tells an unreadable logs/', async () => {
    const dir = await logsDir();
    const log = logName('aa', 'success');
    await writeLog(path.join(dir, log), 600);
    await writeFile(path.join(dir, 'heartbeat'), 'bento heartbeat of x1 on x\nprotocol: 2\n\n');
    await writeFile(path.join(dir, `.${log}.tmp-123`), '');
    await writeFile(path.join(dir, 'notes.txt'), 'hello');
    const result = read(readLogsDir(work(dir)));
    expect(result.logs.map((entry) => entry.fileName)).toEqual([log]);
    expect(result.warnings).toEqual(['x1/logs holds an entry that is not a log (ignored): "notes.txt" (the name does not start with YYYYMMDD-HHMM_)']);
    expect(result.problems).toEqual([]);
    expect(read(readLogsDir(work(path.join(dir, log))))).toMatchObject({ logs: [], problems: ['x1/logs is not a directory'] });
  });

  it("with a cache's digest: the same names (a heartbeat renamed in) read nothing more; another name (a log added, one pruned) reads them", async () => {
    const dir = await logsDir();
    const first = logName('aa', 'success', '20240601-0900');
    await writeLog(path.join(dir, first), 7200);
    const digested = read(readLogsDir(work(dir, ago(3600), { digest: true })));
    expect(digested.namesDigest).toBe(logNamesDigest([first]));
    const known = digested.namesDigest as string;

    await writeFile(path.join(dir, '.heartbeat.tmp-9'), 'bento heartbeat of x1 on x\n\n');
    await rename(path.join(dir, '.heartbeat.tmp-9'), path.join(dir, 'heartbeat'));
    expect(readLogsDir(work(dir, ago(3600), { digest: true, knownDigest: known }))).toEqual({ kind: 'same-names' });

    // Its name dated long ago, received last: read, and the latest.
    const added = logName('bb', 'failure', '20010101-0000');
    await writeLog(path.join(dir, added), 60);
    const afterAdd = read(readLogsDir(work(dir, ago(3600), { digest: true, knownDigest: known })));
    expect(afterAdd.logs.map((log) => log.fileName)).toEqual([added]);
    expect(afterAdd.namesDigest).toBe(logNamesDigest([first, added]));

    // The prune removed the older one.
    await rm(path.join(dir, first));
    expect(names(readLogsDir(work(dir, ago(3600), { knownDigest: afterAdd.namesDigest })))).toEqual([added]);
  });
});

describe('readLogsInParallel', () => {
  it('gives every work its result in order, whatever the sharing (from the sources: all on this thread)', async () => {
    const dirs = await Promise.all([0, 1, 2].map(async (n) => {
      const dir = await logsDir();
      await writeLog(path.join(dir, logName(`a${n}`, 'success')), 600 + n);
      return dir;
    }));
    const works = dirs.map((dir) => work(dir));
    const here = await readLogsInParallel(works, 'here');
    expect(here.results.map(names)).toEqual(dirs.map((_, n) => [logName(`a${n}`, 'success')]));
    expect(here.byWorker).toBe(0);
    expect(await readLogsInParallel(works, 'shared')).toEqual(here);
    expect(await readLogsInParallel(works, 'worker')).toEqual(here);
  });
});

describe('lookHeartbeat', () => {
  it('tells no heartbeat, one that is not a file, and one read, whose text is not read again while it is the file a cache names', async () => {
    const dir = await logsDir();
    const file = path.join(dir, 'heartbeat');
    expect(lookHeartbeat(file)).toEqual({ kind: 'none' });
    await mkdir(file);
    expect(lookHeartbeat(file)).toEqual({ kind: 'not-a-file' });
    await rm(file, { recursive: true });
    await writeFile(file, 'bento heartbeat of x1 on x\nprotocol: 2\nreboot-pending: yes\n\n');
    const found = lookHeartbeat(file);
    if (found.kind !== 'file') throw new Error(found.kind);
    expect(found.says).toEqual({ protocol: 2, rebootPending: true });
    expect(found.receivedMs).toBe(Math.min(statSync(file).mtimeMs, statSync(file).ctimeMs));
    expect(lookHeartbeat(file, found.stamp)).toEqual({ kind: 'file', stamp: found.stamp, receivedMs: found.receivedMs });
    // A work that asks for it gets it after its logs.
    expect(readLogsDir(work(dir, null, { heartbeat: { knownStamp: found.stamp } })).heartbeat).toEqual({ kind: 'file', stamp: found.stamp, receivedMs: found.receivedMs });
  });
});

describe('unreadableLogProblem', () => {
  it('says why the prune must not count a log as the one status falls back to', async () => {
    const dir = await logsDir();
    const file = path.join(dir, logName('aa', 'success'));
    await writeLog(file, 60);
    expect(unreadableLogProblem(file, statSync(file).size, 1 << 20)).toBeUndefined();
    expect(unreadableLogProblem(file, 0, 1 << 20)).toBe('it is empty');
    expect(unreadableLogProblem(file, 2 << 20, 1 << 20)).toContain('over the 1048576-byte limit');
  });
});
