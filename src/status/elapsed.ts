/**
 * Elapsed times for the status table: at most two units among d, h, m, s,
 * the largest non-zero one and the next one down (`3d 4h`, `2h 3m`, `5m 53s`,
 * `11s`, `0s`). Two adjacent units are precise enough to read at a glance;
 * `2h 0m 5s` is shown as `2h`.
 */

const UNITS: readonly (readonly [suffix: string, seconds: number])[] = [
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
];

/**
 * Formats a duration in seconds (fractions dropped; negative, from clock
 * skew, is 0s). Plain arithmetic, no arrays: a 10,000-row table calls it
 * 20,000 times in a run too short for the optimizing compiler.
 */
export function formatElapsed(seconds: number): string {
  const rest = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  for (let unit = 0; unit < UNITS.length; unit++) {
    const [suffix, size] = UNITS[unit] as readonly [string, number];
    if (rest < size) continue;
    const count = Math.floor(rest / size);
    const next = UNITS[unit + 1];
    const nextCount = next ? Math.floor((rest - count * size) / next[1]) : 0;
    return next && nextCount > 0 ? `${count}${suffix} ${nextCount}${next[0]}` : `${count}${suffix}`;
  }
  return '0s';
}

/** Whole seconds from `thenMs` to `nowMs`; a time in the future (a clock set back) counts as 0. */
export function secondsBetween(thenMs: number, nowMs: number): number {
  return Math.max(0, Math.floor((nowMs - thenMs) / 1000));
}
