import { describe, expect, it } from 'vitest';
import { activationCommand, onTarget, preparationSteps, sshDestination, systemdRunProbe } from '../../src/nix/rebuild.js';

const SYSTEM = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-nas-24.05';
const base = { systemPath: SYSTEM, isRoot: true } as const;

describe('applying a built system as nixos-rebuild does', () => {
  it('switch: the profile gets the system, then switch-to-configuration runs in nixos-rebuild\'s transient unit; test leaves the profile alone', () => {
    expect(preparationSteps({ ...base, action: 'switch' })).toEqual([{ name: 'nix-env --set', command: ['nix-env', ['-p', '/nix/var/nix/profiles/system', '--set', SYSTEM]] }]);
    expect(preparationSteps({ ...base, action: 'test' })).toEqual([]);
    const [file, args] = activationCommand({ ...base, action: 'test' }, true);
    expect(file).toBe('systemd-run');
    expect(args).toContain('--unit=nixos-rebuild-switch-to-configuration');
    expect(args).toContain('--wait');
    expect(args.slice(-2)).toEqual([`${SYSTEM}/bin/switch-to-configuration`, 'test']);
    expect(systemdRunProbe({ ...base, action: 'test' })[1].slice(-1)).toEqual(['true']);
  });

  it('without a working systemd-run, runs switch-to-configuration directly with a clean environment', () => {
    const [file, args] = activationCommand({ ...base, action: 'switch' }, false);
    expect(file).toBe('env');
    expect(args[0]).toBe('-i');
    expect(args).toContain('NIXOS_INSTALL_BOOTLOADER=');
    expect(args.slice(-2)).toEqual([`${SYSTEM}/bin/switch-to-configuration`, 'switch']);
  });

  it('goes through sudo only for a local apply by a user who is not root', () => {
    expect(onTarget(['nix-env', '--set', SYSTEM], { isRoot: false })).toEqual(['sudo', ['nix-env', '--set', SYSTEM]]);
    expect(onTarget(['nix-env', '--set', SYSTEM], { isRoot: true })).toEqual(['nix-env', ['--set', SYSTEM]]);
    expect(onTarget(['true'], { isRoot: false, targetHost: 'nas.lan' })[0]).toBe('ssh');
  });

  it('pushes to root@host unless a user is given: the closure copied first, every remote word quoted for the remote shell', () => {
    const steps = preparationSteps({ ...base, action: 'switch', targetHost: 'nas.lan', sshOptions: ' -p 2222  -i /root/key ' });
    expect(steps.map((step) => step.command)).toEqual([
      ['nix-copy-closure', ['--to', 'root@nas.lan', SYSTEM]],
      ['ssh', ['-p', '2222', '-i', '/root/key', 'root@nas.lan', 'nix-env', '-p', '/nix/var/nix/profiles/system', '--set', SYSTEM]],
    ]);
    expect(onTarget(['env', 'LOCALE_ARCHIVE=a b'], { isRoot: true, targetHost: 'admin@nas.lan' })).toEqual(['ssh', ['admin@nas.lan', 'env', "'LOCALE_ARCHIVE=a b'"]]);
  });

  it('refuses a target that ssh would read as an option, or that holds spaces', () => {
    expect(sshDestination('nas.lan')).toBe('root@nas.lan');
    for (const bad of ['-oProxyCommand=sh@x', '', 'nas lan', 'nas\nlan']) expect(() => sshDestination(bad)).toThrow('is not a [user@]host');
  });
});
