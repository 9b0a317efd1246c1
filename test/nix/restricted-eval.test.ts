/** The restricted evaluation of a configuration.nix: its search path and arguments, from recorded `nix show-config` output. */
import { describe, expect, it } from 'vitest';
import { parseSearchPath, parseShowConfig, resolveSearchPath, restrictedEvalArgs, restrictedFeatures } from '../../src/nix/restricted-eval.js';

/** Lines of `nix --extra-experimental-features 'nix-command flakes' show-config` (Nix 2.8) on a NixOS server. */
const SHOW_CONFIG = `eval-cache = true
experimental-features = flakes nix-command ca-derivations fetch-closure
nix-path = nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos nixos-config=/etc/nixos/configuration.nix /nix/var/nix/profiles/per-user/root/channels
restrict-eval = false
substituters = https://cache.nixos.org/
`;

describe('the search path', () => {
  it('is read from show-config and split as Nix splits it', () => {
    const config = parseShowConfig(SHOW_CONFIG);
    expect(config.get('restrict-eval')).toBe('false');
    expect(config.get('substituters')).toBe('https://cache.nixos.org/');
    expect(parseSearchPath(config.get('nix-path') ?? '')).toEqual([
      { prefix: 'nixpkgs', path: '/nix/var/nix/profiles/per-user/root/channels/nixos' },
      { prefix: 'nixos-config', path: '/etc/nixos/configuration.nix' },
      { prefix: '', path: '/nix/var/nix/profiles/per-user/root/channels' },
    ]);
    expect(parseSearchPath('')).toEqual([]);
    expect(parseSearchPath('a=b=c')).toEqual([{ prefix: 'a', path: 'b=c' }]);
  });

  it('has its links resolved (restricted mode checks the real path), relative entries from the working directory, URLs kept, and the server\'s nixos-config left out', () => {
    const links: Record<string, string> = {
      '/nix/var/nix/profiles/per-user/root/channels/nixos': '/nix/store/aaaa-nixos-24.05/nixos',
      '/nix/var/nix/profiles/per-user/root/channels': '/nix/store/bbbb-user-environment',
      '/srv/fleet/nixpkgs': '/srv/fleet/nixpkgs',
    };
    const realpath = (file: string) => {
      const real = links[file];
      if (real === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
      return real;
    };
    const entries = parseSearchPath(
      'nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos nixos-config=/etc/nixos/configuration.nix /nix/var/nix/profiles/per-user/root/channels ' +
        'local=nixpkgs gone=/nonexistent hm=https://github.com/nix-community/home-manager/archive/master.tar.gz c=channel:nixos-24.05',
    );
    expect(resolveSearchPath(entries, '/srv/fleet', realpath)).toEqual([
      { prefix: 'nixpkgs', path: '/nix/store/aaaa-nixos-24.05/nixos' },
      { prefix: '', path: '/nix/store/bbbb-user-environment' },
      { prefix: 'local', path: '/srv/fleet/nixpkgs' },
      { prefix: 'gone', path: '/nonexistent' },
      { prefix: 'hm', path: 'https://github.com/nix-community/home-manager/archive/master.tar.gz' },
      { prefix: 'c', path: 'channel:nixos-24.05' },
    ]);
  });
});

describe('restrictedFeatures', () => {
  it('keeps the configured features that read nothing of the server, never flakes or fetch-closure', () => {
    expect(restrictedFeatures('flakes nix-command ca-derivations fetch-closure')).toEqual(['nix-command', 'ca-derivations']);
    expect(restrictedFeatures('flakes')).toEqual([]);
    expect(restrictedFeatures('')).toEqual([]);
  });
});

describe('restrictedEvalArgs', () => {
  it('turns restricted mode on and replaces the search path: the configuration first, the host directory last', () => {
    const args = restrictedEvalArgs('/tmp/b/router/configuration.nix', '/tmp/b/router', {
      searchPath: [
        { prefix: 'nixpkgs', path: '/nix/store/aaaa-nixos-24.05/nixos' },
        { prefix: '', path: '/nix/store/bbbb-user-environment' },
      ],
      features: ['nix-command'],
    });
    expect(args).toEqual([
      '--option', 'restrict-eval', 'true',
      '--option', 'allow-unsafe-native-code-during-evaluation', 'false',
      '--option', 'experimental-features', 'nix-command',
      '--option', 'nix-path', '',
      '-I', 'nixos-config=/tmp/b/router/configuration.nix',
      '-I', 'nixpkgs=/nix/store/aaaa-nixos-24.05/nixos',
      '-I', '/nix/store/bbbb-user-environment',
      '-I', 'bento-host=/tmp/b/router',
    ]);
  });
});
