/** Naming rules (src/protocol/names.ts): system names become Unix user names on the server. */
import { describe, expect, it } from 'vitest';
import { hostDirNameProblem, systemNameProblem } from '../../src/protocol/names.js';

describe('names', () => {
  it.each(['router', 'a', '_x', 'my-laptop', 'n0_-', 'a'.repeat(32)])('accepts %s', (name) => {
    expect(systemNameProblem(name)).toBeUndefined();
  });
  it.each(['', 'Router', '1abc', '-a', 'a.b', 'a b', 'a'.repeat(33), 'é', 'root', 'sshd'])('refuses %j', (name) => {
    expect(systemNameProblem(name)).toBeDefined();
  });
  it("refuses the name of the user who evaluates fleet code: its SFTP account would be the evaluator's", () => {
    expect(systemNameProblem('bento-eval')).toBe('"bento-eval" is reserved for a system account on the server; pick another name');
  });
  it('host directory names', () => {
    expect(hostDirNameProblem('all-flakes-systems')).toBeUndefined();
    expect(hostDirNameProblem('v1.2')).toBeUndefined();
    for (const bad of ['a b', '$(x)', 'a\nb', '-x', "it's"]) expect(hostDirNameProblem(bad)).toBeDefined();
  });
});
