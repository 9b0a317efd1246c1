import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { readChroot } from '../../src/status/read-chroot.js';
import { UserError } from '../../src/errors.js';
import { addSystem, ago, hash, logName, makeChroot, storePath } from './fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function chroot(): Promise<string> {
  const made = await makeChroot();
  cleanup = made.cleanup;
  return made.dir;
}

/** A heartbeat as the client writes it (docs/protocol.md §5a), received `secondsAgo`. */
async function writeHeartbeat(file: string, secondsAgo: number, text: string): Promise<void> {
  await writeFile(file, text);
  const time = ago(secondsAgo) / 1000;
  await utimes(file, time, time);
}

describe('readChroot: the heartbeat', () => {
  it('reads when it arrived (its mtime) and what it says, and never takes it for a log or a stray', async () => {
    const dir = await chroot();
    await addSystem(dir, 'web', { lastChangeAgo: 500, logs: [[logName('996vw3r6', 'success'), 400]] });
    const text = `bento heartbeat of web on 2024-06-01 11:59:00 UTC\nprotocol: 2\nrunning: ${storePath('996vw3r6')}\nbooted: ${storePath('r7ips2c6')}\nreboot-pending: yes\n\n`;
    await writeHeartbeat(path.join(dir, 'web', 'logs', 'heartbeat'), 60, text);
    const snapshot = await readChroot(dir);
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.systems[0]?.heartbeat).toEqual({ receivedMs: ago(60), says: { protocol: 2, running: storePath('996vw3r6'), booted: storePath('r7ips2c6'), rebootPending: true } });
    expect(snapshot.systems[0]?.logs.map((log) => log.fileName)).toEqual([logName('996vw3r6', 'success')]);
  });

  it('a machine without one (an older client) has none; an empty or oversized one still says the machine was there', async () => {
    const dir = await chroot();
    await addSystem(dir, 'old');
    await addSystem(dir, 'empty');
    await writeHeartbeat(path.join(dir, 'empty', 'logs', 'heartbeat'), 30, '');
    await addSystem(dir, 'big');
    await writeHeartbeat(path.join(dir, 'big', 'logs', 'heartbeat'), 20, `bento heartbeat of big on x\nrunning: ${storePath('996vw3r6')}\n\n${'x'.repeat(10_000)}`);
    const systems = (await readChroot(dir)).systems;
    expect(systems.map((system) => [system.name, system.heartbeat])).toEqual([
      ['big', { receivedMs: ago(20), says: {} }],
      ['empty', { receivedMs: ago(30), says: {} }],
      ['old', null],
    ]);
  });

  it('a link or a directory in its place is not followed, and named in a warning', async () => {
    const dir = await chroot();
    await addSystem(dir, 'linked');
    await writeFile(path.join(dir, 'elsewhere'), `bento heartbeat of linked on x\nrunning: ${storePath('996vw3r6')}\n\n`);
    await symlink(path.join(dir, 'elsewhere'), path.join(dir, 'linked', 'logs', 'heartbeat'));
    const snapshot = await readChroot(dir);
    expect(snapshot.systems.find((system) => system.name === 'linked')?.heartbeat).toBeNull();
    expect(snapshot.warnings).toContain('linked/logs/heartbeat is not a regular file: ignored');
  });
});

