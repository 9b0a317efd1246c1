/**
 * Entries of logs/ that are not whole logs (docs/protocol.md §5, §7): a stray
 * file, an empty or cut-short upload, something that is not gzip, a file over
 * the size limit, an upload still under its temporary name. None of them may
 * change the verdict the real logs give: above all, a failing machine stays
 * failing (exit 2), and a broken "success" is never counted as one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { lstat, readFile, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { statusCommand, type StatusOptions } from '../../src/commands/status.js';
import { fleetViewOf } from '../../src/notify/fleet-view.js';
import { readFleetReport } from '../../src/status/report.js';
import { Collector } from '../helpers/collect.js';
import { LOG_CONTENT, NOW, addSystem, logName, makeChroot, storePath, writeLog } from './fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** x1 (flake) published 10 minutes ago, then failed 5 minutes ago. */
async function failingFleet(): Promise<{ dir: string; logs: string }> {
  const made = await makeChroot();
  cleanup = made.cleanup;
  await writeFile(path.join(made.dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\n`);
  await addSystem(made.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('1dyc4lgr', 'failure', '20240601-1155'), 300]] });
  return { dir: made.dir, logs: path.join(made.dir, 'x1', 'logs') };
}

async function status(chrootDir: string, extra: Partial<StatusOptions> = {}) {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await statusCommand({ chrootDir, isTTY: false, noColor: true, now: NOW, json: true, ...extra }, { stdout, stderr });
  const rows = JSON.parse(stdout.text) as { name: string; state: string; remoteStorePath: string | null }[];
  return { code, state: rows.find((row) => row.name === 'x1')?.state, row: rows.find((row) => row.name === 'x1'), stderr: stderr.text };
}

describe('entries next to a failure log', () => {
  it('the failing machine alone: failing, exit 2 (the reference)', async () => {
    const { dir } = await failingFleet();
    expect(await status(dir)).toMatchObject({ code: 2, state: 'failing', stderr: '' });
  });

  it('a stray file next to the failure log: still failing, exit 2, and Prometheus says failing', async () => {
    const { dir, logs } = await failingFleet();
    await writeFile(path.join(logs, 'notes.txt'), 'hello');
    const prometheus = path.join(dir, 'bento.prom');
    const result = await status(dir, { prometheusFile: prometheus });
    expect(result).toMatchObject({ code: 2, state: 'failing' });
    expect(result.stderr).toContain('warning: x1/logs holds an entry that is not a log (ignored): "notes.txt"');
    expect(await readFile(prometheus, 'utf8')).toContain('bento_system_state{system="x1",state="failing"} 1');
  });

  it.each([
    ['an empty success log', async (file: string) => writeFile(file, ''), 'it is empty'],
    ['a success log that is not gzip', async (file: string) => writeFile(file, 'all good, trust me\n'.repeat(10)), 'it is not gzip'],
    ['a success log cut short', async (file: string) => writeFile(file, gzipSync(randomBytes(20_000).toString('base64')).subarray(0, 9_000)), 'it is cut short'],
    ['a directory named like a success log', async (file: string) => (await import('node:fs/promises')).mkdir(file), 'not a regular file'],
  ])('%s, newer than the failure: still failing, exit 2, with a warning', async (_what, make, reason) => {
    const { dir, logs } = await failingFleet();
    const name = logName('fcz1s2yp', 'success', '20240601-1158');
    await make(path.join(logs, name));
    const result = await status(dir);
    expect(result).toMatchObject({ code: 2, state: 'failing' });
    expect(result.stderr).toContain(`"${name}" (${reason}`);
  });

  it('a whole gzip success log over the size limit: never counted, failing, exit 2', async () => {
    const { dir, logs } = await failingFleet();
    const name = logName('fcz1s2yp', 'success', '20240601-1158');
    const big = gzipSync(randomBytes(200_000));
    await writeLog(path.join(logs, name), 60, big);
    const result = await status(dir, { logSizeLimit: 100_000 });
    expect(result).toMatchObject({ code: 2, state: 'failing' });
    expect(result.stderr).toMatch(new RegExp(`"${name}" \\(${big.length} bytes, over the 100000-byte limit: not read\\)`));
    // Under a limit it fits, the same file is a log like any other: two logs since the change.
    expect(await status(dir, { logSizeLimit: 1_000_000 })).toMatchObject({ code: 2, state: 'extra-logs', stderr: '' });
  });

  it('an upload still under its temporary name is skipped silently', async () => {
    const { dir, logs } = await failingFleet();
    const name = logName('fcz1s2yp', 'success', '20240601-1158');
    await writeFile(path.join(logs, `.${name}.tmp-4242`), LOG_CONTENT.subarray(0, 5));
    expect(await status(dir)).toMatchObject({ code: 2, state: 'failing', stderr: '' });
    // Renamed into place, whole, it counts: two logs since the change.
    await writeLog(path.join(logs, name), 60);
    expect(await status(dir)).toMatchObject({ code: 2, state: 'extra-logs', stderr: '' });
  });

  it('a broken latest log leaves the one before it deciding, older than the change: rebuild pending, never up to date', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    await writeFile(path.join(made.dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\n`);
    // Ran the old system successfully an hour ago; the new one's log arrived empty.
    await addSystem(made.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('1dyc4lgr', 'success', '20240601-1100'), 3600]] });
    await writeFile(path.join(made.dir, 'x1', 'logs', logName('fcz1s2yp', 'success')), '');
    const result = await status(made.dir);
    expect(result.state).toBe('rebuild-pending');
    expect(result.row?.remoteStorePath).toBe(storePath('1dyc4lgr'));
  });
});

