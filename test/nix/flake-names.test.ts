import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { namesFlakeText } from '../../src/nix/flake-names.js';

describe('namesFlakeText', () => {
  it('makes each flake an input and lists their system names in order; Nix parses it', () => {
    const text = namesFlakeText(['/tmp/bento-snapshot-1-a/laptop', '/tmp/bento-snapshot-1-a/servers']);
    expect(text).toContain('  inputs.flake0.url = "path:/tmp/bento-snapshot-1-a/laptop";\n  inputs.flake1.url = "path:/tmp/bento-snapshot-1-a/servers";\n');
    expect(text).toContain('names = map (flake: builtins.attrNames flake.nixosConfigurations) [ inputs.flake0 inputs.flake1 ];');
    const parsed = spawnSync('nix-instantiate', ['--parse', '-E', text], { encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    expect(parsed.status).toBe(0);
  });
});
