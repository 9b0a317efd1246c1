/**
 * systemd time, as far as bento needs it: the seconds of a time span
 * (systemd.time(7)) and the interval of the calendars that repeat evenly,
 * which sets the default spread of a fleet's polls (UPDATE_RANDOM_DELAY).
 * One table of units serves both and ROLLOUT_WAIT (values.ts).
 */

/** Seconds per unit of a systemd time span (systemd.time(7)); '' is seconds. */
export const TIME_UNITS: Readonly<Record<string, number>> = {
  us: 1e-6, usec: 1e-6, ms: 1e-3, msec: 1e-3,
  '': 1, s: 1, sec: 1, second: 1, seconds: 1,
  m: 60, min: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
  M: 2629800, month: 2629800, months: 2629800,
  y: 31557600, year: 31557600, years: 31557600,
};

/** Seconds of a systemd time span (systemd.time(7)); undefined when a unit is unknown. */
export function timeSpanSeconds(span: string): number | undefined {
  let total = 0;
  const parts = span.trim().matchAll(/([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)/g);
  for (const [, value, unit] of parts) {
    const factor = TIME_UNITS[unit ?? ''];
    if (factor === undefined) return undefined;
    total += Number(value) * factor;
  }
  return total;
}

/** The spread used when UPDATE_RANDOM_DELAY is unset, for polls every `calendar`. */
const FALLBACK_SPREAD = '1min';

/**
 * The random delay that spreads a fleet's polls over the whole interval of
 * `calendar`: the interval itself when bento can tell it (`*:0/15`,
 * `hourly`, …), else one minute. With systemd's FixedRandomDelay each
 * machine then keeps its own offset in that interval (the client module sets
 * it). A longer delay would not spread more: the next run is computed from
 * the last one, so the machine would skip calendar events.
 */
export function pollSpreadOf(calendar: string): string {
  return calendarInterval(calendar)?.span ?? FALLBACK_SPREAD;
}

const NAMED_CALENDARS: Record<string, string> = { minutely: '1min', hourly: '1h', daily: '1d', weekly: '1w' };

/**
 * The interval of a calendar that repeats evenly, for the forms bento
 * recognises: `minutely`, `hourly`, `daily`, `weekly`, `*:M/N` and
 * `*-*-* *:M/N[:SS]` (every N minutes, N dividing 60), `*:MM` (hourly).
 * Anything else: undefined.
 */
export function calendarInterval(calendar: string): { span: string; seconds: number } | undefined {
  const text = calendar.trim();
  const named = NAMED_CALENDARS[text.toLowerCase()];
  if (named) return interval(named);
  const time = text.replace(/^\*-\*-\*\s+/, '');
  const everyN = /^\*:[0-9]{1,2}\/([0-9]{1,2})(?::[0-9]{1,2})?$/.exec(time);
  if (everyN) {
    const minutes = Number(everyN[1]);
    if (minutes >= 1 && minutes <= 60 && 60 % minutes === 0) return interval(minutes === 60 ? '1h' : `${minutes}min`);
    return undefined;
  }
  if (/^\*:[0-9]{1,2}(?::[0-9]{1,2})?$/.test(time)) return interval('1h');
  return undefined;
}

function interval(span: string): { span: string; seconds: number } {
  return { span, seconds: timeSpanSeconds(span) as number };
}

/** Polls a machine may miss before status calls it silent (SILENT_AFTER's default). */
const MISSED_POLLS = 3;
/** SILENT_AFTER's default when the interval of UPDATE_CALENDAR cannot be told. */
const FALLBACK_SILENT_AFTER_SECONDS = 86_400;

/**
 * SILENT_AFTER's default, in seconds: three intervals of `calendar` plus
 * the random delay `randomDelay` (a machine's poll may come that much
 * after its calendar event), so a machine that missed three polls in a row
 * is silent and a late one is not; one day when the interval cannot be told.
 */
export function silentAfterOf(calendar: string, randomDelay: string): number {
  const interval = calendarInterval(calendar);
  if (!interval) return FALLBACK_SILENT_AFTER_SECONDS;
  return MISSED_POLLS * interval.seconds + Math.ceil(timeSpanSeconds(randomDelay) ?? interval.seconds);
}
