/**
 * Small text helpers shared by every stage.
 *
 * One order for everything bento sorts (systems, files, manifest lines,
 * states.txt): plain UTF-16 code-unit order, the same on every machine
 * whatever the locale, so generated and published files are deterministic.
 */

/** Compares two strings by code units; use as `array.sort(compareText)`. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A comparator for objects by one of their text fields: `sort(byText((file) => file.path))`. */
export function byText<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => compareText(key(a), key(b));
}

/** Shortens text quoted in a message (a hostile name may be very long). */
export function truncate(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
