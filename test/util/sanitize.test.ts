import { describe, expect, it } from 'vitest';
import { isSafeText, sanitize } from '../../src/util/sanitize.js';

describe('sanitize', () => {
  it.each([
    ['plain text 💚', 'plain text 💚'],
    ['a\nb\tc\r', 'a\\x0ab\\x09c\\x0d'],
    ['\x1b[2J\x1b]0;title\x07', '\\x1b[2J\\x1b]0;title\\x07'],
    ['\u009b31m', '\\x9b31m'],
    ['\x7f\x00', '\\x7f\\x00'],
    ['abc\u202edef\u2066', 'abc\\u{202e}def\\u{2066}'],
    ['zero\u200bwidth\ufeff', 'zero\\u{200b}width\\u{feff}'],
  ])('%j → %j', (raw, shown) => {
    expect(sanitize(raw)).toBe(shown);
    expect(isSafeText(raw)).toBe(raw === shown);
    expect(isSafeText(sanitize(raw))).toBe(true);
  });
});
