import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { assignWaves, globToRegExp } from '../../src/fleet/waves.js';
import { makeFleet } from '../helpers/fleet.js';
import { loadFleet } from '../../src/fleet/fleet.js';
import { UserErrors } from '../../src/errors.js';

describe('globToRegExp', () => {
  it('matches whole names with *, ? and [...] classes, and nothing else specially', () => {
    const cases: [string, string, boolean][] = [
      ['web-*', 'web-1', true],
      ['web-*', 'web-', true],
      ['web-*', 'xweb-1', false],
      ['web-?', 'web-12', false],
      ['web-[0-9]*', 'web-12', true],
      ['web-[0-9]*', 'web-a', false],
      ['web-[!0-9]', 'web-a', true],
      ['web-[!0-9]', 'web-1', false],
      ['db_1', 'db_1', true],
      ['db_1', 'db_10', false],
      ['*', 'anything', true],
      ['[', '[', true],
    ];
    for (const [glob, name, matches] of cases) expect(globToRegExp(glob).test(name), `${glob} ~ ${name}`).toBe(matches);
  });
});

describe('assignWaves', () => {
  it('puts each system in the first wave that matches it', () => {
    const waves = assignWaves(['t470', 'router', 'web-1', 'web-2', 'db'], [['t470', 'router'], ['web-*'], ['*']]);
    expect(Object.fromEntries(waves)).toEqual({ t470: 0, router: 0, 'web-1': 1, 'web-2': 1, db: 2 });
    // First match wins, even when a later wave names it.
    expect(assignWaves(['canary'], [['*'], ['canary']]).get('canary')).toBe(0);
  });

  it('names every system that no wave matches', () => {
    expect(() => assignWaves(['a', 'b', 'web-1'], [['web-*']])).toThrow('ROLLOUT_WAVES puts the systems a, b in no wave: add them to a wave, or end ROLLOUT_WAVES with a wave "*" for the rest');
  });

  it('is checked when the fleet is loaded, naming config.sh', async () => {
    const fleet = makeFleet({ config: 'CHROOT_DIR=/srv/x\nREMOTE_IP=a.example\nROLLOUT_WAVES="canary"\n', hosts: { canary: { nonFlake: true }, other: { nonFlake: true } } });
    try {
      const error = await loadFleet(fleet.root).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UserErrors);
      expect((error as UserErrors).problems).toEqual(['config.sh: ROLLOUT_WAVES puts the system other in no wave: add them to a wave, or end ROLLOUT_WAVES with a wave "*" for the rest']);
      writeConfig(fleet.root, 'CHROOT_DIR=/srv/x\nREMOTE_IP=a.example\nROLLOUT_WAVES="canary *"\n');
      const loaded = await loadFleet(fleet.root);
      expect(loaded.systems.map((system) => [system.name, system.wave])).toEqual([['canary', 0], ['other', 1]]);
    } finally {
      fleet.cleanup();
    }
  });
});

function writeConfig(root: string, text: string): void {
  writeFileSync(path.join(root, 'config.sh'), text);
}
