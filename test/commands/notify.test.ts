/**
 * `bento notify` on a real CHROOT_DIR (logs as machines upload them) with
 * real hooks: a command run by /bin/sh and an HTTP server on 127.0.0.1.
 * A machine that fails gets exactly one POST and one command run; the next
 * run sends nothing; its recovery one more of each.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeOutcome, notifyCommand } from '../../src/commands/notify.js';
import type { CommandIO } from '../../src/commands/io.js';
import { addSystem, ago, logName, storePath, touch, writeLog } from '../status/fixtures.js';
import { startWebhook, type Webhook } from '../helpers/webhook.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'bento-notify-cmd-'));
let answer = 200;
let webhook: Webhook;
let url = '';
/** The bodies POSTed so far. */
const posts = () => webhook.received.map((request) => request.body);

beforeAll(async () => {
  webhook = await startWebhook(() => ({ status: answer }));
  url = `${webhook.base}/hooks/T0KEN`;
});
afterAll(async () => {
  await webhook.close();
  rmSync(work, { recursive: true, force: true });
});

function capture(): { io: CommandIO; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { io: { stdout, stderr, uid: 0, now: () => new Date('2024-06-01T12:00:00Z') }, out: () => out, err: () => err };
}

/** Sets a file's times `secondsAgo` (the test's clock): time passes without sleeping. */
function setBack(file: string, secondsAgo: number): void {
  const time = ago(secondsAgo) / 1000;
  utimesSync(file, time, time);
}

async function notify(fleetDir: string) {
  const { io, out, err } = capture();
  const status = await notifyCommand({ fleetDir }, io);
  return { status, stdout: out(), stderr: err() };
}

