/**
 * Tests mirror src/ (CONTRIBUTING.md, Tests): every module has its test file,
 * but for the few allowlisted here, each with the reason; the rule, on
 * planted mistakes.
 */
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { listModules, listTests, mirrorProblems } from './helpers/mirror-problems.js';

/** Modules with no logic worth a test of their own. */
const ALLOWLIST: Record<string, string> = {
  // The executable: one line that runs runCli (test/cli.test.ts runs it in-process) and sets the exit status.
  'main.ts': 'the entry point',
  // Three constants; every test that reads templates/ or utils/ goes through them.
  'paths.ts': 'constants',
  // Text: the environment variables and the config keys after the command list of `bento --help`;
  // test/cli.test.ts checks the help names each variable and key, test/config/schema.test.ts each key's line.
  'commands/shared/root-help.ts': 'help text',
};

describe('tests mirror src/', () => {
  it('give every module of src/ a test file named after it, but the allowlisted', () => {
    expect(mirrorProblems(listModules(PACKAGE_ROOT), listTests(PACKAGE_ROOT), ALLOWLIST)).toEqual([]);
  });

  const modules = ['main.ts', 'a/b.ts', 'a/b-c.ts', 'a/d.ts', 'a/e.ts'];
  const tests = ['test/a/b.test.ts', 'test/a/b-c.test.ts', 'test/a/d-hostile.test.ts'];

  it('accept a mirror, a variant named after the module, and an allowlisted module', () => {
    expect(mirrorProblems(modules, tests, { 'main.ts': 'the entry point', 'a/e.ts': 'constants' })).toEqual([]);
  });

  it.each([
    ['a module with no mirror', modules, tests, { 'main.ts': 'x' }, 'src/a/e.ts: no test/a/e.test.ts'],
    ['a module whose only test is the mirror of another module', [...modules, 'a/d-hostile.ts'], tests, { 'main.ts': 'x', 'a/e.ts': 'x' }, 'src/a/d.ts: no test/a/d.test.ts'],
    ['an allowlisted module that has a mirror', modules, tests, { 'main.ts': 'x', 'a/e.ts': 'x', 'a/b.ts': 'x' }, 'src/a/b.ts: allowlisted in test/mirror.test.ts but mirrored by test/a/b.test.ts'],
    ['an allowlisted module that does not exist', modules, tests, { 'main.ts': 'x', 'a/e.ts': 'x', 'a/gone.ts': 'x' }, 'src/a/gone.ts: allowlisted in test/mirror.test.ts but there is no such module'],
  ])('report %s, naming it', (_what, planted, plantedTests, allowlist, expected) => {
    const problems = mirrorProblems(planted, plantedTests, allowlist);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });
});
