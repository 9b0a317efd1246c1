/** What the unprivileged evaluator gets: its environment, and files read back from where it may write. */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonEnvironment, daemonSettings, evaluatorEnvironment, readEvaluatorFile, refusesLogin, userConfigFiles } from '../../src/nix/unprivileged.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('evaluatorEnvironment', () => {
  it("keeps PATH, Nix's settings and the proxies, none of root's other variables; its own home, temporary files and bento's daemon", () => {
    const env = evaluatorEnvironment({ home: '/tmp/bento-eval-1-x/home' }, '/tmp/bento-eval-1-x/daemon-y/socket', { EXTRA: 'yes' }, {
      PATH: '/usr/bin:/bin',
      NIX_CONFIG: 'substituters =',
      https_proxy: 'http://proxy:3128',
      HOME: '/root',
      AWS_SECRET_ACCESS_KEY: 'secret',
      SSH_AUTH_SOCK: '/run/ssh-agent',
      NIX_REMOTE: 'daemon',
      NIX_PATH: 'nixpkgs=/root/nixpkgs',
    });
    expect(env).toEqual({
      PATH: '/usr/bin:/bin',
      NIX_CONFIG: 'substituters =',
      https_proxy: 'http://proxy:3128',
      EXTRA: 'yes',
      HOME: '/tmp/bento-eval-1-x/home',
      XDG_CACHE_HOME: '/tmp/bento-eval-1-x/home/.cache',
      XDG_CONFIG_HOME: '/tmp/bento-eval-1-x/home/.config',
      XDG_DATA_HOME: '/tmp/bento-eval-1-x/home/.local/share',
      TMPDIR: '/tmp/bento-eval-1-x/home',
      NIX_REMOTE: 'unix:///tmp/bento-eval-1-x/daemon-y/socket',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'safe.directory',
      GIT_CONFIG_VALUE_0: '*',
    });
  });
});

describe("bento's daemon", () => {
  it('has no netrc, trusts root alone, serves root and the evaluator only; builders when given', () => {
    expect(daemonSettings(undefined)).toEqual(['--option', 'netrc-file', '/dev/null', '--option', 'trusted-users', 'root', '--option', 'allowed-users', 'root bento-eval']);
    // On a server without bento-eval (set up by an older bento), the user who evaluates instead.
    expect(daemonSettings(undefined, 'nobody').slice(-2)).toEqual(['allowed-users', 'root nobody']);
    expect(daemonSettings('ssh://builder x86_64-linux').slice(-3)).toEqual(['--option', 'builders', 'ssh://builder x86_64-linux']);
  });

  it("keeps where Nix is, proxies and ssh; none of root's other variables, not NIX_CONFIG: that comes as a file, before root's own user files", () => {
    const env = daemonEnvironment('/tmp/bento-eval-1-x/daemon-y/socket', '/tmp/bento-eval-1-x/daemon-y/nix-config.conf', {
      PATH: '/usr/bin:/bin',
      NIX_CONFIG: 'access-tokens = github.com=secret',
      https_proxy: 'http://proxy:3128',
      NIX_SSHOPTS: '-p2222',
      HOME: '/root',
      AWS_SECRET_ACCESS_KEY: 'secret',
      GITHUB_TOKEN: 'secret',
      NIX_PATH: 'nixpkgs=/root/nixpkgs',
    });
    expect(env).toEqual({
      PATH: '/usr/bin:/bin',
      https_proxy: 'http://proxy:3128',
      NIX_SSHOPTS: '-p2222',
      NIX_DAEMON_SOCKET_PATH: '/tmp/bento-eval-1-x/daemon-y/socket',
      NIX_USER_CONF_FILES: '/tmp/bento-eval-1-x/daemon-y/nix-config.conf:/root/.config/nix/nix.conf:/etc/xdg/nix/nix.conf',
    });
    expect(daemonEnvironment('/s', undefined, { HOME: '/root' }).NIX_USER_CONF_FILES).toBe('/root/.config/nix/nix.conf:/etc/xdg/nix/nix.conf');
  });

  it("finds the user's configuration files as Nix 2.8 does", () => {
    expect(userConfigFiles({ HOME: '/root' })).toEqual(['/root/.config/nix/nix.conf', '/etc/xdg/nix/nix.conf']);
    expect(userConfigFiles({ XDG_CONFIG_HOME: '/c', XDG_CONFIG_DIRS: '/a:/b' })).toEqual(['/c/nix/nix.conf', '/a/nix/nix.conf', '/b/nix/nix.conf']);
    expect(userConfigFiles({ NIX_USER_CONF_FILES: '/x.conf:/y.conf', HOME: '/root' })).toEqual(['/x.conf', '/y.conf']);
    expect(userConfigFiles({}, '/home/admin')).toEqual(['/home/admin/.config/nix/nix.conf', '/etc/xdg/nix/nix.conf']);
  });
});

describe('readEvaluatorFile', () => {
  it('reads a regular file, and never through a link, a directory or beyond its limit', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-evaluator-file-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'flake.lock'), '{}\n');
    expect(readEvaluatorFile(path.join(dir, 'flake.lock'))).toBe('{}\n');
    expect(readEvaluatorFile(path.join(dir, 'missing'))).toBeUndefined();
    symlinkSync('/etc/passwd', path.join(dir, 'link'));
    expect(() => readEvaluatorFile(path.join(dir, 'link'))).toThrow('is a symbolic link');
    mkdirSync(path.join(dir, 'sub'));
    expect(() => readEvaluatorFile(path.join(dir, 'sub'))).toThrow('is not a regular file');
    expect(() => readEvaluatorFile(path.join(dir, 'flake.lock'), 2)).toThrow('is larger than 2 bytes');
  });
});

describe('refusesLogin', () => {
  it("is true of the shells setup-debian.sh, systemd-sysusers and NixOS give a system user, false of any other (an empty one is /bin/sh)", () => {
    for (const shell of ['/usr/sbin/nologin', '/sbin/nologin', '/run/current-system/sw/bin/nologin', '/nix/store/0000000000000000000000000000000a-shadow-4.11.1/bin/nologin', '/bin/false', '/usr/bin/false']) expect(refusesLogin(shell), shell).toBe(true);
    for (const shell of ['', '/bin/sh', '/bin/bash', '/run/current-system/sw/bin/bash', '/bin/sync', '/usr/bin/nologin-not', 'nologin']) expect(refusesLogin(shell), shell).toBe(false);
  });
});
