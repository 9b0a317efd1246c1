import { describe, expect, it } from 'vitest';
import { nixosRebuildCommand } from '../../src/nix/rebuild.js';

const base = { configDir: '/tmp/stage', name: 'nas', isRoot: true } as const;

describe('nixosRebuildCommand', () => {
  it('applies a flake system or a configuration.nix', () => {
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake' })).toEqual(['nixos-rebuild', ['switch', '--flake', '/tmp/stage#nas']]);
    expect(nixosRebuildCommand({ ...base, action: 'test', kind: 'non-flake' })).toEqual([
      'nixos-rebuild',
      ['test', '--no-flake', '-I', 'nixos-config=/tmp/stage/configuration.nix'],
    ]);
  });

  it('goes through sudo only for a local apply by a user who is not root', () => {
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake', isRoot: false })).toEqual(['sudo', ['nixos-rebuild', 'switch', '--flake', '/tmp/stage#nas']]);
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake', isRoot: false, targetHost: 'nas.lan' })[0]).toBe('nixos-rebuild');
  });

  it('pushes to root@host unless a user is given', () => {
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake', targetHost: 'nas.lan' })[1].slice(-2)).toEqual(['--target-host', 'root@nas.lan']);
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake', targetHost: 'admin@nas.lan' })[1].slice(-2)).toEqual(['--target-host', 'admin@nas.lan']);
  });
});
