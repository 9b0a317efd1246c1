/** bento build: real Nix builds of test fleets; what test|switch runs to apply a system is a recording stand-in. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bento, CLI } from '../helpers/cli.js';
import { flakeText, makeFleet, type TestFleet } from '../helpers/fleet.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { APPLY_STUBS_DIR } from '../helpers/shell.js';
import { parseBuildAction } from '../../src/commands/build.js';
import { skippedHostDirMessage } from '../../src/fleet/fleet.js';

const NIX_ENV = { NIX_PATH: `nixpkgs=${path.join(PACKAGE_ROOT, 'example', 'offline-nixpkgs')}` };
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

function fleet(hosts: Parameters<typeof makeFleet>[0]['hosts']): TestFleet {
  const made = makeFleet({ hosts });
  cleanups.push(made.cleanup);
  return made;
}

function recorder(): { dir: string; calls: () => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-record-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, calls: () => (existsSync(path.join(dir, 'calls')) ? readFileSync(path.join(dir, 'calls'), 'utf8') : '') };
}

describe('bento build', () => {
  it('builds every system, one line each, flakes batched', () => {
    const { root } = fleet({ pair: { flake: ['alpha', 'beta'] }, router: { nonFlake: true } });
    const run = bento(['build'], { env: { BENTO_DIR: root, ...NIX_ENV } });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('building 3 systems');
    for (const name of ['alpha', 'beta']) expect(run.stdout).toMatch(new RegExp(`ok {6}${name} +[0-9.]+s {2}[a-z0-9]{8}…-nixos-system-${name}-24\\.05`));
    expect(run.stdout).toMatch(/ok {6}router +[0-9.]+s {2}[a-z0-9]{8}…-nixos-system-router-24\.05/);
    expect(run.stderr).toContain('build: 3 ok, 0 failed');
  });

  it('skips hosts/common (no machine) with one line, and builds the others', () => {
    const { root } = fleet({ common: { files: { 'base.nix': '{ }\n' } }, router: { nonFlake: true } });
    const run = bento(['build'], { env: { BENTO_DIR: root, ...NIX_ENV } });
    expect(run.stderr).toContain(`${skippedHostDirMessage('common')}\n`);
    expect(run.stderr).toContain('build: 1 ok, 0 failed');
    expect(run.status).toBe(0);
  });

  it('works under umask 077: the snapshot of hosts/ gets its modes explicitly, not from the umask', () => {
    const { root } = fleet({ nested: { flake: ['deep'], files: { 'modules/sub/a.nix': '{ }\n', 'scripts/run.sh': '#!/bin/sh\n' } } });
    const run = spawnSync('sh', ['-c', 'umask 077 && exec "$@"', 'sh', process.execPath, CLI, 'build'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', BENTO_DIR: root, ...NIX_ENV } });
    expect(run.stderr).not.toContain('not everyone may read');
    expect(run.stderr).toContain('build: 1 ok, 0 failed');
    expect(run.status).toBe(0);
  });

  it('dry-build (or dry-run) evaluates without building; NAME and --name select', () => {
    const { root } = fleet({ pair: { flake: ['alpha', 'beta'], files: { 'alpha.nix': `# ${Date.now()} ${Math.random()}\n` } } });
    const run = bento(['build', 'dry-run', '--name', 'alpha'], { env: { BENTO_DIR: root } });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('evaluating 1 system');
    const storeName = /[a-z0-9]{8}…-nixos-system-alpha-24\.05/.exec(run.stdout);
    expect(storeName).not.toBeNull();
    expect(run.stdout).not.toContain('beta');
    const byEnv = bento(['build', 'dry-build'], { env: { BENTO_DIR: root, NAME: 'beta' } });
    expect(byEnv.stdout).toContain('evaluating 1 system');
    expect(byEnv.stdout).toMatch(/ok {6}beta/);
  });

  it('a failing build shows Nix output and exits 1; the others still build', () => {
    const { root } = fleet({ pair: { flakeText: flakeText(['good', 'bad']).replace('echo bad > $out/name', 'echo broken-on-purpose >&2; exit 3') } });
    const run = bento(['build'], { env: { BENTO_DIR: root } });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/ok {6}good/);
    expect(run.stdout).toMatch(/FAILED {2}bad /);
    expect(run.stdout).toContain('broken-on-purpose');
    expect(run.stderr).toContain('build: 1 ok, 1 failed');
    expect(run.stderr).toContain('bento: error: failed: bad');
  });

  it("passes --max-jobs and --builders to Nix", () => {
    const { root } = fleet({ solo: { flake: ['solo'], files: { 'solo.nix': `# ${Date.now()} ${Math.random()}\n` } } });
    // No local jobs and no remote builders: Nix itself must refuse, which shows the flags reached it.
    const run = bento(['build', '--max-jobs', '0', '--builders', ''], { env: { BENTO_DIR: root } });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/FAILED {2}solo /);
    expect(run.stdout).toContain("unable to start any build; either increase '--max-jobs' or enable remote builds");
  });

  it('refuses actions it does not support, with what to do instead', () => {
    const { root } = fleet({ r: { nonFlake: true } });
    for (const [action, message] of [
      ['edit', 'bento build edit is not supported: edit the files under hosts/ instead'],
      ['build-vm', 'bento build build-vm is not supported'],
      ['build-vm-with-bootloader', 'bento build build-vm-with-bootloader is not supported'],
      ['boot', 'unknown build action "boot": use dry-build (or dry-run), build, test or switch'],
    ]) {
      const run = bento(['build', action as string], { env: { BENTO_DIR: root } });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(message);
    }
    expect(parseBuildAction(undefined)).toBe('build');
  });

  it('test and switch build exactly one system after a typed yes, then apply that store path as nixos-rebuild would', () => {
    const { root } = fleet({ pair: { flake: ['alpha', 'beta'] }, router: { nonFlake: true } });
    const record = recorder();
    const env = { BENTO_DIR: root, PATH: `${APPLY_STUBS_DIR}:${process.env.PATH}`, FAKE_SERVER: record.dir, ...NIX_ENV };
    const built = bento(['build'], { env: { BENTO_DIR: root, ...NIX_ENV } });
    const storePath = (name: string) => {
      const line = built.stdout.split('\n').find((text) => text.includes(` ${name} `)) ?? '';
      const short = /([a-z0-9]{8})…(-nixos-system-[^ ]+)$/.exec(line.trim());
      const entry = readdirSync('/nix/store').find((candidate) => short !== null && candidate.startsWith(short[1] as string) && candidate.endsWith(short[2] as string));
      if (entry === undefined) throw new Error(`no store path for ${name} in: ${built.stdout}`);
      return `/nix/store/${entry}`;
    };

    const all = bento(['build', 'switch'], { env });
    expect(all.status).toBe(1);
    expect(all.stderr).toContain('bento build switch applies exactly one system: name it with NAME=<name> or --name <name>');

    const declined = bento(['build', 'switch', '--name', 'alpha'], { env, input: 'no\n' });
    expect(declined.status).toBe(1);
    expect(declined.stderr).toContain('switch alpha on this machine: type yes to continue:');
    expect(declined.stderr).toContain('cancelled: nothing was applied');
    expect(record.calls()).toBe('');

    const confirmed = bento(['build', 'switch'], { env: { ...env, NAME: 'alpha' }, input: 'yes\n' });
    expect(confirmed.status, confirmed.stdout + confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toContain(`switch alpha on this machine: ${storePath('alpha')}`);
    const unit = '-E\nLOCALE_ARCHIVE\n-E\nNIXOS_INSTALL_BOOTLOADER=\n--collect\n--no-ask-password\n--pipe\n--quiet\n--same-dir\n--service-type=exec\n--unit=nixos-rebuild-switch-to-configuration\n--wait\n';
    expect(record.calls()).toBe(
      `== nix-env\n-p\n/nix/var/nix/profiles/system\n--set\n${storePath('alpha')}\n== systemd-run\n${unit}true\n== systemd-run\n${unit}${storePath('alpha')}/bin/switch-to-configuration\nswitch\n`,
    );
    rmSync(path.join(record.dir, 'calls'));

    // test: the profile is left alone; a configuration.nix is applied the same way.
    const nonFlake = bento(['build', 'test', '--yes', '--name', 'router'], { env });
    expect(nonFlake.status, nonFlake.stdout + nonFlake.stderr).toBe(0);
    expect(record.calls()).toBe(`== systemd-run\n${unit}true\n== systemd-run\n${unit}${storePath('router')}/bin/switch-to-configuration\ntest\n`);

    const failing = bento(['build', 'switch', '--yes', '--name', 'beta'], { env: { ...env, SWITCH_EXIT: '4' } });
    expect(failing.status).toBe(1);
    expect(failing.stdout).toMatch(/FAILED {2}beta .*switch-to-configuration switch exited with 4/);
  });

  it('a TMPDIR that is missing or cannot be written is an error that names it, not an internal error', () => {
    const { root } = fleet({ pair: { flake: ['alpha'] } });
    const missing = path.join(os.tmpdir(), `bento-no-such-tmpdir-${process.pid}`);
    const run = bento(['build'], { env: { BENTO_DIR: root, TMPDIR: missing, ...NIX_ENV } });
    expect(run.stderr).toMatch(new RegExp(`^bento: error: the temporary directory ${missing} cannot hold bento's working directories: ENOENT: no such file or directory, mkdtemp '${missing}/bento-snapshot-[0-9]+-XXXXXX'\n  set TMPDIR to a directory bento may write, or unset it \\(then /tmp\\)\n$`, 'm'));
    expect(run.status).toBe(1);
  });

  it('test and switch with standard input at its end (</dev/null, <&-, cron) apply nothing, say so and exit 1, instead of exiting 13 unasked', () => {
    const { root } = fleet({ pair: { flake: ['alpha'] } });
    const record = recorder();
    const env = { BENTO_DIR: root, PATH: `${APPLY_STUBS_DIR}:${process.env.PATH}`, FAKE_SERVER: record.dir, ...NIX_ENV };
    for (const stdin of ['</dev/null', '<&-']) {
      const run = spawnSync('sh', ['-c', `exec "$@" ${stdin}`, 'sh', process.execPath, CLI, 'build', 'switch', '--name', 'alpha'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
      expect(run.stderr, stdin).toContain('switch alpha on this machine: type yes to continue:');
      expect(run.stderr, stdin).toContain('bento: error: cancelled: nothing was applied\n  no answer was read (standard input ended, or the line was empty): type yes, or pass --yes to apply without asking\n');
      expect(run.status, stdin).toBe(1);
    }
    expect(record.calls()).toBe('');
  });
});
