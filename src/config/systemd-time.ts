/**
 * systemd time, as far as bento needs it: the seconds of a time span
 * (systemd.time(7)), whether a calendar expression is one systemd takes
 * (config.sh's calendars are checked when it is read, not when a machine's
 * timer refuses them), and the interval of the calendars that repeat
 * evenly, which sets the default spread of a fleet's polls
 * (UPDATE_RANDOM_DELAY). One table of units serves the spans and
 * ROLLOUT_WAIT (values.ts).
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

/** The spread used when UPDATE_RANDOM_DELAY is unset and the interval of UPDATE_CALENDAR cannot be told (config.ts warns). */
export const FALLBACK_SPREAD = '1min';

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

/** systemd's names for calendars (calendarspec.c), matched without regard to case. */
const CALENDAR_NAMES = new Set([
  'minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'anually',
  'quarterly', 'semiannually', 'semi-annually', 'biannually', 'bi-annually',
]);

const WEEKDAY_NAMES = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Years systemd's calendars can name. */
const YEARS = { from: 1970, to: 2199 };

/**
 * Why `expression` is not a calendar event systemd takes (systemd.time(7):
 * `[weekdays] [[year-]month-day] [hour:minute[:second]] [time zone]`, each
 * field `*`, a value, a list `a,b`, a range `a..b` and a repetition `/n`;
 * `~` for days from the end of the month; `@seconds`; the names `hourly`,
 * `daily`, `weekly`, …), with the ranges systemd enforces; undefined when
 * it is one. Spaces around it are ignored, as in a unit file. A time zone
 * is `UTC` or one Node's time zone database knows (systemd looks it up in
 * the machine's tzdata: where systemd-analyze exists, config.ts asks it too).
 */
export function calendarProblem(expression: string): string | undefined {
  let text = expression.trim();
  if (text === '') return 'it is empty';
  if (/[^\x21-\x7e ]/.test(text)) return 'it holds a character other than letters, digits, punctuation and spaces';
  const lastSpace = text.lastIndexOf(' ');
  if (lastSpace > 0) {
    const zone = text.slice(lastSpace + 1);
    if (zone.toUpperCase() === 'UTC' || isTimeZone(zone)) text = text.slice(0, lastSpace).trimEnd();
  }
  if (CALENDAR_NAMES.has(text.toLowerCase())) return undefined;
  const firstWord = /^[A-Za-z-]+/.exec(text)?.[0] ?? '';
  if (CALENDAR_NAMES.has(firstWord.toLowerCase())) return `a name such as ${firstWord} stands alone (a time zone may follow it)`;
  const cursor = { text, at: 0 };
  return parseWeekdays(cursor) ?? parseDate(cursor) ?? parseTime(cursor);
}

interface Cursor {
  text: string;
  at: number;
}

const rest = (cursor: Cursor) => cursor.text.slice(cursor.at);
const skipSpaces = (cursor: Cursor) => {
  while (cursor.text[cursor.at] === ' ') cursor.at++;
};

function isTimeZone(word: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(word)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: word });
    return true;
  } catch {
    return false;
  }
}

/** `Mon,Wed..Fri `: days, lists and ranges (`-` too, as older systemd wrote them). */
function parseWeekdays(cursor: Cursor): string | undefined {
  if (!/^[A-Za-z]/.test(rest(cursor))) return undefined;
  let rangeFrom: { day: number; word: string } | undefined;
  for (let first = true; ; first = false) {
    const word = /^[A-Za-z]+/.exec(rest(cursor))?.[0] ?? '';
    const day = WEEKDAY_NAMES.findIndex((name) => word.toLowerCase() === name || word.toLowerCase() === name.slice(0, 3));
    if (day < 0) {
      if (first) return `${JSON.stringify(word)} is neither a weekday nor a name such as hourly or daily`;
      return `${JSON.stringify(word)} is not a weekday`;
    }
    if (rangeFrom !== undefined && rangeFrom.day > day) return `the range ${rangeFrom.word}..${word} goes backwards (weekdays run from Monday to Sunday)`;
    cursor.at += word.length;
    const next = cursor.text[cursor.at];
    if (next === undefined) return undefined;
    if (next === ' ') {
      skipSpaces(cursor);
      return undefined;
    }
    if (next === '.' && cursor.text[cursor.at + 1] === '.') {
      if (rangeFrom !== undefined) return 'a range of weekdays has two ends, not three';
      rangeFrom = { day, word };
      cursor.at += 2;
    } else if (next === '-') {
      if (rangeFrom !== undefined) return 'a range of weekdays has two ends, not three';
      rangeFrom = { day, word };
      cursor.at += 1;
    } else if (next === ',') {
      rangeFrom = undefined;
      cursor.at += 1;
    } else {
      return `${JSON.stringify(word + next)}… is not a weekday`;
    }
    // A trailing comma is allowed, an open range is not.
    const after = cursor.text[cursor.at];
    if (after === undefined || after === ' ') {
      if (rangeFrom !== undefined) return 'a range of weekdays has no end';
      skipSpaces(cursor);
      return undefined;
    }
  }
}

