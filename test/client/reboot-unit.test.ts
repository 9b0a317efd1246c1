/**
 * The bento-reboot unit's script (nix/modules/client.nix) run
 * exactly as its unit runs it, with the client it runs (`update.sh reboot`:
 * the example's generated update.sh and bento-client.sh in a /var/bento of
 * the test's, with a REBOOT_WINDOW): the script NixOS evaluates from the client
 * module (utils/bento.nix with the generated bento-units.nix), after
 * `set -e` in a bash script (makeJobScript in nixos/lib/systemd-lib.nix),
 * under `env -i` with only the unit's environment (eval.nix's
 * `environments."bento-reboot"`: the PATH of systemd's default packages).
 * Its packages are this machine's tools, but systemd: a stand-in systemctl
 * that records what it is asked and fails `kexec` when told to, as a
 * machine without a loaded kexec kernel does. Root tier: /run and the
 * system profile are the machine's, so each run has a mount namespace with
 * its own /run (booted-system) and /nix/var/nix/profiles.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { evalNixos, linkPackages } from '../helpers/nixos.js';
import { isRoot } from '../helpers/shell.js';
import { tempDir } from '../helpers/sourced.js';

const cleanups: (() => void)[] = [];
afterAll(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

let dir = '';
let script = '';
let environment: Record<string, string> = {};
let varBento = '';
let updateSh = '';

beforeAll(() => {
  if (!isRoot) return;
  dir = tempDir('bento-reboot-unit-', cleanups);
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'utils'));
  copyFileSync(path.join(PACKAGE_ROOT, 'utils', 'bento.nix'), path.join(dir, 'utils', 'bento.nix'));
  copyFileSync(path.join(PACKAGE_ROOT, 'generated', 'client', 'bento-units.nix'), path.join(dir, 'bento-units.nix'));
  copyFileSync(path.join(PACKAGE_ROOT, 'generated', 'client', 'bento-module.nix'), path.join(dir, 'bento-module.nix'));
  writeFileSync(path.join(dir, 'machine.nix'), '{ services.bento.reboot.enable = true; }\n');
  const modules = [path.join(dir, 'utils', 'bento.nix'), path.join(dir, 'machine.nix')];
  const pkgs = path.join(dir, 'pkgs');
  script = evalNixos<string>(modules, 'config.systemd.services."bento-reboot".script', pkgs);
  environment = evalNixos<Record<string, string>>(modules, 'environments."bento-reboot"', pkgs);
  linkPackages(pkgs, ['coreutils', 'findutils', 'gnugrep', 'gnused', 'util-linux', 'openssh']);
  // The machine's /var/bento: update.sh (its settings, here a window that
  // is open on no day this test could run at but one of its own: the
  // numbers are replaced per run) and the library it loads.
  varBento = path.join(dir, 'var-bento');
  mkdirSync(varBento, { mode: 0o700 });
  copyFileSync(path.join(PACKAGE_ROOT, 'generated', 'client', 'bento-client.sh'), path.join(varBento, 'bento-client.sh'));
  updateSh = readFileSync(path.join(PACKAGE_ROOT, 'generated', 'systems', 'nas', 'update.sh'), 'utf8');
  // systemctl: records its arguments; `kexec` fails (exit 1) while the file kexec-fails exists.
  mkdirSync(path.join(pkgs, 'systemd', 'bin'), { recursive: true });
  const calls = path.join(dir, 'systemctl-calls');
  const fails = path.join(dir, 'kexec-fails');
  writeFileSync(
    path.join(pkgs, 'systemd', 'bin', 'systemctl'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\n[ "$1" = kexec ] && [ -e '${fails}' ] && { echo 'Failed to start kexec.target: no kexec kernel loaded' >&2; exit 1; }\nexit 0\n`,
    { mode: 0o755 },
  );
});

/** A system directory with kernel, initrd and kernel-modules links to files named after `parts`. */
function system(name: string, parts: { kernel: string; initrd: string; modules: string }): string {
  const root = path.join(dir, 'systems', name);
  mkdirSync(root, { recursive: true });
  for (const [link, target] of [['kernel', parts.kernel], ['initrd', parts.initrd], ['kernel-modules', parts.modules]] as const) {
    const file = path.join(dir, 'store', target);
    mkdirSync(path.dirname(file), { recursive: true });
    if (!existsSync(file)) writeFileSync(file, target);
    symlinkSync(file, path.join(root, link));
  }
  return root;
}

/**
 * Runs the unit's script with `booted` as /run/booted-system and `profile`
 * as the system profile's generation: its output, status and systemctl's calls.
 */
