/**
 * `bento reboots` as a whole process on a chroot (as root: it writes into
 * CHROOT_DIR): machines whose heartbeats say they wait for a reboot slot,
 * REBOOT_MAX=1; the slot file a machine reads, its release once the
 * machine reports it rebooted with it, the next grant.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';
import { makeFleet } from '../helpers/fleet.js';
import { createTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';
import { addSystem } from '../status/fixtures.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A heartbeat as the client writes it, with `lines` after reboot-pending. */
function beat(chroot: string, name: string, pending: boolean, lines: string[] = []): void {
  const text = [`bento heartbeat of ${name} on 2026-12-07 03:00:00 UTC`, 'protocol: 2', `reboot-pending: ${pending ? 'yes' : 'no'}`, ...lines, '', ''].join('\n');
  writeFileSync(path.join(chroot, name, 'logs', 'heartbeat'), text);
}

describe.skipIf(!isRoot)('bento reboots', () => {
  it('REBOOT_MAX=1: one slot at a time, the next once the first reported its reboot', async () => {
    const server = createTestServer();
    cleanups.push(() => server.cleanup());
    const n = (name: string) => `${server.prefix}${name}`;
    server.addUsers([n('a'), n('b')]);
    for (const name of ['a', 'b']) await addSystem(server.chrootDir, n(name));
    const fleet = makeFleet({ config: `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\nREBOOT_MAX=1\n`, hosts: {} });
    cleanups.push(fleet.cleanup);
    const slotFile = (name: string) => path.join(server.chrootDir, n(name), 'reboot-slot');
    beat(server.chrootDir, n('a'), true, ['reboot-waiting: slot']);
    beat(server.chrootDir, n('b'), true, ['reboot-waiting: slot']);

    const first = bento(['reboots'], { env: { BENTO_DIR: fleet.root } });
    expect(first.stderr).toBe('reboots: 1 of 1 slot held, 1 machine waiting\n');
    expect(first.status).toBe(0);
    const [granted, other] = existsSync(slotFile('a')) ? ['a', 'b'] : ['b', 'a'];
    expect(first.stdout).toMatch(new RegExp(`^  ${n(granted)}: slot granted \\(until .*\\)\\n$`));
    expect(existsSync(slotFile(other))).toBe(false);
    const slot = readFileSync(slotFile(granted), 'utf8');
    const token = /^token: ([0-9a-f]{32})$/m.exec(slot)?.[1] as string;
    expect(slot).toMatch(new RegExp(`^bento reboot slot of ${n(granted)}\\ntoken: [0-9a-f]{32}\\nexpires: \\d{4}-.*Z\\n$`));

    // Nothing reported yet: nothing changes.
    expect(bento(['reboots'], { env: { BENTO_DIR: fleet.root } }).stdout).toBe('');
    expect(readFileSync(slotFile(granted), 'utf8')).toBe(slot);
    const status = JSON.parse(bento(['status', '--json', '--no-cache'], { env: { BENTO_DIR: fleet.root } }).stdout) as { name: string; rebootSlot: string | null; needsReboot: boolean }[];
    expect(status.map((system) => [system.name, system.rebootSlot, system.needsReboot]).sort()).toEqual([[n(granted), 'holds', true], [n(other), 'waits', true]].sort());

    // Rebooted with it, and reported back: the slot goes to the other.
    beat(server.chrootDir, n(granted), false, [`rebooted-with: ${token}`]);
    const next = bento(['reboots'], { env: { BENTO_DIR: fleet.root } });
    expect(next.stdout).toMatch(new RegExp(`^  ${n(granted)}: slot released \\(it rebooted and reported back\\)\\n  ${n(other)}: slot granted`));
    expect(existsSync(slotFile(granted))).toBe(false);
    expect(existsSync(slotFile(other))).toBe(true);

    // REBOOT_MAX unset: every slot is withdrawn.
    writeFileSync(path.join(fleet.root, 'config.sh'), `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\n`);
    const off = bento(['reboots'], { env: { BENTO_DIR: fleet.root } });
    expect(off.stdout).toBe(`  ${n(other)}: slot released (REBOOT_MAX is not set)\n`);
    expect(existsSync(slotFile(other))).toBe(false);
    rmSync(path.join(server.chrootDir, 'reboots.json'));
  });

  it('a CHROOT_DIR or a system directory it cannot write (read-only, full): a message naming the file, not an internal error', async () => {
    const server = createTestServer();
    cleanups.push(() => server.cleanup());
    const name = `${server.prefix}a`;
    server.addUsers([name]);
    await addSystem(server.chrootDir, name);
    const fleet = makeFleet({ config: `CHROOT_DIR=${server.chrootDir}\nREMOTE_IP=127.0.0.1\nREBOOT_MAX=1\n`, hosts: {} });
    cleanups.push(fleet.cleanup);
    beat(server.chrootDir, name, true, ['reboot-waiting: slot']);
    // Immutable: not even root may add a file there (what a read-only mount does to every file).
    const immutable = (dir: string) => {
      expect(spawnSync('chattr', ['+i', dir]).status).toBe(0);
      cleanups.push(() => spawnSync('chattr', ['-i', dir]));
    };
    immutable(server.chrootDir);
    const record = bento(['reboots'], { env: { BENTO_DIR: fleet.root } });
    expect(record.stderr).not.toContain('internal error');
    expect(record.stderr).toContain(`bento: error: cannot write ${path.join(server.chrootDir, 'reboots.json')}: EPERM`);
    expect(record.status).toBe(1);
    spawnSync('chattr', ['-i', server.chrootDir]);

    immutable(path.join(server.chrootDir, name));
    const slot = bento(['reboots'], { env: { BENTO_DIR: fleet.root } });
    expect(slot.stderr).not.toContain('internal error');
    expect(slot.stderr).toContain(`bento: error: cannot write ${path.join(server.chrootDir, name, 'reboot-slot')}: EPERM`);
    expect(slot.stderr).toContain('until the slot expires');
    expect(slot.status).toBe(1);
  });
});