/** One component of a field: `5`, `1..5`, `0/15`, `1..20/2`; seconds may have decimals. */
interface Component {
  start: number;
  stop?: number;
  repeat?: number;
}

/** A field: `*`, or components separated by commas; null for `*`. */
function parseField(cursor: Cursor, seconds: boolean): Component[] | null | string {
  if (cursor.text[cursor.at] === '*') {
    cursor.at++;
    if (cursor.text[cursor.at] === '/') return 'a repetition starts from a number, not *: every 15 minutes is *:0/15';
    return null;
  }
  const number = seconds ? /^[0-9]+(?:\.(?!\.)[0-9]*)?/ : /^[0-9]+/;
  const take = (): number | undefined => {
    const match = number.exec(rest(cursor));
    if (!match) return undefined;
    cursor.at += match[0].length;
    return Number(match[0]);
  };
  const components: Component[] = [];
  for (;;) {
    const start = take();
    if (start === undefined) return `expected a number or * at ${JSON.stringify(rest(cursor) || '(the end)')}`;
    const component: Component = { start };
    if (rest(cursor).startsWith('..')) {
      cursor.at += 2;
      const stop = take();
      if (stop === undefined) return `a range needs an end at ${JSON.stringify(rest(cursor) || '(the end)')}`;
      component.stop = stop;
    }
    if (cursor.text[cursor.at] === '/') {
      cursor.at++;
      const repeat = take();
      if (repeat === undefined) return `a repetition (/n) needs a number at ${JSON.stringify(rest(cursor) || '(the end)')}`;
      if (repeat === 0) return 'a repetition of 0 never repeats';
      component.repeat = repeat;
    }
    const next = cursor.text[cursor.at];
    if (next !== undefined && !' ,-~:'.includes(next)) return `${JSON.stringify(rest(cursor))} does not belong in a calendar (a time is written hh:mm, e.g. 04:00)`;
    components.push(component);
    if (next !== ',') return components;
    cursor.at++;
  }
}

/**
 * Whether every component of `field` fits [from, to], as systemd's
 * calendar_spec_valid sees it. `unit` scales the values to whole numbers
 * (seconds count in microseconds); from and to are in those units.
 */
function fieldProblem(field: Component[] | null, name: string, from: number, to: number, options: { endOfMonth?: boolean; unit?: number } = {}): string | undefined {
  if (!field) return undefined;
  const unit = options.unit ?? 1;
  const top = options.endOfMonth ? to - 3 : to;
  const shownRange = `${from / unit}..${options.endOfMonth ? top : Math.floor(top / unit)}`;
  for (const component of field) {
    const start = Math.round(component.start * unit);
    const stop = component.stop === undefined ? undefined : Math.round(component.stop * unit);
    // A range without a repetition steps by one unit of the field (one second for seconds).
    let repeat = component.repeat !== undefined ? Math.round(component.repeat * unit) : stop !== undefined ? unit : 0;
    let end = stop;
    if (unit > 1 && component.repeat === undefined && stop !== undefined && start + unit > stop) return `${name} ${component.start}..${component.stop} is a range shorter than one ${name}`;
    // systemd shortens a range to a whole number of repetitions, and makes one that cannot repeat a single value.
    if (end !== undefined && end > start && repeat > 0) end -= (end - start) % repeat;
    if (end !== undefined && ((end > start && repeat > 0 && start + repeat > end) || start === end)) {
      end = undefined;
      repeat = 0;
    }
    const shown = `${component.start}${component.stop !== undefined ? `..${component.stop}` : ''}${component.repeat !== undefined ? `/${component.repeat}` : ''}`;
    if (start < from || start > top || (end !== undefined && (end < from || end > top))) return `${name} ${shown} is outside ${shownRange}`;
    if (repeat > top - from) return `${name} ${shown} repeats less often than once per ${shownRange}`;
    if (end !== undefined) {
      if (start + repeat > end) return `${name} ${shown} is a range that goes backwards`;
    } else if (options.endOfMonth ? start - repeat < from : start + repeat > top) {
      return `${name} ${shown} repeats past the end of its range`;
    }
  }
  return undefined;
}