describe('bento notify', () => {
  it('sends one alert when a machine starts failing, none again, one on its recovery', async () => {
    const chrootDir = path.join(work, 'chroot');
    const fleetDir = path.join(work, 'fleet');
    mkdirSync(chrootDir);
    mkdirSync(fleetDir);
    const received = path.join(work, 'received');
    writeFileSync(path.join(fleetDir, 'config.sh'), `CHROOT_DIR=${chrootDir}\nREMOTE_IP=bento.example.org\nNOTIFY_COMMAND='cat >> ${received}; echo >> ${received}'\nNOTIFY_URL=${url}\n`);
    const runs = () => (existsSync(received) ? readFileSync(received, 'utf8').trim().split('\n').filter(Boolean) : []);
    await addSystem(chrootDir, 'nas', { logs: [[logName('a1', 'success', '20240601-1100'), 1800]] });
    await addSystem(chrootDir, 'pi', { logs: [[logName('b2', 'success', '20240601-1100'), 1800]] });

    const first = await notify(fleetDir);
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(
      'NOTIFY_COMMAND: first run, the fleet as it is now recorded, nothing sent\nNOTIFY_URL (http://127.0.0.1:' + new URL(url).port + '/…): first run, the fleet as it is now recorded, nothing sent\n',
    );
    expect(posts()).toEqual([]);

    // A new configuration for pi, whose run fails.
    await touch(path.join(chrootDir, 'pi', 'last_change_date'), 900);
    await writeLog(path.join(chrootDir, 'pi', 'logs', logName('b3', 'failure', '20240601-1130')), 600);
    const failing = await notify(fleetDir);
    expect(failing.status).toBe(0);
    expect(failing.stdout).toContain('NOTIFY_URL (http://127.0.0.1:');
    expect(failing.stdout).toContain(': 1 transition sent');
    expect(posts()).toHaveLength(1);
    const payload = JSON.parse(posts()[0] ?? '') as { text: string; transitions: { system: string; from: string; to: string; why: string; when: string }[] };
    expect(payload.text).toBe('bento: pi failing');
    expect(payload.transitions).toEqual([
      { system: 'pi', from: 'up-to-date', to: 'failing', when: '2024-06-01T11:50:00.000Z', why: `its latest log, ${logName('b3', 'failure', '20240601-1130')}, reports failure`, recovered: false },
    ]);
    expect(runs().map((line) => JSON.parse(line) as unknown)).toEqual([payload]);

    const again = await notify(fleetDir);
    expect(again.stdout).toContain('NOTIFY_COMMAND: nothing new');
    expect(posts()).toHaveLength(1);
    expect(runs()).toHaveLength(1);

    await touch(path.join(chrootDir, 'pi', 'last_change_date'), 400);
    await writeLog(path.join(chrootDir, 'pi', 'logs', logName('b4', 'success', '20240601-1140')), 300);
    await notify(fleetDir);
    expect(posts()).toHaveLength(2);
    expect(JSON.parse(posts()[1] ?? '')).toMatchObject({ text: 'bento: pi recovered (up-to-date)' });
    expect(runs()).toHaveLength(2);

    // A webhook that fails: exit 1, said without its token, sent again once it answers.
    answer = 500;
    await touch(path.join(chrootDir, 'nas', 'last_change_date'), 250);
    await writeLog(path.join(chrootDir, 'nas', 'logs', logName('a2', 'rollback', '20240601-1145')), 200);
    const failed = await notify(fleetDir);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('answered HTTP 500');
    expect(failed.stderr + failed.stdout).not.toContain('T0KEN');
    expect(runs()).toHaveLength(3);
    answer = 200;
    const retried = await notify(fleetDir);
    expect(retried.status).toBe(0);
    expect(posts().map((body) => (JSON.parse(body) as { text: string }).text)).toEqual(['bento: pi failing', 'bento: pi recovered (up-to-date)', 'bento: nas rollbacked', 'bento: nas rollbacked']);
    expect(runs()).toHaveLength(3);
  });

  it('sends one alert when a machine goes silent (SILENT_AFTER), none again, one when it is seen again', async () => {
    const chrootDir = path.join(work, 'silent-chroot');
    const fleetDir = path.join(work, 'silent-fleet');
    mkdirSync(chrootDir);
    mkdirSync(fleetDir);
    writeFileSync(path.join(fleetDir, 'config.sh'), `CHROOT_DIR=${chrootDir}\nREMOTE_IP=bento.example.org\nSILENT_AFTER=1h\nNOTIFY_URL=${url}\n`);
    await addSystem(chrootDir, 'laptop', { lastChangeAgo: 90_000, logs: [[logName('c1', 'success', '20240531-1100'), 86_400]] });
    const heartbeat = path.join(chrootDir, 'laptop', 'logs', 'heartbeat');
    const beat = async (secondsAgo: number) => {
      writeFileSync(heartbeat, `bento heartbeat of laptop on x\nprotocol: 2\nrunning: ${storePath('c1')}\n\n`);
      setBack(heartbeat, secondsAgo);
    };
    await beat(600);
    const before = posts().length;
    expect((await notify(fleetDir)).stdout).toContain('first run');
    // The machine stops: an hour and a bit later its heartbeat is as it was.
    setBack(heartbeat, 3700);
    expect((await notify(fleetDir)).stdout).toContain('1 transition sent');
    expect(posts()).toHaveLength(before + 1);
    expect(JSON.parse(posts()[before] ?? '')).toMatchObject({
      text: 'bento: laptop silent',
      transitions: [{ system: 'laptop', from: 'up-to-date', to: 'silent', why: `not seen since ${new Date(ago(3700)).toISOString()} (SILENT_AFTER)`, recovered: false }],
    });
    expect((await notify(fleetDir)).stdout).toContain('nothing new');
    expect(posts()).toHaveLength(before + 1);
    await beat(30);
    await notify(fleetDir);
    expect(posts()).toHaveLength(before + 2);
    expect(JSON.parse(posts()[before + 1] ?? '')).toMatchObject({ text: 'bento: laptop recovered (up-to-date)' });
  });

  it('without hooks does nothing and says why', async () => {
    const fleetDir = path.join(work, 'quiet');
    mkdirSync(fleetDir);
    writeFileSync(path.join(fleetDir, 'config.sh'), `CHROOT_DIR=${path.join(work, 'nothing')}\nREMOTE_IP=bento.example.org\n`);
    const run = await notify(fleetDir);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('notify: nothing to do: config.sh sets neither NOTIFY_COMMAND nor NOTIFY_URL (docs/alerts.md)\n');
  });

  it('refuses a NOTIFY_URL that is not http(s), naming the key', async () => {
    const fleetDir = path.join(work, 'bad');
    mkdirSync(fleetDir);
    writeFileSync(path.join(fleetDir, 'config.sh'), `CHROOT_DIR=${path.join(work, 'nothing')}\nREMOTE_IP=bento.example.org\nNOTIFY_URL=ftp://x.example.org/a\n`);
    await expect(notify(fleetDir)).rejects.toThrow(/NOTIFY_URL.*must be an http:\/\/ or https:\/\/ URL, not ftp:/);
  });

  it('refuses to run as another user than root, saying why', async () => {
    const fleetDir = path.join(work, 'user');
    mkdirSync(fleetDir);
    writeFileSync(path.join(fleetDir, 'config.sh'), `CHROOT_DIR=${path.join(work, 'nothing')}\nREMOTE_IP=bento.example.org\nNOTIFY_COMMAND=true\n`);
    const { io } = capture();
    await expect(notifyCommand({ fleetDir }, { ...io, uid: 1000 })).rejects.toThrow('bento notify must run as root');
  });

  it('describes each outcome in one line', () => {
    expect(describeOutcome({ hook: 'NOTIFY_COMMAND', result: 'failed', transitions: [], error: 'exited with status 2' })).toBe(
      'NOTIFY_COMMAND: 0 transitions not delivered (exited with status 2); sent again at the next run',
    );
  });
});
