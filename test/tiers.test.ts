/**
 * The test tiers (test/tiers.ts): every vitest file is in exactly one, so a
 * new file fails here until it is placed; the rules, on planted mistakes.
 */
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { tierProblems, treeTierProblems } from './helpers/tier-problems.js';
import { TIERS } from './tiers.js';

describe('the test tiers', () => {
  it('place every test file of the tree in exactly one tier, by the rules', () => {
    expect(treeTierProblems(PACKAGE_ROOT, TIERS)).toEqual([]);
  });

  // Built from pieces, so that this file does not itself match the rules it plants.
  const sources: Record<string, string> = {
    'test/a.test.ts': "import { it } from 'vitest';\n",
    'test/b.test.ts': 'it.' + "skipIf(!isRoot)('needs root', () => {});\n",
    'test/c.test.ts': "import { bento } from '../" + "helpers/cli.js';\n",
  };
  const files = Object.keys(sources);
  const read = (file: string): string => sources[file] ?? '';

  it('accept files placed by the rules', () => {
    expect(tierProblems(files, { pure: ['test/a.test.ts'], shell: [], process: ['test/c.test.ts'], root: ['test/b.test.ts'] }, read)).toEqual([]);
  });

  it.each([
    ['a file in no tier', { pure: [], process: ['test/c.test.ts'], root: ['test/b.test.ts'] }, 'test/a.test.ts: in no tier'],
    ['a file in two tiers', { pure: ['test/a.test.ts'], process: ['test/a.test.ts', 'test/c.test.ts'], root: ['test/b.test.ts'] }, 'test/a.test.ts: in more than one tier (pure, process)'],
    ['a listed file that does not exist', { pure: ['test/a.test.ts', 'test/gone.test.ts'], process: ['test/c.test.ts'], root: ['test/b.test.ts'] }, 'test/gone.test.ts: listed in test/tiers.ts'],
    ['a file that skips itself outside the root tier', { pure: ['test/a.test.ts'], process: ['test/b.test.ts', 'test/c.test.ts'] }, 'test/b.test.ts: skips itself'],
    ['a pure file running the built CLI', { pure: ['test/a.test.ts', 'test/c.test.ts'], root: ['test/b.test.ts'] }, 'test/c.test.ts: uses helpers/cli'],
    ['a shell file running the built CLI', { pure: ['test/a.test.ts'], shell: ['test/c.test.ts'], root: ['test/b.test.ts'] }, 'test/c.test.ts: uses helpers/cli'],
  ])('report %s, naming it', (_what, tiers, expected) => {
    const problems = tierProblems(files, tiers, read);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });
});
