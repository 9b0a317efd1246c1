/**
 * REBOOT_WINDOW (config.sh, or a host directory's REBOOT_WINDOW file): when
 * a machine may reboot into a new kernel. Weekdays as systemd writes them
 * (systemd.time(7): `Mon..Fri`, `Sat,Sun`, `Mon,Wed..Fri`, or `*` for
 * every day), a space, and `HH:MM-HH:MM` in the machine's local time. The
 * window opens on each listed day at its start and closes at its end, on
 * the next day when the end is not after the start (`Fri 22:00-02:00`
 * closes Saturday at 02:00). Pure: the machine's client checks the same
 * rule in POSIX sh (reboot_window_open, templates/client/lib/switch.sh)
 * from the numbers this module makes (docs/reboots.md).
 */

/** Weekday names as systemd writes them, Monday first: index + 1 is `date +%u`. */
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const LONG_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

export interface RebootWindow {
  /** The normalised text: `Mon..Fri 02:00-05:00` (what the machine reports and status shows). */
  text: string;
  /** The days it opens, as `date +%u` digits in order (1 Monday … 7 Sunday): `12345`. */
  days: string;
  /** Minutes after midnight it opens and closes (0–1439); closes the next day when `to <= from`. */
  from: number;
  to: number;
}

/** Parses a window, or throws an Error whose message follows the key's name (`must be …`). */
export function parseRebootWindow(raw: string): RebootWindow {
  const text = raw.trim();
  const match = /^(\S+) +(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(text);
  if (!match) throw new Error(`must be weekdays and a time range, e.g. "Mon..Fri 02:00-05:00" or "* 01:00-04:00", got ${JSON.stringify(raw)}`);
  const days = parseDays(match[1] as string);
  const from = minutes(match[2] as string, match[3] as string, raw);
  const to = minutes(match[4] as string, match[5] as string, raw);
  if (from === to) throw new Error(`opens and closes at the same minute (${JSON.stringify(raw)}): to let machines reboot at any time, leave it unset`);
  const digits = days.map((day) => String(day + 1)).join('');
  return { text: `${formatDays(days)} ${clock(from)}-${clock(to)}`, days: digits, from, to };
}

/**
 * Whether the window is open on weekday `day` (1 Monday … 7 Sunday, as
 * `date +%u`) at `minute` after midnight: the rule the client checks.
 */
export function rebootWindowOpen(window: Pick<RebootWindow, 'days' | 'from' | 'to'>, day: number, minute: number): boolean {
  const opensOn = (weekday: number) => window.days.includes(String(weekday));
  if (window.from < window.to) return opensOn(day) && minute >= window.from && minute < window.to;
  // Crosses midnight: open from `from` on a listed day, until `to` the next day.
  return (opensOn(day) && minute >= window.from) || (opensOn(day === 1 ? 7 : day - 1) && minute < window.to);
}

/** `Mon..Fri 02:00-05:00` → `Mon..Fri 02:00`: when it opens, as status shows it. */
export function rebootWindowOpening(text: string): string {
  return text.replace(/-\d{2}:\d{2}$/, '');
}

function minutes(hours: string, mins: string, raw: string): number {
  const h = Number(hours);
  const m = Number(mins);
  if (h > 23 || m > 59) throw new Error(`has ${hours}:${mins}, which is not a time of day (00:00 to 23:59): ${JSON.stringify(raw)}`);
  return h * 60 + m;
}

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** `Mon,Wed..Fri` or `*` → the day indexes (0 Monday), sorted, each once. */
function parseDays(field: string): number[] {
  if (field === '*') return [0, 1, 2, 3, 4, 5, 6];
  const chosen = new Set<number>();
  for (const item of field.split(',')) {
    if (item === '') throw new Error(`has an empty item in its weekdays ${JSON.stringify(field)}`);
    const ends = item.split('..');
    if (ends.length > 2) throw new Error(`has ${JSON.stringify(item)}: a range of weekdays has two ends`);
    const [first, last] = ends.map(dayIndex) as [number, number | undefined];
    const stop = last ?? first;
    if (stop < first) throw new Error(`has the range ${JSON.stringify(item)}, which goes backwards (weekdays run from Mon to Sun)`);
    for (let day = first; day <= stop; day++) chosen.add(day);
  }
  return [...chosen].sort((a, b) => a - b);
}

function dayIndex(word: string): number {
  const lower = word.toLowerCase();
  const index = LONG_DAYS.findIndex((name) => lower === name || lower === name.slice(0, 3));
  if (index < 0) throw new Error(`has ${JSON.stringify(word)}, which is not a weekday (Mon, Tue, … Sun, or * for every day)`);
  return index;
}

/** Day indexes → systemd's spelling: `*` for all, runs of three or more as ranges (`Mon..Fri`), others listed (`Sat,Sun`). */
function formatDays(days: readonly number[]): string {
  if (days.length === 7) return '*';
  const parts: string[] = [];
  for (let i = 0; i < days.length; ) {
    let j = i;
    while (j + 1 < days.length && (days[j + 1] as number) === (days[j] as number) + 1) j++;
    const run = days.slice(i, j + 1).map((day) => DAYS[day] as string);
    parts.push(run.length >= 3 ? `${run[0]}..${run[run.length - 1]}` : run.join(','));
    i = j + 1;
  }
  return parts.join(',');
}
