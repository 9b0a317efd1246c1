/**
 * Bounded logs (status/prune-logs.ts): at most LOG_KEEP logs per machine,
 * the oldest by server mtime removed first, never one status needs (the
 * latest, those newer than last_change_date), so status says the same after.
 */
import { existsSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOG_RESULTS, type LogResult } from '../../src/protocol/log-name.js';
import { planLogPruning, pruneLogs } from '../../src/status/prune-logs.js';
import type { RecordedLogs } from '../../src/chroot/published-stats.js';
import { readChroot } from '../../src/status/read-chroot.js';
import { decideStatus } from '../../src/status/states.js';
import { accountsFor, addSystem, ago, flake, LOG_CONTENT, logEntry, logName, makeChroot, snapshot, writeLog } from './fixtures.js';

const names = (logs: { fileName: string }[]) => logs.map((log) => log.fileName);

describe('planLogPruning', () => {
  it('removes the oldest by server mtime, not by the date in their names', () => {
    // The client's clock is wrong: names say the opposite of arrival.
    const logs = [
      logEntry('aa', 'success', 500, '20240601-1100'),
      logEntry('bb', 'success', 400, '20240601-1000'),
      logEntry('cc', 'success', 300, '20240601-0900'),
      logEntry('dd', 'success', 200, '20240601-0800'),
    ];
    expect(names(planLogPruning(logs, ago(100), 2))).toEqual([logs[0]?.fileName, logs[1]?.fileName]);
    expect(planLogPruning(logs, ago(100), 4)).toEqual([]);
    expect(planLogPruning(logs, ago(100), 0)).toEqual([]); // 0: keep all
  });

  it('breaks equal mtimes by name, as status does', () => {
    const logs = [logEntry('aa', 'success', 300, '20240601-1001'), logEntry('bb', 'success', 300, '20240601-1000'), logEntry('cc', 'success', 100)];
    expect(names(planLogPruning(logs, ago(50), 2))).toEqual([logs[1]?.fileName]);
  });

  it('never removes the latest log, even older than last_change_date, nor any newer than it', () => {
    const old = [1000, 900, 800].map((secondsAgo, i) => logEntry(`a${i}`, 'success', secondsAgo));
    const newer = [300, 200, 100].map((secondsAgo, i) => logEntry(`b${i}`, 'failure', secondsAgo));
    // Published 400 s ago: three logs since. Keeping 2 is not possible: those three stay.
    expect(names(planLogPruning([...newer, ...old], ago(400), 2))).toEqual(names(old));
    // Published after every log: only the latest is needed.
    expect(names(planLogPruning([...newer, ...old], ago(10), 1))).toEqual([...names(old), newer[0]?.fileName, newer[1]?.fileName]);
  });

  it('leaves exactly what status needs to say the same thing, whatever the logs', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 500; round++) {
      const count = random(12);
      const logs = Array.from({ length: count }, (_, i) =>
        logEntry(`${'abcdfg'[random(6)]}${i}`, LOG_RESULTS[random(4)] as LogResult, random(20) * 60, `202406${String(1 + random(9)).padStart(2, '0')}-1${random(10)}00`),
      );
      const lastChangeMs = ago(random(20) * 60);
      const keep = 1 + random(6);
      // Some logs are not whole (empty, cut short): status reads only the others.
      const broken = new Set(logs.filter(() => random(4) === 0));
      const whole = (list: typeof logs) => list.filter((log) => !broken.has(log));
      const system = snapshot('x', { expected: flake('abc'), lastChangeMs, logs: whole(logs) });
      const removed = new Set(planLogPruning(logs, lastChangeMs, keep, (log) => !broken.has(log)));
      const after = snapshot('x', { expected: flake('abc'), lastChangeMs, logs: whole(logs.filter((log) => !removed.has(log))) });
      expect(decideStatus(after), `round ${round}`).toEqual(decideStatus(system));
      const left = logs.length - removed.size;
      if (broken.size === 0) expect(left).toBeLessThanOrEqual(Math.max(keep, logs.filter((log) => log.mtimeMs > lastChangeMs).length + 1));
      if (removed.size > 0) expect(left, `round ${round}`).toBeGreaterThanOrEqual(keep);
    }
  });
});

