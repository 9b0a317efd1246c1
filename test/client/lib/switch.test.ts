/**
 * The parsers of templates/client/lib/switch.sh and disk-space.sh on their
 * own (shell tier: sourced, no root): the generation number read from the
 * system profile's link, the free space read from df, the reboot window
 * (core.sh) and the reboot both reboot paths share.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRebootWindow, rebootWindowOpen } from '../../../src/config/reboot-window.js';
import { runSourced, shellQuote, tempDir } from '../../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

describe('generation_of', () => {
  it('reads N from system-N-link, and nothing from any other name', () => {
    const names = ['system-42-link', '/nix/var/nix/profiles/system-7-link', 'system-link', 'system--link', 'system-4a-link', '/nix/store/abc-nixos-system'];
    const script = names.map((name) => `printf '[%s]\\n' "$(generation_of ${shellQuote(name)})"`).join('\n');
    expect(runSourced(['switch'], script).stdout).toBe('[42]\n[7]\n[]\n[]\n[]\n[]\n');
  });
});

describe('free_kib and disk_full', () => {
  /** free_kib and disk_full with df a stand-in printing `output` (exiting `status`). */
  function space(output: string, status = 0): string {
    const bin = tempDir('bento-df-', cleanups);
    mkdirSync(path.join(bin, 'bin'));
    writeFileSync(path.join(bin, 'bin', 'df'), `#!/bin/sh\nprintf '%s' ${shellQuote(output)}\nexit ${status}\n`, { mode: 0o755 });
    const script = 'BENTO_DIR=/var/bento; printf "[%s] " "$(free_kib)"; if disk_full; then echo full; else echo room; fi';
    return runSourced(['disk-space'], script, { PATH: `${path.join(bin, 'bin')}:/usr/bin:/bin` }).stdout.trim();
  }

  const HEADER = 'Filesystem     1024-blocks    Used Available Capacity Mounted on\n';

  it('reads the available KiB of df -Pk; under 1 MiB is full', () => {
    expect(space(`${HEADER}/dev/sda1 100000 99000 1000 99% /\n`)).toBe('[1000] full');
    expect(space(`${HEADER}/dev/sda1 100000 50000 50000 50% /\n`)).toBe('[50000] room');
  });

  it('says nothing, and not full, when df cannot tell', () => {
    expect(space('', 1)).toBe('[] room');
    expect(space(`${HEADER}/dev/sda1 100000 99000 -12 99% /\n`)).toBe('[] room');
  });
});

describe('reboot_window_open (REBOOT_WINDOW on the machine)', () => {
  /** reboot_window_open with `date` a stand-in answering `+%u %H %M` as the real one does at each of `times`. */
  function openAt(window: string, times: [day: number, hour: number, minute: number][]): boolean[] {
    const w = parseRebootWindow(window);
    const settings = `BENTO_REBOOT_WINDOW=${shellQuote(w.text)}; BENTO_REBOOT_DAYS=${w.days}; BENTO_REBOOT_FROM=${w.from}; BENTO_REBOOT_TO=${w.to}`;
    const script = times
      .map(([day, hour, minute]) => {
        const now = `${day} ${String(hour).padStart(2, '0')} ${String(minute).padStart(2, '0')}`;
        return `date() { [ "$1" = '+%u %H %M' ] || exit 9; echo ${shellQuote(now)}; }; if reboot_window_open; then echo open; else echo closed; fi`;
      })
      .join('\n');
    return runSourced(['core'], `${settings}\n${script}`).stdout.trim().split('\n').map((line) => line === 'open');
  }

  it('agrees with the server\'s rule (rebootWindowOpen) at every quarter hour of a week, across midnight too, with 08 and 09 read as decimal', () => {
    const times: [number, number, number][] = [];
    for (let day = 1; day <= 7; day++) for (let hour = 0; hour < 24; hour++) for (const minute of [0, 8, 29, 59]) times.push([day, hour, minute]);
    for (const window of ['Mon..Fri 02:00-05:00', 'Fri,Sun 22:00-08:09', '* 08:09-09:08', 'Sat 23:59-00:01']) {
      const w = parseRebootWindow(window);
      expect(openAt(window, times), window).toEqual(times.map(([day, hour, minute]) => rebootWindowOpen(w, day, hour * 60 + minute)));
    }
  });

  it('is always open without a window (an update.sh older than REBOOT_WINDOW sets none)', () => {
    expect(runSourced(['core'], 'date() { exit 9; }; reboot_window_open && echo open').stdout).toBe('open\n');
  });
});

