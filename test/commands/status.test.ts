import { afterEach, describe, expect, it, vi } from 'vitest';
import path from 'node:path';
import { Writable } from 'node:stream';
import { readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { statusCommand, type StatusOptions } from '../../src/commands/status.js';
import { UserError } from '../../src/errors.js';
import { Collector, RAW_CONTROL } from '../helpers/collect.js';
import { LOG_CONTENT, NOW, addSystem, logName, makeChroot, storePath, writeLog } from '../status/fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A healthy fleet: one flake up to date, one non-flake new machine. */
async function fleet(): Promise<string> {
  const made = await makeChroot();
  cleanup = made.cleanup;
  await writeFile(path.join(made.dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\n`);
  await addSystem(made.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('fcz1s2yp', 'success'), 157]] });
  await addSystem(made.dir, 'interbus', { lastChangeAgo: 30 });
  return made.dir;
}

function run(chrootDir: string, extra: Partial<StatusOptions> = {}) {
  const stdout = new Collector();
  const stderr = new Collector();
  const done = statusCommand({ chrootDir, isTTY: false, noColor: false, now: NOW, ...extra }, { stdout, stderr });
  return { stdout, stderr, done };
}

describe('statusCommand, printing once', () => {
  it('prints the table without colour when not on a terminal, and exits 0 on a healthy fleet', async () => {
    const { stdout, stderr, done } = run(await fleet());
    expect(await done).toBe(0);
    expect(stdout.text).toBe(
      [
        'machine   local version  remote version  state          seen        time',
        '--------  -------------  --------------  -------------  ----------  -----------------',
        'interbus  non-flakes                     new machine                (new config 30s)',
        'x1        fcz1s2yp       fcz1s2yp 💚     up to date 💚  2m 37s ago  (last log 2m 37s)',
        '',
      ].join('\n'),
    );
    expect(stderr.text).toBe('');
  });

  it('colours on a terminal with --once, and not with NO_COLOR', async () => {
    const dir = await fleet();
    const colored = run(dir, { isTTY: true, once: true });
    expect(await colored.done).toBe(0);
    expect(colored.stdout.text).toContain('\x1b[32mup to date 💚\x1b[0m');
    const plain = run(dir, { isTTY: true, once: true, noColor: true });
    await plain.done;
    expect(plain.stdout.text).not.toMatch(RAW_CONTROL);
  });

  it('prints JSON, even on a terminal, and exits 2 when a system fails', async () => {
    const dir = await fleet();
    await writeLog(path.join(dir, 'interbus', 'logs', logName('1dyc4lgr', 'failure')), 5);
    const { stdout, done } = run(dir, { json: true, isTTY: true });
    expect(await done).toBe(2);
    expect(JSON.parse(stdout.text)).toEqual([
      expect.objectContaining({ name: 'interbus', state: 'failing', expectedStorePath: null }),
      expect.objectContaining({ name: 'x1', state: 'up-to-date', expectedStorePath: storePath('fcz1s2yp') }),
    ]);
  });

  it.each([
    ['rollback', 2],
    ['success', 0],
  ] as const)('exits %s → %i', async (result, code) => {
    const dir = await fleet();
    await writeLog(path.join(dir, 'interbus', 'logs', logName('1dyc4lgr', result)), 5);
    expect(await run(dir).done).toBe(code);
  });

  it('exits 2 on extra logs', async () => {
    const dir = await fleet();
    await writeLog(path.join(dir, 'x1', 'logs', logName('fcz1s2yp', 'success', '20240601-1159')), 5);
    const { stdout, done } = run(dir);
    expect(await done).toBe(2);
    expect(stdout.text).toMatch(/^x1 .*extra logs 🔥 +5s ago +\(last log 5s\) \(new config 10m\)$/m);
  });

  it('exits 2 when a machine with a heartbeat was not seen for SILENT_AFTER, and says so', async () => {
    const dir = await fleet();
    const heartbeat = path.join(dir, 'x1', 'logs', 'heartbeat');
    await writeFile(heartbeat, `bento heartbeat of x1 on x\nprotocol: 2\nrunning: ${storePath('fcz1s2yp')}\n\n`);
    const secondsAgo = 3601;
    const time = (NOW.getTime() - secondsAgo * 1000) / 1000;
    await utimes(heartbeat, time, time);
    // Seen at its latest log (157 s ago), which came after the heartbeat.
    expect(await run(dir, { silentAfter: 158 }).done).toBe(0);
    const { stdout, done } = run(dir, { silentAfter: 156 });
    expect(await done).toBe(2);
    expect(stdout.text).toMatch(/^x1 .*silent 💤 +2m 37s ago +\(last log 2m 37s\) \(new config 10m\)$/m);
  });

  it('writes the Prometheus file atomically as well as the table', async () => {
    const dir = await fleet();
    const file = path.join(dir, 'bento.prom');
    const { stdout, done } = run(dir, { prometheusFile: file });
    expect(await done).toBe(0);
    expect(stdout.text).toContain('machine');
    const metrics = await readFile(file, 'utf8');
    expect(metrics).toContain('bento_system_state{system="x1",state="up-to-date"} 1\n');
    expect(metrics).toContain('bento_last_log_age_seconds{system="x1"} 157\n');
    expect((await readdir(dir)).filter((name) => name.includes('prom'))).toEqual(['bento.prom']);
  });

  it('leaves out a system that left the fleet (deploy marked it removed), says so under the table, and ignores its logs', async () => {
    const dir = await fleet();
    // laptop failed, then was removed from the fleet: deploy took away what it
    // had published and left its logs and a marker.
    await addSystem(dir, 'laptop', { lastChangeAgo: null, logs: [[logName('1dyc4lgr', 'failure'), 60]] });
    await writeFile(path.join(dir, 'laptop', 'removed'), 'removed from the fleet by bento deploy\n');
    const table = run(dir);
    expect(await table.done).toBe(0);
    expect(table.stdout.text).not.toMatch(/^laptop/m);
    expect(table.stdout.text).toContain('\nremoved from the fleet (their logs are kept): laptop\n');
    expect(table.stderr.text).toBe('');
    const json = run(dir, { json: true });
    expect(await json.done).toBe(0);
    expect((JSON.parse(json.stdout.text) as { name: string }[]).map((row) => row.name)).toEqual(['interbus', 'x1']);
    const prometheus = path.join(dir, 'bento.prom');
    await run(dir, { prometheusFile: prometheus }).done;
    expect(await readFile(prometheus, 'utf8')).not.toContain('laptop');
  });

  it('fails with a UserError (exit 1 in the CLI) for a missing CHROOT_DIR or an unwritable Prometheus file', async () => {
    const dir = await fleet();
    await expect(run(path.join(dir, 'nope')).done).rejects.toBeInstanceOf(UserError);
    await expect(run(dir, { prometheusFile: path.join(dir, 'nope', 'x.prom') }).done).rejects.toThrow(/cannot write the Prometheus file/);
  });
});

describe('statusCommand, watching on a terminal', () => {
  it('draws, redraws when a log arrives or last_change_date is touched, and stops on abort', async () => {
    const dir = await fleet();
    const controller = new AbortController();
    const { stdout, done } = run(dir, { isTTY: true, noColor: true, signal: controller.signal, now: undefined });
    await vi.waitFor(() => expect(stdout.text).toContain('new machine'), { timeout: 5_000 });
    expect(stdout.text.startsWith('\x1b[H')).toBe(true);

    await writeFile(path.join(dir, 'interbus', 'logs', logName('1dyc4lgr', 'failure')), LOG_CONTENT);
    await vi.waitFor(() => expect(stdout.text.slice(stdout.text.lastIndexOf('\x1b[H'))).toContain('failing 🔥'), { timeout: 5_000 });

    await writeFile(path.join(dir, 'interbus', 'last_change_date'), '');
    await vi.waitFor(() => expect(stdout.text.slice(stdout.text.lastIndexOf('\x1b[H'))).toMatch(/interbus .*rebuild pending 🚩/), { timeout: 5_000 });

    // A new system directory appears, then gets its first log.
    await addSystem(dir, 'newbie', { lastChangeAgo: 1 });
    await vi.waitFor(() => expect(stdout.text.slice(stdout.text.lastIndexOf('\x1b[H'))).toMatch(/newbie .*new machine/), { timeout: 5_000 });
    await writeFile(path.join(dir, 'newbie', 'logs', logName('1dyc4lgr', 'success')), LOG_CONTENT);
    await vi.waitFor(() => expect(stdout.text.slice(stdout.text.lastIndexOf('\x1b[H'))).toMatch(/newbie .*up to date 💚/), { timeout: 5_000 });

    controller.abort();
    expect(await done).toBe(0);
  });

  it('stops when its terminal goes away (a write fails with EIO), rather than drawing for nobody forever', async () => {
    const dir = await fleet();
    let writes = 0;
    const gone = new Writable({
      write(_chunk: Buffer, _encoding, done) {
        writes++;
        done(Object.assign(new Error('write EIO'), { code: 'EIO' }));
      },
    });
    // As runCli guards the process's stdout (util/write-stream.ts): the error ends nothing by itself.
    gone.on('error', () => {});
    const done = statusCommand({ chrootDir: dir, isTTY: true, noColor: true }, { stdout: gone, stderr: new Collector() });
    await expect(done).resolves.toBe(0);
    expect(writes).toBe(1);
  });

  it('returns at once when already aborted, after one drawing at most', async () => {
    const dir = await fleet();
    const controller = new AbortController();
    controller.abort();
    const { done } = run(dir, { isTTY: true, signal: controller.signal });
    expect(await done).toBe(0);
  });
});
