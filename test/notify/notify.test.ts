/**
 * An alert run against real hooks: a command run by /bin/sh, and an HTTP
 * server on 127.0.0.1 that records each POST. One delivery per transition,
 * none on a repeated run or a first run, a failed hook retried, a token in
 * the URL never in a message.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Hook } from '../../src/notify/deliver.js';
import { UserError } from '../../src/errors.js';
import { notifyExclusively, notifyHooks } from '../../src/notify/notify.js';
import type { FleetView } from '../../src/notify/transitions.js';
import { startWebhook, type ReceivedRequest, type Webhook } from '../helpers/webhook.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'bento-notify-'));
let answer = 204;
let webhook: Webhook;
let posts: ReceivedRequest[] = [];
let base = '';

beforeAll(async () => {
  webhook = await startWebhook(() => ({ status: answer }));
  posts = webhook.received;
  base = webhook.base;
});
afterAll(async () => {
  await webhook.close();
  rmSync(work, { recursive: true, force: true });
});
afterEach(() => {
  posts.length = 0;
  answer = 204;
});

const at = '2024-06-01T12:00:00.000Z';
const view = (states: Record<string, string>, rollout = 'none'): FleetView => ({
  machines: Object.fromEntries(Object.entries(states).map(([name, state]) => [name, { state, why: `${name} is ${state}`, since: at }])),
  rollout: { status: rollout, why: '', since: at },
});

let count = 0;
function setup() {
  const dir = path.join(work, String(count++));
  mkdirSync(dir);
  const stateFile = path.join(dir, 'alerts.json');
  const received = path.join(dir, 'received');
  const hooks: Hook[] = [
    { kind: 'command', target: `cat >> ${received} && echo >> ${received}` },
    { kind: 'url', target: `${base}/topic/s3cret-token?auth=s3cret` },
  ];
  const commandRuns = () => (existsSync(received) ? readFileSync(received, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { text: string }) : []);
  return { stateFile, hooks, commandRuns };
}

describe('notifyHooks', () => {
  it('sends one alert per transition to each hook: none on a first run, none again, one on recovery', async () => {
    const { stateFile, hooks, commandRuns } = setup();
    const first = await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing', pi: 'up-to-date' }) });
    expect(first.map((outcome) => outcome.result)).toEqual(['first-run', 'first-run']);
    expect(posts).toEqual([]);
    expect(commandRuns()).toEqual([]);

    const failing = await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing', pi: 'failing' }) });
    expect(failing.map((outcome) => outcome.result)).toEqual(['delivered', 'delivered']);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.url).toBe('/topic/s3cret-token?auth=s3cret');
    expect(posts[0]?.type).toBe('application/json');
    const payload = JSON.parse(posts[0]?.body ?? '') as { text: string; transitions: unknown[] };
    expect(payload).toEqual({ text: 'bento: pi failing', transitions: [{ system: 'pi', from: 'up-to-date', to: 'failing', when: at, why: 'pi is failing', recovered: false }] });
    expect(commandRuns()).toEqual([payload]);

    // The same fleet again (a restart, the next timer run): nothing.
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing', pi: 'failing' }) });
    expect(posts).toHaveLength(1);
    expect(commandRuns()).toHaveLength(1);

    await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing', pi: 'up-to-date' }) });
    expect(posts).toHaveLength(2);
    expect(commandRuns().at(-1)?.text).toBe('bento: pi recovered (up-to-date)');
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  });

  it('keeps what a failed hook did not get and sends it at the next run; the other hook is not sent it twice', async () => {
    const { stateFile, hooks, commandRuns } = setup();
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    answer = 503;
    const failed = await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) });
    expect(failed.map((outcome) => outcome.result)).toEqual(['delivered', 'failed']);
    const message = failed[1]?.error ?? '';
    expect(message).toBe(`NOTIFY_URL (${base}/…) answered HTTP 503`);
    expect(message).not.toContain('s3cret');
    expect(commandRuns()).toHaveLength(1);

    answer = 200;
    const retried = await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) });
    expect(retried.map((outcome) => outcome.result)).toEqual(['quiet', 'delivered']);
    expect(posts).toHaveLength(2);
    expect(JSON.parse(posts[1]?.body ?? '')).toMatchObject({ text: 'bento: nas failing' });
    expect(commandRuns()).toHaveLength(1);
  });

  it('a command that fails is reported with its status and output, and retried', async () => {
    const { stateFile } = setup();
    const flag = path.join(work, `fail-${count}`);
    writeFileSync(flag, '');
    const hooks: Hook[] = [{ kind: 'command', target: `cat > /dev/null; if [ -e ${flag} ]; then echo 'chat is down' >&2; exit 3; fi` }];
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    const failed = await notifyHooks({ stateFile, hooks, now: view({ nas: 'rollbacked' }) });
    expect(failed[0]).toMatchObject({ result: 'failed', error: 'NOTIFY_COMMAND exited with status 3: chat is down' });
    rmSync(flag);
    const retried = await notifyHooks({ stateFile, hooks, now: view({ nas: 'rollbacked' }) });
    expect(retried[0]).toMatchObject({ result: 'delivered', transitions: [{ system: 'nas', to: 'rollbacked' }] });
  });

  it('an unreachable URL fails without naming its path or query', async () => {
    const { stateFile } = setup();
    // A port nothing listens on: taken, then given back.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const hooks: Hook[] = [{ kind: 'url', target: `http://127.0.0.1:${port}/hook/s3cret` }];
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    const failed = await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) });
    expect(failed[0]?.result).toBe('failed');
    expect(failed[0]?.error).toBe(`NOTIFY_URL (http://127.0.0.1:${port}/…): the POST failed (ECONNREFUSED)`);
  });

  it('leaves the state file alone when a run changes nothing', async () => {
    const { stateFile, hooks } = setup();
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    const before = statSync(stateFile).ino;
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    // An atomic rewrite would have given it a new inode.
    expect(statSync(stateFile).ino).toBe(before);
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) });
    expect(statSync(stateFile).ino).not.toBe(before);
  });

  it('refuses a damaged state file, naming it, and leaves it as it was', async () => {
    const { stateFile, hooks } = setup();
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    writeFileSync(stateFile, '{"version":1,"hooks":{"url":{"machines":{"nas":{"state":3}}}}}');
    await expect(notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) })).rejects.toThrow(`${stateFile}: the state of url is damaged`);
    expect(readFileSync(stateFile, 'utf8')).toContain('"state":3');
    expect(posts).toEqual([]);
  });

  it("a damaged or unreadable state file is the user's to mend (a UserError), not a bug in bento", async () => {
    const { stateFile, hooks } = setup();
    writeFileSync(stateFile, 'not json');
    await expect(notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) })).rejects.toBeInstanceOf(UserError);
    rmSync(stateFile);
    mkdirSync(stateFile);
    const unreadable = notifyHooks({ stateFile, hooks, now: view({ nas: 'failing' }) });
    await expect(unreadable).rejects.toBeInstanceOf(UserError);
    await expect(unreadable).rejects.toThrow(`${stateFile} cannot be read: EISDIR`);
    expect(posts).toEqual([]);
  });

  it('a state file it cannot write (a full disk) is an error that says who got the alerts and gets them again', async () => {
    const { stateFile, hooks } = setup();
    await notifyHooks({ stateFile, hooks, now: view({ nas: 'up-to-date' }) });
    // The command hook takes its alert, then takes away the directory the state is written into.
    const gone: Hook[] = [{ kind: 'command', target: `cat > /dev/null && rm -r ${path.dirname(stateFile)}` }, hooks[1] as Hook];
    const run = notifyHooks({ stateFile, hooks: gone, now: view({ nas: 'failing' }) });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toMatchObject({
      message: expect.stringContaining(`cannot record the alerts sent in ${stateFile}: ENOENT`) as unknown,
      hint: `NOTIFY_COMMAND and NOTIFY_URL (${base}/…) got this run's alerts, and will get them again at the next run`,
    });
    expect(posts).toHaveLength(1);
  });
});

describe('notifyExclusively', () => {
  it('a lock it cannot open (CHROOT_DIR read-only, or not a directory) is an error that names it, not an internal error', async () => {
    const chrootDir = path.join(work, 'a-file');
    writeFileSync(chrootDir, '');
    const run = notifyExclusively({ chrootDir, hooks: setup().hooks, now: view({ a: 'ok' }) });
    await expect(run).rejects.toBeInstanceOf(UserError);
    await expect(run).rejects.toThrow(`cannot take the lock of the alerts sent: ENOTDIR: not a directory, open '${chrootDir}/.bento-alerts.json.lock'`);
  });
});