describe('readChroot', () => {
  it('reads states.txt, last_change_date and the logs with their server mtimes', async () => {
    const dir = await chroot();
    await writeFile(path.join(dir, 'states.txt'), `kikimora=${storePath('996vw3r6')}\r\nnas=${storePath('r7ips2c6')}\n\n`);
    await addSystem(dir, 'kikimora', { lastChangeAgo: 168, logs: [[logName('996vw3r6', 'success'), 353]] });
    await addSystem(dir, 'nas', { lastChangeAgo: 105, logs: [[logName('lvbajpc5', 'failure', '20240601-1100'), 400], [logName('lvbajpc5', 'success'), 349]] });
    await addSystem(dir, 'interbus', { logs: [[logName('1dyc4lgr', 'success'), 11]] });

    const snapshot = await readChroot(dir);
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.systems.map((system) => system.name)).toEqual(['interbus', 'kikimora', 'nas']);
    const [interbus, kikimora, nas] = snapshot.systems;
    expect(interbus).toMatchObject({ expected: { kind: 'non-flake' }, lastChangeMs: ago(3600), problems: [] });
    expect(kikimora).toMatchObject({ expected: { kind: 'flake', storeBasename: storePath('996vw3r6'), hash: hash('996vw3r6') }, lastChangeMs: ago(168) });
    expect(kikimora?.logs).toEqual([{ fileName: logName('996vw3r6', 'success'), mtimeMs: ago(353), log: expect.objectContaining({ result: 'success' }) }]);
    // Only what the rules read: the latest, and none is newer than last_change_date (105 s ago).
    expect(nas?.logs.map((log) => [log.log.result, log.mtimeMs])).toEqual([['success', ago(349)]]);
  });

  it('keeps the logs status needs: the latest and every one newer than last_change_date', async () => {
    const dir = await chroot();
    await addSystem(dir, 'nas', {
      lastChangeAgo: 300,
      logs: [
        [logName('aaaaaaaa', 'success', '20240601-0900'), 900],
        [logName('bbbbbbbb', 'failure', '20240601-1000'), 200],
        [logName('cccccccc', 'success', '20240601-1100'), 100],
      ],
    });
    const [nas] = (await readChroot(dir)).systems;
    expect(nas?.logs.map((log) => log.mtimeMs).sort()).toEqual([ago(200), ago(100)]);
  });

  it('treats a missing states.txt as a fleet without flakes, silently', async () => {
    const dir = await chroot();
    await addSystem(dir, 'interbus');
    const snapshot = await readChroot(dir);
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.systems[0]?.expected).toEqual({ kind: 'non-flake' });
  });

  it('warns about odd states.txt lines and other entries of CHROOT_DIR, and keeps going', async () => {
    const dir = await chroot();
    await writeFile(
      path.join(dir, 'states.txt'),
      ['garbage', `x1=${storePath('11111111')}`, `x1=${storePath('fcz1s2yp')}`, 'broken=/nix/store/nothing', `ghost=${storePath('22222222')}`].join('\n'),
    );
    await addSystem(dir, 'x1');
    await addSystem(dir, 'broken');
    await mkdir(path.join(dir, 'Not-A-User'));
    await writeFile(path.join(dir, 'notes'), '');
    await writeFile(path.join(dir, '.states.txt.tmp'), '');
    await symlink(path.join(dir, 'x1'), path.join(dir, 'alias'));

    const snapshot = await readChroot(dir);
    expect(snapshot.systems.map((system) => [system.name, system.expected.kind, system.problems.length > 0])).toEqual([
      ['alias', 'non-flake', false],
      ['broken', 'unknown', true],
      ['x1', 'flake', false],
    ]);
    expect(snapshot.systems[2]?.expected).toMatchObject({ storeBasename: storePath('fcz1s2yp') });
    expect(snapshot.warnings).toEqual(
      expect.arrayContaining([
        'states.txt:1: ignored, not <system name>=<store path>: "garbage"',
        'states.txt:3: x1 is listed again (line 2 is ignored)',
        'states.txt:5: ghost has no directory in CHROOT_DIR (not shown)',
        'ignored "Not-A-User" in CHROOT_DIR: not a system name',
        'ignored notes in CHROOT_DIR: not a directory',
        expect.stringMatching(/^broken: states\.txt:4: the store path does not start with a 32-character nix hash/),
      ]),
    );
    expect(snapshot.warnings).toHaveLength(6);
  });

  it('throws a UserError when CHROOT_DIR cannot be read', async () => {
    const dir = await chroot();
    await expect(readChroot(path.join(dir, 'missing'))).rejects.toBeInstanceOf(UserError);
    await expect(readChroot(path.join(dir, 'missing'))).rejects.toThrow(/cannot read CHROOT_DIR .*ENOENT/);
  });
});
