import { describe, expect, it } from 'vitest';
import { formatElapsed, secondsBetween } from '../../src/status/elapsed.js';

describe('formatElapsed', () => {
  it.each([
    [0, '0s'],
    [0.9, '0s'],
    [11, '11s'],
    [60, '1m'],
    [353, '5m 53s'],
    [168, '2m 48s'],
    [3600, '1h'],
    [2 * 3600 + 3 * 60 + 59, '2h 3m'],
    [2 * 3600 + 5, '2h'],
    [86_400, '1d'],
    [3 * 86_400 + 4 * 3600 + 59 * 60, '3d 4h'],
    [3 * 86_400 + 30 * 60, '3d'],
    [400 * 86_400 + 1, '400d'],
    [-5, '0s'],
    [Number.NaN, '0s'],
  ])('%s seconds → %s', (seconds, text) => {
    expect(formatElapsed(seconds)).toBe(text);
  });
});

describe('secondsBetween', () => {
  it('counts whole seconds and never goes negative', () => {
    expect(secondsBetween(1_000, 62_999)).toBe(61);
    expect(secondsBetween(5_000, 1_000)).toBe(0);
  });
});
