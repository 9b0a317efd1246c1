import { describe, expect, it } from 'vitest';
import { selectSystems } from '../../src/fleet/select.js';
import type { FleetSystem } from '../../src/fleet/fleet.js';

const systems = ['a', 'b', 'c'].map((name) => ({ name, kind: 'flake', hostDir: `/h/${name}`, hostDirName: name }) as FleetSystem);

describe('selectSystems', () => {
  it('selects everything without names, in fleet order otherwise', () => {
    expect(selectSystems(systems, []).map((s) => s.name)).toEqual(['a', 'b', 'c']);
    expect(selectSystems(systems, ['c', 'a', 'c']).map((s) => s.name)).toEqual(['a', 'c']);
  });
  it('names the unknown systems and lists the known ones', () => {
    expect(() => selectSystems(systems, ['a', 'zz'])).toThrow('unknown system "zz" (known: a, b, c)');
  });
  it('refuses an empty fleet', () => {
    expect(() => selectSystems([], [])).toThrow('the fleet has no systems');
  });
});
