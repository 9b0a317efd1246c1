/**
 * templates/client/lib/server-values.sh on its own (shell tier: sourced, no
 * root): every number the client reads from the server goes through
 * plain_number before the shell computes with it, and every text through
 * shown before a message prints it.
 */
import { describe, expect, it } from 'vitest';
import { runSourced } from '../../helpers/sourced.js';

/** plain_number's verdict on each value, with at most `digits` digits. */
function plainNumbers(values: string[], digits: number): boolean[] {
  const script = values.map((value) => `if plain_number '${value}' ${digits}; then echo yes; else echo no; fi`).join('\n');
  const run = runSourced(['server-values'], script);
  expect(run.stderr).toBe('');
  return run.stdout.trim().split('\n').map((line) => line === 'yes');
}

describe('plain_number', () => {
  it('takes digits without a leading zero, up to the given count', () => {
    expect(plainNumbers(['0', '7', '120', '999999999'], 9)).toEqual([true, true, true, true]);
  });

  it('refuses what the shell would misread or overflow on: a leading zero (octal), a sign, blanks, hex, too many digits, nothing', () => {
    expect(plainNumbers(['08', '00', '-1', '+1', ' 1', '1 ', '0x10', '1e3', '1000000000', ''], 9)).toEqual(Array(10).fill(false));
  });

  it('bounds the digits by its second argument (15 for a NAR size)', () => {
    expect(plainNumbers(['999999999999999', '1000000000000000'], 15)).toEqual([true, false]);
  });
});

describe('shown', () => {
  it('keeps printable ASCII and spaces, makes anything else a ?, and cuts at 80 bytes', () => {
    const run = runSourced(['server-values'], `shown "$(printf 'a b\\033[31m\\tc\\n')"; echo; shown "$(printf '%0100d' 0)"`);
    const [first, second] = run.stdout.split('\n');
    expect(first).toBe('a b?[31m?c');
    expect(second).toBe('0'.repeat(80));
  });
});
