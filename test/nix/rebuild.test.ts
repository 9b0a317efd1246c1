import { describe, expect, it } from 'vitest';
import { nixosRebuildCommand } from '../../src/nix/rebuild.js';

const base = { configDir: '/tmp/stage', name: 'nas', isRoot: true } as const;

describe('nixosRebuildCommand', () => {
  it('applies a flake system or a configuration.nix', () => {
    expect(nixosRebuildCommand({ ...base, action: 'switch', kind: 'flake' })).toEqual(['nixos-rebuild', ['switch', '--flake', '/tmp/stage#nas']]);
    // A configuration.nix in restricted mode, as deploy evaluates it (restricted-eval.ts).
    const evaluation = { searchPath: [{ prefix: 'nixpkgs', path: '/nix/store/aaaa-nixos/nixos' }], features: [] };
    const [file, args] = nixosRebuildCommand({ ...base, action: 'test', kind: 'non-flake' }, evaluation);
    expect(file).toBe('nixos-rebuild');
    expect(args.slice(0, 2)).toEqual(['test', '--no-flake']);
    expect(args.join(' ')).toContain('--option restrict-eval true');
    expect(args.join(' ')).toContain('-I nixos-config=/tmp/stage/configuration.nix -I nixpkgs=/nix/store/aaaa-nixos/nixos -I bento-host=/tmp/stage');
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