describe('what status reads of logs', () => {
  it('keeps its promise of reading little: status opens only the logs a verdict rests on', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    // 50 old broken logs and one whole recent success: the broken ones are never opened, so never reported.
    await addSystem(made.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('1dyc4lgr', 'success', '20240601-1159'), 60]] });
    for (let i = 0; i < 50; i++) {
      const file = path.join(made.dir, 'x1', 'logs', logName('1dyc4lgr', 'failure', `202401${String(1 + (i % 28)).padStart(2, '0')}-${String(i % 24).padStart(2, '0')}00`, `x-${i}`));
      await writeLog(file, 7200 + i, Buffer.from('garbage, never read, long enough'));
    }
    expect(await status(made.dir)).toMatchObject({ code: 0, state: 'up-to-date', stderr: '' });
  });
});

describe('a log whose mtime lies in the future', () => {
  const pause = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('is reported, and counts as received when the server last changed it: it does not outrank the logs sent after it', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    const dir = made.dir;
    await writeFile(path.join(dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\n`);
    await addSystem(dir, 'x1', { lastChangeAgo: null });
    const logs = path.join(dir, 'x1', 'logs');
    // A failure from before the last publication, its mtime a day ahead (a
    // mirror's clock, the original SFTP server's setstat).
    const future = logName('1dyc4lgr', 'failure', '20240601-1100');
    await writeLog(path.join(logs, future), 0);
    const ahead = Math.floor(Date.now() / 1000) + 86_400;
    await utimes(path.join(logs, future), ahead, ahead);
    await pause();
    await writeFile(path.join(dir, 'x1', 'last_change_date'), '');
    await pause();
    // Then the machine applies it and reports success.
    const success = logName('fcz1s2yp', 'success', '20240601-1159');
    await writeFile(path.join(logs, success), LOG_CONTENT);
    const result = await status(dir);
    expect(result).toMatchObject({ code: 0, state: 'up-to-date' });
    expect(result.stderr).toContain(`warning: x1/logs/${future} has a modification time in the future (${new Date(ahead * 1000).toISOString()})`);
  });
});

describe('a log whose time lies beyond what a Date holds', () => {
  // ±1e14 s, some three million years: tmpfs and btrfs keep 64-bit times, which
  // a machine that may set them (an SFTP server without bento's allow list, a
  // copy from a mirror) can give its logs. Before, one such log made status
  // (table, --json, --prometheus) and the alerts throw for the whole fleet.
  const FAR = 1e14;

  it('still gives every system its row, in the table, the JSON and the alerts, and names the time in its warning', async () => {
    const made = await makeChroot('/dev/shm');
    cleanup = made.cleanup;
    const dir = made.dir;
    await writeFile(path.join(dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\nx2=${storePath('fcz1s2yp')}\n`);
    await addSystem(dir, 'x1', { lastChangeAgo: 600 });
    await addSystem(dir, 'x2', { lastChangeAgo: 600, logs: [[logName('fcz1s2yp', 'success', '20240601-1155'), 300]] });
    const past = path.join(dir, 'x1', 'logs', logName('1dyc4lgr', 'failure'));
    const future = path.join(dir, 'x2', 'logs', logName('1dyc4lgr', 'failure', '20240601-1159'));
    await writeLog(past, 0);
    await writeLog(future, 0);
    // touch: Node's utimes takes a negative time for now.
    for (const [file, seconds] of [[past, -FAR], [future, FAR]] as const) {
      expect(spawnSync('touch', ['-d', `@${seconds}`, file]).status).toBe(0);
    }
    // The test means nothing on a file system that cannot hold such times.
    expect((await lstat(past)).mtimeMs, '/dev/shm must be a tmpfs (64-bit file times)').toBe(-FAR * 1000);

    const json = await status(dir);
    expect(json.row).toMatchObject({ name: 'x1', state: 'rebuild-pending', lastLogTime: '-271821-04-20T00:00:00.000Z' });
    expect(json.stderr).toContain(`x2/logs/${path.basename(future)} has a modification time in the future (${FAR} seconds since 1970)`);
    const table = new Collector();
    expect(await statusCommand({ chrootDir: dir, isTTY: false, noColor: true, now: NOW }, { stdout: table, stderr: new Collector() })).toBe(2);
    expect(table.text).toMatch(/^x1 .*rebuild pending/m);
    expect(table.text).toMatch(/^x2 .*extra logs/m);
    const view = fleetViewOf(await readFleetReport(dir), NOW.getTime());
    expect(view.machines.x1).toMatchObject({ state: 'rebuild-pending', since: '-271821-04-20T00:00:00.000Z' });
    expect(view.machines.x2?.state).toBe('extra-logs');
  });
});
