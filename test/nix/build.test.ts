/** The parsers of nix/build.ts on output recorded from Nix 2.8 (nix build --json). */
import { describe, expect, it } from 'vitest';
import { parseNixBuildJson, toplevelAttribute } from '../../src/nix/build.js';

/** `nix build --json --no-link` of two toplevels, as Nix 2.8 printed it here. */
const RECORDED =
  '[{"drvPath":"/nix/store/kvpzzi506bjgw7vxq9xy2rwp6i2193sh-nixos-system-a-24.05.drv","outputs":{"out":"/nix/store/h2xfyiy9znimv9c5vw0bj51qcpjxfmw3-nixos-system-a-24.05"}},' +
  '{"drvPath":"/nix/store/f5mv91yqvz4v2bihv391i5rlks8nyw25-nixos-system-b-24.05.drv","outputs":{"out":"/nix/store/cvirx7m0dp50krd6i5rkcrzflifjhk90-nixos-system-b-24.05"}}]\n';

describe('parseNixBuildJson', () => {
  it('gives the out path of each installable, in order', () => {
    expect(parseNixBuildJson(RECORDED)).toEqual([
      '/nix/store/h2xfyiy9znimv9c5vw0bj51qcpjxfmw3-nixos-system-a-24.05',
      '/nix/store/cvirx7m0dp50krd6i5rkcrzflifjhk90-nixos-system-b-24.05',
    ]);
    expect(parseNixBuildJson('[]')).toEqual([]);
  });

  it('refuses what is not a list of results with an out path', () => {
    expect(() => parseNixBuildJson('{"outputs":{}}')).toThrow('did not print a list');
    expect(() => parseNixBuildJson('[{"drvPath":"/nix/store/x.drv","outputs":{"dev":"/nix/store/y"}}]')).toThrow('an entry has no outputs.out');
    expect(() => parseNixBuildJson('[null]')).toThrow('an entry has no outputs.out');
    expect(() => parseNixBuildJson('building…')).toThrow(SyntaxError);
  });
});

describe('toplevelAttribute', () => {
  it('is the path nixos-rebuild builds', () => {
    expect(toplevelAttribute('nas')).toBe('nixosConfigurations.nas.config.system.build.toplevel');
  });
});
