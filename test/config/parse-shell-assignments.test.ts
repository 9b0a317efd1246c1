import { describe, expect, it } from 'vitest';
import { parseShellAssignments } from '../../src/config/parse-shell-assignments.js';

describe('parseShellAssignments', () => {
  it('reads the shell quoting rules', () => {
    const text = [
      `A='single $x "kept"'`,
      `B="double \\"escaped\\" \\$ \\\\ \\n"`,
      'C=un\\ quoted',
      "D=mixed'single'\"double\"",
      'E=',
      'F=a#not-a-comment',
      '  export G=1 # comment',
      'H=value\r',
    ].join('\n');
    expect(parseShellAssignments(text).map(({ key, value }) => [key, value])).toEqual([
      ['A', 'single $x "kept"'],
      ['B', 'double "escaped" $ \\ \\n'],
      ['C', 'un quoted'],
      ['D', 'mixedsingledouble'],
      ['E', ''],
      ['F', 'a#not-a-comment'],
      ['G', '1'],
      ['H', 'value'],
    ]);
  });

  it.each([
    ['KEY = value', "no spaces are allowed before '='"],
    ['KEY=~/x', "'~' expansion is not supported"],
    ['KEY=a&', "'&' is not allowed"],
    ['KEY=(a)', "'(' is not allowed"],
    ['KEY=a >file', "'>' is not allowed"],
    ['KEY="${HOME}"', 'variable or command substitution'],
    ["KEY='open", 'unterminated single quote'],
    ['echo hello', 'not a KEY=VALUE assignment'],
    ['KEY=a\\', 'cannot continue on the next line'],
  ])('refuses %s', (line, reason) => {
    expect(() => parseShellAssignments(line)).toThrow(reason);
  });
});