describe('reboot_when_due: the reboot of both paths', () => {
  /** A machine whose booted system and profile differ in `changed` (or not), a window open or closed now; what reboot_when_due says and asks systemctl. */
  function rebootWhenDue(options: { changed: boolean; window?: 'open' | 'closed'; kexecFails?: boolean; slot?: string; used?: string }): { stdout: string; stderr: string; calls: string; used: string } {
    const dir = tempDir('bento-reboot-', cleanups);
    const state = path.join(dir, 'state');
    mkdirSync(state);
    if (options.slot !== undefined) writeFileSync(path.join(state, 'reboot-slot'), `bento reboot slot of web-1\ntoken: ${options.slot}\nexpires: 2026-12-07T04:00:00.000Z\n`);
    if (options.used !== undefined) writeFileSync(path.join(state, 'reboot-used'), `${options.used} /nix/store/old\n`);
    const slots = options.slot !== undefined || options.used !== undefined ? 'BENTO_REBOOT_SLOTS=1; ' : '';
    for (const [name, kernel] of [['booted', 'k1'], ['profile', options.changed ? 'k2' : 'k1']] as const) {
      mkdirSync(path.join(dir, name));
      for (const part of ['kernel', 'initrd', 'kernel-modules']) {
        const target = path.join(dir, part === 'kernel' ? kernel : part);
        writeFileSync(target, '');
        symlinkSync(target, path.join(dir, name, part));
      }
    }
    const calls = path.join(dir, 'calls');
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    // systemctl as the real one answers: records the call; kexec fails without a loaded kernel.
    writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${shellQuote(calls)}\n[ "$1" = kexec ] && [ ${options.kexecFails ? 1 : 0} = 1 ] && { echo 'Failed to start kexec.target' >&2; exit 1; }\nexit 0\n`, { mode: 0o755 });
    const window = options.window === undefined ? '' : `BENTO_REBOOT_WINDOW='Mon..Fri 02:00-05:00'; BENTO_REBOOT_DAYS=12345; BENTO_REBOOT_FROM=120; BENTO_REBOOT_TO=300; date() { echo '${options.window === 'open' ? '2 03 00' : '2 05 00'}'; }`;
    const run = runSourced(['core', 'switch'], `STATE_DIR=${shellQuote(state)}; BOOTED_SYSTEM=${shellQuote(path.join(dir, 'booted'))}; PROFILE=${shellQuote(path.join(dir, 'profile'))}; ${slots}${window}\nreboot_when_due`, { PATH: `${bin}:/usr/bin:/bin` });
    const used = path.join(state, 'reboot-used');
    return { stdout: run.stdout, stderr: run.stderr, calls: existsSync(calls) ? readFileSync(calls, 'utf8') : '', used: existsSync(used) ? readFileSync(used, 'utf8') : '' };
  }

  it('reboots by kexec when the kernel changed and no window is set, or the window is open', () => {
    expect(rebootWhenDue({ changed: true })).toMatchObject({ stdout: 'bento: the kernel changed: rebooting\n', calls: 'kexec\n', used: '' });
    expect(rebootWhenDue({ changed: true, window: 'open' })).toMatchObject({ stdout: 'bento: the kernel changed: rebooting\n', calls: 'kexec\n' });
    expect(rebootWhenDue({ changed: true, kexecFails: true }).calls).toBe('kexec\nreboot\n');
  });

  it('waits, asking systemctl nothing, when the window is closed', () => {
    expect(rebootWhenDue({ changed: true, window: 'closed' })).toMatchObject({ stdout: 'bento: the kernel changed: waiting for the reboot window (Mon..Fri 02:00-05:00)\n', calls: '' });
  });

  it('does nothing when kernel, initrd and modules are the booted ones', () => {
    expect(rebootWhenDue({ changed: false, window: 'open' })).toMatchObject({ stdout: 'bento: kernel, initrd and modules are unchanged: no reboot needed\n', calls: '' });
  });

  const TOKEN = '0123456789abcdef0123456789abcdef';

  it('REBOOT_MAX: reboots only with a slot it has not used, and remembers the token with the system booted then', () => {
    const waits = 'bento: the kernel changed: waiting for a reboot slot (REBOOT_MAX; bento reboots hands them out)\n';
    expect(rebootWhenDue({ changed: true, used: 'f'.repeat(32) })).toMatchObject({ stdout: waits, calls: '' });
    expect(rebootWhenDue({ changed: true, slot: TOKEN, used: TOKEN })).toMatchObject({ stdout: waits, calls: '' });
    expect(rebootWhenDue({ changed: true, slot: 'not-a-token' })).toMatchObject({ stdout: waits, calls: '' });
    const rebooted = rebootWhenDue({ changed: true, slot: TOKEN });
    expect(rebooted).toMatchObject({ stdout: 'bento: the kernel changed: rebooting\n', calls: 'kexec\n' });
    expect(rebooted.used).toMatch(new RegExp(`^${TOKEN} /.*/booted\n$`));
    // Outside the window, a slot is not used.
    expect(rebootWhenDue({ changed: true, slot: TOKEN, window: 'closed' })).toMatchObject({ calls: '', used: '' });
  });
});

describe('a boot that boot counting gave up on (failed_boot_generation, report_boot_fallback)', () => {
  /** A machine whose profile is generation 7, booted (and running) `booted`; boot entries named `entries`. */
  function fellBack(entries: string[]) {
    const dir = tempDir('bento-fallback-', cleanups);
    const state = path.join(dir, 'state');
    mkdirSync(path.join(state, 'pending'), { recursive: true });
    writeFileSync(path.join(state, 'state'), `${'ab'.repeat(32)} 2026-12-06T20:00:00.000Z\n`);
    const store = path.join(dir, 'store');
    for (const [name, kernel] of [['0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-old', 'k1'], ['1a8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-new', 'k2']] as const) {
      mkdirSync(path.join(store, name), { recursive: true });
      for (const part of ['kernel', 'initrd', 'kernel-modules']) {
        writeFileSync(path.join(store, `${part}-${kernel}`), '');
        symlinkSync(path.join(store, `${part}-${kernel}`), path.join(store, name, part));
      }
    }
    const profiles = path.join(dir, 'profiles');
    mkdirSync(profiles);
    symlinkSync(path.join(store, '1a8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-new'), path.join(profiles, 'system-7-link'));
    symlinkSync('system-7-link', path.join(profiles, 'system'));
    const run = path.join(dir, 'run');
    mkdirSync(run);
    for (const link of ['booted-system', 'current-system']) symlinkSync(path.join(store, '0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-old'), path.join(run, link));
    const boot = path.join(dir, 'entries');
    mkdirSync(boot);
    for (const entry of entries) writeFileSync(path.join(boot, entry), '');
    const prelude = [
      `STATE_DIR=${shellQuote(state)}`, `LOG=${shellQuote(path.join(state, 'build.log'))}`, `PROFILE=${shellQuote(path.join(profiles, 'system'))}`,
      `BOOTED_SYSTEM=${shellQuote(path.join(run, 'booted-system'))}`, `CURRENT_SYSTEM=${shellQuote(path.join(run, 'current-system'))}`, `BOOT_ENTRIES=${shellQuote(boot)}`,
      'BENTO_MODE=update', 'BENTO_NAME=web-1', 'BENTO_LOG_PROTOCOL=2', 'BENTO_LOG_SIZE_LIMIT=65536', 'systemctl() { echo "systemctl $*"; }',
      // This store is not /nix/store, which current_system insists on.
      'current_system() { readlink -f "$CURRENT_SYSTEM"; }',
    ].join('; ');
    const sh = (script: string) => runSourced(['core', 'logs', 'disk-space', 'switch'], `${prelude}\n${script}`);
    return { state, sh };
  }

  it('names the profile\'s generation only when its entry has no tries left', () => {
    expect(fellBack(['nixos-generation-7+0-3.conf']).sh('failed_boot_generation').stdout).toBe('7\n');
    for (const entries of [['nixos-generation-7+2-1.conf'], ['nixos-generation-7.conf'], ['nixos-generation-17+0-3.conf'], []]) {
      expect(fellBack(entries).sh('failed_boot_generation || echo none').stdout, entries.join()).toBe('none\n');
    }
  });

  it('never reboots into it again, while a changed kernel would otherwise reboot', () => {
    expect(fellBack(['nixos-generation-7+0-3.conf']).sh('reboot_when_due').stdout).toBe('bento: the kernel changed, but generation 7 did not boot healthy (boot counting): no reboot into it\n');
    expect(fellBack(['nixos-generation-7+1-2.conf']).sh('reboot_when_due').stdout).toBe('bento: the kernel changed: rebooting\nsystemctl kexec\n');
  });

  it('queues one rollback log, named after the system that runs, its header naming the applied configuration', () => {
    const machine = fellBack(['nixos-generation-7+0-3.conf']);
    const first = machine.sh('report_boot_fallback');
    expect(first.stderr).toContain('generation 7 did not boot healthy');
    const queued = readdirSync(path.join(machine.state, 'pending'));
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatch(/^\d{8}-\d{4}_0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-old_rollback\.log\.gz$/);
    const text = gunzipSync(readFileSync(path.join(machine.state, 'pending', queued[0] as string))).toString();
    expect(text.split('\n').slice(1, 3)).toEqual(['protocol: 2', `configuration: ${'ab'.repeat(32)} 2026-12-06T20:00:00.000Z`]);
    expect(text).toContain('generation 7 (1a8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-web-1-new) did not boot healthy');
    machine.sh('report_boot_fallback');
    expect(readdirSync(path.join(machine.state, 'pending'))).toHaveLength(1);
  });
});