function runUnit(booted: string, profile: string, options: { kexecFails?: boolean; window?: 'open' | 'closed' } = {}) {
  // A window of every day, open from now until a minute ago (open), or from
  // a minute from now until two minutes from now (closed).
  const now = new Date();
  const minute = now.getHours() * 60 + now.getMinutes();
  const at = (offset: number) => (minute + offset + 1440) % 1440;
  const [from, to] = options.window === 'closed' ? [at(2), at(3)] : [at(-1), at(-2)];
  const settings = options.window === undefined ? '' : `BENTO_REBOOT_WINDOW='* test'\nBENTO_REBOOT_DAYS=1234567\nBENTO_REBOOT_FROM=${from}\nBENTO_REBOOT_TO=${to}\n`;
  writeFileSync(path.join(varBento, 'update.sh'), updateSh.replace(/\nload_library\n/, `\n${settings}load_library\n`), { mode: 0o755 });
  const calls = path.join(dir, 'systemctl-calls');
  rmSync(calls, { force: true });
  rmSync(path.join(dir, 'kexec-fails'), { force: true });
  if (options.kexecFails) writeFileSync(path.join(dir, 'kexec-fails'), '');
  const profiles = path.join(dir, `profiles-${Math.random().toString(36).slice(2)}`);
  mkdirSync(profiles);
  symlinkSync(profile, path.join(profiles, 'system-2-link'));
  symlinkSync('system-2-link', path.join(profiles, 'system'));
  // makeJobScript's script: the runtime shell, set -e, the text.
  const file = path.join(dir, 'unit-script-bento-reboot-start');
  writeFileSync(file, `#!/bin/bash\nset -e\n\n${script}\n`, { mode: 0o755 });
  const assignments = Object.entries(environment).map(([name, value]) => `${name}=${value}`);
  const shell = ['mount -t tmpfs tmpfs /run || exit 1', 'ln -s "$0" /run/booted-system || exit 1', 'mount --bind "$1" /nix/var/nix/profiles || exit 1', 'mount -t tmpfs tmpfs /var && mkdir /var/bento && mount --bind "$2" /var/bento || exit 1', 'shift 2', 'exec "$@"'].join('; ');
  const run = spawnSync('unshare', ['-m', 'sh', '-c', shell, booted, profiles, varBento, '/usr/bin/env', '-i', ...assignments, file], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    cwd: '/',
    timeout: 30_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, calls: existsSync(calls) ? readFileSync(calls, 'utf8') : '' };
}

describe.skipIf(!isRoot)('the bento-reboot unit', () => {
  it('runs with only the unit\'s PATH: systemd\'s default packages, no /usr/bin', () => {
    expect(Object.keys(environment)).toContain('PATH');
    expect(environment.PATH?.split(':').every((entry) => entry.startsWith(path.join(dir, 'pkgs')))).toBe(true);
  });

  it('does nothing when the kernel, initrd and modules are the booted ones', () => {
    const booted = system('same-booted', { kernel: 'k1', initrd: 'i1', modules: 'm1' });
    const next = system('same-next', { kernel: 'k1', initrd: 'i1', modules: 'm1' });
    const run = runUnit(booted, next);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('bento: kernel, initrd and modules are unchanged: no reboot needed\n');
    expect(run.status).toBe(0);
    expect(run.calls).toBe('');
  });

  it('reboots by kexec when the kernel changed, and says which part did', () => {
    const booted = system('kernel-booted', { kernel: 'k1', initrd: 'i1', modules: 'm1' });
    const next = system('kernel-next', { kernel: 'k2', initrd: 'i1', modules: 'm1' });
    const run = runUnit(booted, next);
    expect(run.stdout).toBe('bento: the kernel changed: rebooting\n');
    expect(run.status).toBe(0);
    expect(run.calls).toBe('kexec\n');
  });

  it('falls back to a plain reboot when kexec fails, for a changed initrd or modules too', () => {
    const booted = system('initrd-booted', { kernel: 'k1', initrd: 'i1', modules: 'm1' });
    const run = runUnit(booted, system('initrd-next', { kernel: 'k1', initrd: 'i2', modules: 'm1' }), { kexecFails: true });
    expect(run.stdout).toBe('bento: the initrd changed: rebooting\n');
    expect(run.stderr).toContain('no kexec kernel loaded');
    expect(run.status).toBe(0);
    expect(run.calls).toBe('kexec\nreboot\n');
    const modules = runUnit(booted, system('modules-next', { kernel: 'k1', initrd: 'i1', modules: 'm2' }));
    expect(modules.stdout).toBe('bento: the kernel-modules changed: rebooting\n');
    expect(modules.calls).toBe('kexec\n');
  });

  it('waits outside the reboot window, and reboots inside it (the client\'s check: REBOOT_WINDOW)', () => {
    const booted = system('window-booted', { kernel: 'k1', initrd: 'i1', modules: 'm1' });
    const next = system('window-next', { kernel: 'k2', initrd: 'i1', modules: 'm1' });
    const closed = runUnit(booted, next, { window: 'closed' });
    expect(closed.stdout).toBe('bento: the kernel changed: waiting for the reboot window (* test)\n');
    expect(closed.status).toBe(0);
    expect(closed.calls).toBe('');
    const open = runUnit(booted, next, { window: 'open' });
    expect(open.stdout).toBe('bento: the kernel changed: rebooting\n');
    expect(open.calls).toBe('kexec\n');
  });
});