/** `[year-]month-day` (or `~` for days from the end of the month), or `@seconds`. */
function parseDate(cursor: Cursor): string | undefined {
  if (cursor.at === cursor.text.length) return undefined;
  if (cursor.text[cursor.at] === '@') {
    const match = /^@([0-9]+)$/.exec(rest(cursor));
    if (!match) return '@ takes seconds since 1970 and nothing after them';
    const year = new Date(Number(match[1]) * 1000).getUTCFullYear();
    if (!(year >= YEARS.from && year <= YEARS.to)) return `@${match[1]} is after ${YEARS.to}`;
    cursor.at = cursor.text.length;
    return undefined;
  }
  const begin = cursor.at;
  const fields: (Component[] | null)[] = [];
  let endOfMonth = false;
  for (;;) {
    const field = parseField(cursor, false);
    if (typeof field === 'string') return field;
    fields.push(field);
    const next = cursor.text[cursor.at];
    if (fields.length === 1 && (next === undefined || next === ':')) {
      // No date: this was the hour.
      cursor.at = begin;
      return undefined;
    }
    if (fields.length > 1 && (next === undefined || next === ' ')) break;
    if (fields.length === 3) return `${JSON.stringify(rest(cursor))}: a date has at most three parts (year-month-day)`;
    if (next === '~') {
      if (endOfMonth) return 'a date has one ~ at most';
      endOfMonth = true;
    } else if (next !== '-') {
      return `${JSON.stringify(rest(cursor))}: the parts of a date are separated by - (or ~)`;
    } else if (endOfMonth) {
      return 'the ~ of a date comes before its day, last';
    }
    cursor.at++;
  }
  skipSpaces(cursor);
  const [year, month, day] = fields.length === 3 ? fields : [null, ...fields];
  const years = year?.map((component) => ({ ...component, start: fullYear(component.start), stop: component.stop === undefined ? undefined : fullYear(component.stop) })) ?? null;
  return (
    fieldProblem(years, 'year', YEARS.from, YEARS.to) ??
    fieldProblem(month ?? null, 'month', 1, 12) ??
    fieldProblem(day ?? null, 'day', 1, 31, { endOfMonth })
  );
}

/** Two-digit years, as systemd reads them: 00–69 are 2000–2069, 70–99 1970–1999. */
function fullYear(year: number): number {
  if (year < 70) return year + 2000;
  if (year < 100) return year + 1900;
  return year;
}

/** `hour:minute[:second]`, or nothing (midnight). */
function parseTime(cursor: Cursor): string | undefined {
  if (cursor.at === cursor.text.length) return undefined;
  const hour = parseField(cursor, false);
  if (typeof hour === 'string') return hour;
  if (cursor.text[cursor.at] !== ':') return `${JSON.stringify(rest(cursor) || cursor.text)}: a time is written hh:mm or hh:mm:ss (e.g. 04:00)`;
  cursor.at++;
  const minute = parseField(cursor, false);
  if (typeof minute === 'string') return minute;
  let second: Component[] | null = [{ start: 0 }];
  if (cursor.text[cursor.at] === ':') {
    cursor.at++;
    const parsed = parseField(cursor, true);
    if (typeof parsed === 'string') return parsed;
    second = parsed;
  }
  const after = rest(cursor);
  if (/^ +[^ ]+$/.test(after)) return `${JSON.stringify(after.trim())} is not a time zone (UTC, or a name of the time zone database such as Europe/Berlin)`;
  if (after !== '') return `${JSON.stringify(after)} after the time`;
  return fieldProblem(hour, 'hour', 0, 23) ?? fieldProblem(minute, 'minute', 0, 59) ?? secondsProblem(second);
}

/** Seconds may have six decimals: systemd counts them in microseconds, up to 59.999999. */
function secondsProblem(field: Component[] | null): string | undefined {
  return fieldProblem(field, 'second', 0, 60e6 - 1, { unit: 1e6 });
}
