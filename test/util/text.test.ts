/** bento's one order for what it sorts (src/util/text.ts): code units, whatever the locale. */
import { describe, expect, it } from 'vitest';
import { byText, compareText, truncate } from '../../src/util/text.js';

describe('compareText', () => {
  it('sorts by UTF-16 code units, not by a locale: capitals first, accents after z', () => {
    expect(['b', 'é', 'B', 'a', 'A', '_', '-', 'z'].sort(compareText)).toEqual(['-', 'A', 'B', '_', 'a', 'b', 'z', 'é']);
  });

  it('is 0 for equal strings only, and a prefix comes first', () => {
    expect(compareText('web', 'web')).toBe(0);
    expect(compareText('web', 'web-1')).toBeLessThan(0);
    expect(compareText('web-1', 'web')).toBeGreaterThan(0);
  });
});

describe('byText', () => {
  it('sorts objects by one text field, keeping equal ones in their order', () => {
    const files = [{ path: 'b', n: 1 }, { path: 'a', n: 2 }, { path: 'b', n: 3 }];
    expect(files.sort(byText((file) => file.path)).map((file) => file.n)).toEqual([2, 1, 3]);
  });
});

describe('truncate', () => {
  it('keeps short text and cuts long text with an ellipsis', () => {
    expect(truncate('laptop')).toBe('laptop');
    expect(truncate('x'.repeat(120))).toBe('x'.repeat(120));
    expect(truncate('x'.repeat(121))).toBe(`${'x'.repeat(120)}…`);
    expect(truncate('abcdef', 3)).toBe('abc…');
  });
});