describe('pruneLogs on a chroot', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function chroot() {
    const made = await makeChroot();
    cleanups.push(made.cleanup);
    return made.dir;
  }

  it('keeps LOG_KEEP logs per system, leaves other entries alone, and status says the same', async () => {
    const dir = await chroot();
    const many: [string, number][] = Array.from({ length: 10 }, (_, i) => [logName(`c${i}`, 'success', `20240601-${String(i).padStart(2, '0')}00`), 10_000 - i * 600]);
    await addSystem(dir, 'busy', { lastChangeAgo: 3000, logs: many });
    await addSystem(dir, 'quiet', { logs: many.slice(0, 2) });
    writeFileSync(path.join(dir, 'busy', 'logs', 'notes.txt'), 'not a log');
    symlinkSync('/etc/passwd', path.join(dir, 'busy', 'logs', logName('ee', 'success')));
    const before = (await readChroot(dir)).systems.map((system) => decideStatus(system));

    const accounts = accountsFor(dir, ['busy', 'quiet']);
    const dryRun = await pruneLogs({ chrootDir: dir, keep: 4, dryRun: true, accounts });
    expect(dryRun.map((system) => [system.name, system.removed.length])).toEqual([['busy', 6]]);
    expect(readdirSync(path.join(dir, 'busy', 'logs'))).toHaveLength(12);

    const results = await pruneLogs({ chrootDir: dir, keep: 4, accounts });
    expect(results).toEqual([{ name: 'busy', removed: many.slice(0, 6).map(([name]) => name), kept: 4, problems: [] }]);
    const left = readdirSync(path.join(dir, 'busy', 'logs')).sort();
    expect(left).toEqual([...many.slice(6).map(([name]) => name), 'notes.txt', logName('ee', 'success')].sort());
    expect(existsSync('/etc/passwd')).toBe(true);
    expect(readdirSync(path.join(dir, 'quiet', 'logs'))).toHaveLength(2);
    // The table is the same (notes.txt and the link are still there, and still only warned about).
    expect((await readChroot(dir)).systems.map((system) => decideStatus(system))).toEqual(before);
    // Nothing more to do.
    expect(await pruneLogs({ chrootDir: dir, keep: 4, accounts })).toEqual([]);
  });

  it("with deploy's record of logs/: not listed while it holds what was recorded; logs that arrive are seen, and pruned as without it", async () => {
    const dir = await chroot();
    const logs: [string, number][] = Array.from({ length: 6 }, (_, i) => [logName(`d${i}`, 'success', `20240601-${String(i).padStart(2, '0')}00`), 10_000 - i * 600]);
    await addSystem(dir, 'steady', { lastChangeAgo: 3000, logs: logs.slice(0, 3) });
    const accounts = accountsFor(dir, ['steady']);
    const records = new Map<string, RecordedLogs>();
    const onLogsRecorded = (name: string, record: RecordedLogs) => records.set(name, record);
    expect(await pruneLogs({ chrootDir: dir, keep: 4, accounts, names: ['steady'], onLogsRecorded })).toEqual([]);
    const recorded = records.get('steady') as RecordedLogs;
    expect(recorded[0]).toBe('3');
    // Dated 10 s later (settled); the count it says is taken as it is: logs/ is not listed again.
    const settled = ['2', String(BigInt(recorded[1]) + 10_000_000_000n), ...recorded.slice(2)] as RecordedLogs;
    records.clear();
    expect(await pruneLogs({ chrootDir: dir, keep: 4, accounts, names: ['steady'], recordedLogs: () => settled, onLogsRecorded })).toEqual([]);
    expect(records.get('steady')).toBe(settled);
    // Three more logs: logs/ changed, listed, pruned as without the record.
    for (const [name, age] of logs.slice(3)) await writeLog(path.join(dir, 'steady', 'logs', name), age);
    const results = await pruneLogs({ chrootDir: dir, keep: 4, accounts, names: ['steady'], recordedLogs: () => settled, onLogsRecorded });
    expect(results.map((system) => [system.name, system.removed.length, system.kept])).toEqual([['steady', 2, 4]]);
  });

  it('keeps the latest whole log when the latest ones are empty or cut short: status falls back to it', async () => {
    const dir = await chroot();
    const valid = logName('aa', 'success', '20240601-0100');
    await addSystem(dir, 'x', { lastChangeAgo: 100, logs: [[logName('zz', 'failure', '20240601-0000'), 900], [valid, 800]] });
    const empty = logName('bb', 'success', '20240601-0200');
    const cut = logName('cc', 'success', '20240601-0300');
    await writeLog(path.join(dir, 'x', 'logs', empty), 700, new Uint8Array());
    await writeLog(path.join(dir, 'x', 'logs', cut), 600, LOG_CONTENT.subarray(0, 20));
    const before = (await readChroot(dir)).systems.map((system) => decideStatus(system));
    expect(await pruneLogs({ chrootDir: dir, keep: 1, accounts: accountsFor(dir, ['x']) })).toEqual([{ name: 'x', removed: [logName('zz', 'failure', '20240601-0000')], kept: 3, problems: [] }]);
    expect(readdirSync(path.join(dir, 'x', 'logs')).sort()).toEqual([valid, empty, cut].sort());
    expect((await readChroot(dir)).systems.map((system) => decideStatus(system))).toEqual(before);
  });

  it('keeps every log of a system whose last_change_date is missing, and says why', async () => {
    const dir = await chroot();
    await addSystem(dir, 'lost', { lastChangeAgo: null, logs: [[logName('aa', 'success', '20240601-0100'), 300], [logName('bb', 'success'), 200]] });
    expect(await pruneLogs({ chrootDir: dir, keep: 1, accounts: accountsFor(dir, ['lost']) })).toEqual([
      { name: 'lost', removed: [], kept: 2, problems: [expect.stringContaining('lost/last_change_date cannot be read (ENOENT): its logs are kept')] },
    ]);
    expect(readdirSync(path.join(dir, 'lost', 'logs'))).toHaveLength(2);
  });

  it('prunes only the systems bento publishes for, never through a link; a removed system keeps its logs for the record', async () => {
    const dir = await chroot();
    const elsewhere = await chroot();
    const logs = (prefix: string): [string, number][] => [0, 1, 2].map((i) => [logName(`${prefix}${i}`, 'success', `20240601-0${i}00`), 900 - i * 100]);
    await addSystem(dir, 'a', { lastChangeAgo: 100, logs: logs('a') });
    // x: a link in CHROOT_DIR to a system-like directory elsewhere.
    await addSystem(elsewhere, 'x', { lastChangeAgo: 100, logs: logs('b') });
    symlinkSync(path.join(elsewhere, 'x'), path.join(dir, 'x'));
    // b: a real directory whose logs/ is a link elsewhere.
    await addSystem(elsewhere, 'y', { lastChangeAgo: 100, logs: logs('c') });
    await addSystem(dir, 'b', { lastChangeAgo: 100 });
    rmSync(path.join(dir, 'b', 'logs'), { recursive: true });
    symlinkSync(path.join(elsewhere, 'y', 'logs'), path.join(dir, 'b', 'logs'));
    // c: no bento account; d: removed from the fleet (no last_change_date, a marker).
    await addSystem(dir, 'c', { lastChangeAgo: 100, logs: logs('d') });
    await addSystem(dir, 'd', { lastChangeAgo: null, logs: logs('f') });
    writeFileSync(path.join(dir, 'd', 'removed'), 'removed from the fleet\n');
    const accounts = accountsFor(dir, ['a', 'b', 'd', 'x']);

    const results = await pruneLogs({ chrootDir: dir, keep: 1, accounts });
    expect(results.map((system) => [system.name, system.removed.length, system.problems])).toEqual([['a', 2, []]]);
    for (const [system, count] of [['x', 3], ['y', 3]] as const) expect(readdirSync(path.join(elsewhere, system, 'logs')), system).toHaveLength(count);
    for (const system of ['c', 'd']) expect(readdirSync(path.join(dir, system, 'logs')), system).toHaveLength(3);
    // Named, they are refused with the reason (a removed system: nothing to say).
    const named = await pruneLogs({ chrootDir: dir, keep: 1, accounts, names: ['x', 'b', 'c', 'd'] });
    expect(named.map((system) => [system.name, system.removed.length, system.problems])).toEqual([
      ['x', 0, [`x: ${path.join(dir, 'x')} is a symbolic link: the prune never goes through one, its logs are left alone`]],
      ['b', 0, [`b: ${path.join(dir, 'b', 'logs')} is a symbolic link: the prune never goes through one, its logs are left alone`]],
      ['c', 0, ['c: no user c on this server: not a system bento publishes for, its logs are left alone']],
    ]);
  });

  it('prunes only the systems it is given', async () => {
    const dir = await chroot();
    const logs: [string, number][] = [[logName('aa', 'success', '20240601-0100'), 300], [logName('bb', 'success'), 200]];
    await addSystem(dir, 'a', { lastChangeAgo: 100, logs });
    await addSystem(dir, 'b', { lastChangeAgo: 100, logs });
    expect((await pruneLogs({ chrootDir: dir, keep: 1, names: ['b'], accounts: accountsFor(dir, ['a', 'b']) })).map((system) => system.name)).toEqual(['b']);
    expect(readdirSync(path.join(dir, 'a', 'logs'))).toHaveLength(2);
    expect(readdirSync(path.join(dir, 'b', 'logs'))).toHaveLength(1);
  });
});
