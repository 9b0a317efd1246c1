/**
 * `bento prune` as a whole process on a chroot, and deploy pruning the
 * systems it publishes (as root, with real users, as deploy needs).
 */
import { readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';
import { createTestServer, type TestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';
import { addSystem, LOG_CONTENT, logName, makeChroot } from '../status/fixtures.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `count` logs, one an hour, the newest an hour ago (before last_change_date, 30 min ago). */
function hourlyLogs(count: number, prefix = 'a'): [string, number][] {
  return Array.from({ length: count }, (_, i) => [logName(`${prefix}${i}`, 'success', `20240601-${String(i).padStart(2, '0')}00`), (count - i) * 3600]);
}

/**
 * A fleet whose CHROOT_DIR is a test server's, with `systems` (name → number
 * of logs) as bento's server setup and deploy leave them: real SFTP users
 * (the prune touches only bento's own systems), their directories, logs.
 */
async function fleetWithChroot(config: string, systems: Record<string, number>): Promise<{ root: string; chroot: string; n: (name: string) => string }> {
  const server = createTestServer();
  cleanups.push(() => server.cleanup());
  const n = (name: string) => `${server.prefix}${name}`;
  server.addUsers(Object.keys(systems).map(n));
  for (const [name, count] of Object.entries(systems)) await addSystem(server.chrootDir, n(name), { lastChangeAgo: 1800, logs: hourlyLogs(count) });
  const fleet = makeFleet({ config: `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\n${config}`, hosts: {} });
  cleanups.push(fleet.cleanup);
  return { root: fleet.root, chroot: server.chrootDir, n };
}

const logsOf = (chroot: string, name: string) => readdirSync(path.join(chroot, name, 'logs')).sort();

describe.skipIf(!isRoot)('bento prune', () => {
  it('keeps LOG_KEEP logs per machine, the newest, and says what it removed', async () => {
    const { root, chroot, n } = await fleetWithChroot('LOG_KEEP=3\n', { busy: 7, quiet: 2 });
    const run = bento(['prune'], { env: { BENTO_DIR: root } });
    expect(run.stdout).toBe(`  ${n('busy')}: 4 old logs removed, 3 kept\n`);
    expect(run.stderr).toBe('prune: 4 logs removed from 1 system (LOG_KEEP=3)\n');
    expect(run.status).toBe(0);
    expect(logsOf(chroot, n('busy'))).toEqual(hourlyLogs(7).slice(4).map(([name]) => name));
    expect(logsOf(chroot, n('quiet'))).toHaveLength(2);
  });

  it('--dry-run removes nothing; --keep overrides LOG_KEEP; names restrict it', async () => {
    const { root, chroot, n } = await fleetWithChroot('', { a: 5, b: 5 });
    const dry = bento(['prune', '--dry-run', '--keep', '2'], { env: { BENTO_DIR: root } });
    expect(dry.stdout).toBe(`  ${n('a')}: 3 old logs to remove, 2 kept\n  ${n('b')}: 3 old logs to remove, 2 kept\n`);
    expect(logsOf(chroot, n('a'))).toHaveLength(5);
    const one = bento(['prune', '--keep', '2', n('b')], { env: { BENTO_DIR: root } });
    expect(one.stdout).toBe(`  ${n('b')}: 3 old logs removed, 2 kept\n`);
    expect(logsOf(chroot, n('a'))).toHaveLength(5);
    expect(logsOf(chroot, n('b'))).toHaveLength(2);
    // The default, 100: nothing to do here.
    expect(bento(['prune'], { env: { BENTO_DIR: root } }).stderr).toBe('prune: 0 logs removed from 0 systems (LOG_KEEP=100)\n');
  });

  it('LOG_KEEP=0 keeps everything; an unknown name is an error', async () => {
    const { root, chroot, n } = await fleetWithChroot('LOG_KEEP=0\n', { a: 5 });
    expect(bento(['prune'], { env: { BENTO_DIR: root } }).stderr).toBe('prune: LOG_KEEP=0: every log is kept\n');
    expect(logsOf(chroot, n('a'))).toHaveLength(5);
    const typo = bento(['prune', '--keep', '1', 'b'], { env: { BENTO_DIR: root } });
    expect(typo.stderr).toContain(`bento: error: b has no directory in CHROOT_DIR ${chroot}`);
    expect(typo.status).toBe(1);
  });

  it("touches only bento's own systems, never through a link: a link to a directory elsewhere, a directory without a bento account", async () => {
    const { root, chroot, n } = await fleetWithChroot('LOG_KEEP=1\n', { own: 3, linked: 0 });
    const { dir: elsewhere, cleanup } = await makeChroot();
    cleanups.push(cleanup);
    // A bento user whose directory in CHROOT_DIR is a link to another directory with logs.
    await addSystem(elsewhere, 'x', { lastChangeAgo: 1800, logs: hourlyLogs(3, 'b') });
    rmSync(path.join(chroot, n('linked')), { recursive: true });
    symlinkSync(path.join(elsewhere, 'x'), path.join(chroot, n('linked')));
    // A directory named like a system, whose name is no bento user.
    await addSystem(chroot, n('ghost'), { lastChangeAgo: 1800, logs: hourlyLogs(3, 'c') });

    const run = bento(['prune'], { env: { BENTO_DIR: root } });
    expect(run.stdout).toBe(`  ${n('own')}: 2 old logs removed, 1 kept\n`);
    expect(run.status).toBe(0);
    expect(logsOf(elsewhere, 'x')).toHaveLength(3);
    expect(logsOf(chroot, n('ghost'))).toHaveLength(3);
    // Named, each is refused with its reason: exit 1.
    const named = bento(['prune', n('linked'), n('ghost')], { env: { BENTO_DIR: root } });
    expect(named.stderr).toContain(`${n('linked')}: ${path.join(chroot, n('linked'))} is a symbolic link: the prune never goes through one, its logs are left alone`);
    expect(named.stderr).toContain(`${n('ghost')}: no user ${n('ghost')} on this server: not a system bento publishes for, its logs are left alone`);
    expect(named.status).toBe(1);
    expect(logsOf(elsewhere, 'x')).toHaveLength(3);
    expect(logsOf(chroot, n('ghost'))).toHaveLength(3);
  });
});

describe.skipIf(!isRoot)('bento deploy prunes the systems it handles', () => {
  let server: TestServer;
  const fleets: TestFleet[] = [];
  beforeAll(() => {
    server = createTestServer();
  });
  afterAll(() => {
    fleets.forEach((fleet) => fleet.cleanup());
    server.cleanup();
  });

  it('down to LOG_KEEP, even when nothing changed', async () => {
    const name = `${server.prefix}web`;
    const other = `${server.prefix}db`;
    server.addUsers([name, other]);
    const fleet = makeFleet({ config: `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\nLOG_KEEP=2\n`, hosts: { web: { flake: [name] }, db: { flake: [other] } } });
    fleets.push(fleet);
    const first = bento(['deploy'], { env: { BENTO_DIR: fleet.root } });
    expect(first.status).toBe(0);
    // The machines reported, more than LOG_KEEP times, all before this publication.
    for (const system of [name, other]) {
      for (const [log, secondsAgo] of hourlyLogs(4)) {
        const file = path.join(server.chrootDir, system, 'logs', log);
        writeFileSync(file, LOG_CONTENT);
        utimesSync(file, Date.now() / 1000 - secondsAgo, Date.now() / 1000 - secondsAgo);
      }
    }
    const again = bento(['deploy'], { env: { BENTO_DIR: fleet.root, NAME: name } });
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('pruned 2 old logs (LOG_KEEP=2)');
    expect(logsOf(server.chrootDir, name)).toEqual(hourlyLogs(4).slice(2).map(([log]) => log));
    // Only the systems deploy handled.
    expect(logsOf(server.chrootDir, other)).toHaveLength(4);
  });
});
