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

/** Formats a duration in seconds (fractions dropped; negative, from clock skew, is 0s). */
export function formatElapsed(seconds: number): string {
  let rest = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  const largest = UNITS.findIndex(([, size]) => rest >= size);
  if (largest === -1) return '0s';
  const parts: string[] = [];
  for (const [suffix, size] of UNITS.slice(largest, largest + 2)) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0) parts.push(`${count}${suffix}`);
  }
  return parts.join(' ');
}

/** Whole seconds from `thenMs` to `nowMs`; a time in the future (a clock set back) counts as 0. */
export function secondsBetween(thenMs: number, nowMs: number): number {
  return Math.max(0, Math.floor((nowMs - thenMs) / 1000));
}
