/**
 * The human view of `bento status`: one aligned row per system. Pure: returns
 * the text, the caller writes it. Columns are padded by display width (an
 * emoji takes two terminal columns), not by string length, which is what
 * misaligned the original printf-based table.
 */
import { rebootWindowOpening } from '../config/reboot-window.js';
import { formatElapsed, secondsBetween } from './elapsed.js';
import { sanitize } from '../util/sanitize.js';
import type { StateId, SystemStatus, VersionMatch } from './states.js';

export interface RenderTableOptions {
  /** Reference time for elapsed times, in ms since the epoch. */
  nowMs: number;
  /** ANSI colours: only for a terminal, and never with NO_COLOR. */
  color: boolean;
}

export const STATE_LABELS: Readonly<Record<StateId, string>> = {
  'new-machine': 'new machine',
  'auto-updated': 'auto updated 🤖',
  'extra-logs': 'extra logs 🔥',
  'rebuild-pending': 'rebuild pending 🚩',
  'sync-pending': 'sync pending 🚩',
  rollbacked: 'rollbacked ⏪',
  'up-to-date': 'up to date 💚',
  failing: 'failing 🔥',
  unknown: 'unknown ❓',
  'rollout-pending': 'rollout pending ⏳',
  silent: 'silent 💤',
};

const MATCH_MARKS: Readonly<Record<VersionMatch, string>> = {
  matches: '💚',
  differs: '🛑',
  'cannot-know': '📌',
  unknown: '❓',
};

/** Which elapsed times each state shows, as in the reference output. */
const TIMES: Readonly<Record<StateId, { lastLog: boolean; newConfig: boolean }>> = {
  'new-machine': { lastLog: false, newConfig: true },
  'auto-updated': { lastLog: true, newConfig: false },
  'extra-logs': { lastLog: true, newConfig: true },
  'rebuild-pending': { lastLog: true, newConfig: true },
  'sync-pending': { lastLog: true, newConfig: true },
  rollbacked: { lastLog: true, newConfig: false },
  'up-to-date': { lastLog: true, newConfig: false },
  failing: { lastLog: true, newConfig: true },
  unknown: { lastLog: true, newConfig: true },
  'rollout-pending': { lastLog: true, newConfig: false },
  silent: { lastLog: true, newConfig: true },
};

const RESET = '\x1b[0m';
const BOLD = '\x1b[1m';
const STATE_COLORS: Readonly<Record<StateId, string>> = {
  'new-machine': '\x1b[34m',
  'auto-updated': '\x1b[36m',
  'extra-logs': '\x1b[31m',
  'rebuild-pending': '\x1b[33m',
  'sync-pending': '\x1b[33m',
  rollbacked: '\x1b[31m',
  'up-to-date': '\x1b[32m',
  failing: '\x1b[31m',
  unknown: '\x1b[35m',
  'rollout-pending': '\x1b[36m',
  silent: '\x1b[31m',
};

const HEADERS = ['machine', 'local version', 'remote version', 'state', 'seen', 'time'] as const;
const GAP = '  ';

/** The table, one line per system, every line ending with a newline. */
export function renderTable(statuses: readonly SystemStatus[], options: RenderTableOptions): string {
  // Each cell sanitized and measured once, as it is made (a 10,000-row
  // table measured each twice), the few distinct labels and marks once in
  // all. Cells are kept in flat arrays, not one object each: a 10,000-row
  // table is 60,000 cells, made and read once (bench/README.md).
  const widths: number[] = HEADERS.map(() => 0);
  const texts: string[] = [];
  const cellWidths: number[] = [];
  const styles: (string | undefined)[] = [];
  const measured = new Map<string, number>();
  const cell = (column: number, raw: string, style?: string): void => {
    const text = sanitize(raw);
    let width = measured.get(text);
    if (width === undefined) {
      width = measureWidth(text);
      if (!PRINTABLE_ASCII.test(text)) measured.set(text, width);
    }
    if (width > (widths[column] as number)) widths[column] = width;
    texts.push(text);
    cellWidths.push(width);
    styles.push(style);
  };
  HEADERS.forEach((text, column) => cell(column, text, BOLD));
  for (const status of statuses) {
    cell(0, status.name);
    cell(1, status.localVersion);
    cell(2, status.remoteVersion ? `${status.remoteVersion.short} ${MATCH_MARKS[status.remoteVersion.match]}` : '');
    cell(3, describeState(status), STATE_COLORS[status.state]);
    cell(4, describeSeen(status, options.nowMs));
    cell(5, describeTimes(status, options.nowMs));
  }
  const cells: Cells = { texts, widths: cellWidths, styles };
  const rule: Cells = { texts: widths.map((width) => '-'.repeat(width)), widths, styles: [] };
  let table = formatLine(cells, 0, widths, options.color) + formatLine(rule, 0, widths, options.color);
  for (let start = HEADERS.length; start < texts.length; start += HEADERS.length) table += formatLine(cells, start, widths, options.color);
  return table;
}

/** Cells in flat arrays, a row after the other: text, width in columns, ANSI style (not counted in the width). */
interface Cells {
  texts: readonly string[];
  widths: readonly number[];
  styles: readonly (string | undefined)[];
}

/** The row of `cells` that starts at index `start`, padded to the columns' `widths`. */
function formatLine(cells: Cells, start: number, widths: readonly number[], color: boolean): string {
  let line = '';
  for (let column = 0; column < widths.length; column++) {
    const text = cells.texts[start + column] as string;
    const style = cells.styles[start + column];
    const styled = color && style && text !== '' ? `${style}${text}${RESET}` : text;
    // The last column is not padded: no trailing blanks.
    line += column === widths.length - 1 ? styled : styled + ' '.repeat((widths[column] as number) - (cells.widths[start + column] as number)) + GAP;
  }
  return `${line.trimEnd()}\n`;
}

/**
 * The state, and beside it what the heartbeat adds (docs/protocol.md §7):
 * `up to date 💚 · drift · reboot pending`; a reboot that waits for its
 * window says when it opens: `reboot pending (window Mon..Fri 02:00)`.
 */
export function describeState(status: SystemStatus): string {
  let text = STATE_LABELS[status.state];
  if (status.drift) text += ' · drift';
  if (status.rebootPending) text += ` · reboot pending${rebootDetail(status)}`;
  return text;
}

/** What a pending reboot waits for, or holds: ` (window Mon..Fri 02:00)`, ` (slot held)`, ` (waits for a slot)`. */
function rebootDetail(status: SystemStatus): string {
  if (status.rebootWaiting === 'window' && status.rebootWindow) return ` (window ${rebootWindowOpening(status.rebootWindow)})`;
  if (status.rebootSlot === 'holds') return ' (slot held)';
  if (status.rebootSlot === 'waits') return ' (waits for a slot)';
  return '';
}

/** When the server last heard from the machine: `3m ago`; empty when never. */
export function describeSeen(status: SystemStatus, nowMs: number): string {
  return status.lastSeenMs === null ? '' : `${formatElapsed(secondsBetween(status.lastSeenMs, nowMs))} ago`;
}

/**
 * `(last log 5m 53s) (new config 2m 48s)`: since the machine's latest log
 * came (its last run that did something), since its configuration last changed.
 */
export function describeTimes(status: SystemStatus, nowMs: number): string {
  const wanted = TIMES[status.state];
  const lastLog = wanted.lastLog && status.latestLog ? `(last log ${formatElapsed(secondsBetween(status.latestLog.mtimeMs, nowMs))})` : '';
  const newConfig = wanted.newConfig && status.lastChangeMs !== null ? `(new config ${formatElapsed(secondsBetween(status.lastChangeMs, nowMs))})` : '';
  return lastLog && newConfig ? `${lastLog} ${newConfig}` : lastLog || newConfig;
}

/** Made when first needed: building it loads ICU's break rules, which a table of plain names never needs. */
let segmenter: Intl.Segmenter | undefined;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** What makes one visible character out of several code points. */
const COMBINING = /[\p{M}\p{Cf}\p{Regional_Indicator}\uFE0E\uFE0F]/u;
const EMOJI_PRESENTATION = /\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F|\p{Regional_Indicator}/u;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]+$/u;

/**
 * Terminal columns taken by `text`: emoji and East Asian wide characters
 * take two, combining marks and format characters none. Enough for
 * what a table row can hold (validated names, versions and our own labels);
 * not a full wcwidth.
 */
export function measureWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  // Grapheme segmentation is slow (a 1,000-row table spent most of its time
  // there); it is only needed when code points combine.
  if (!COMBINING.test(text)) {
    let width = 0;
    for (const char of text) width += measureGrapheme(char);
    return width;
  }
  let width = 0;
  segmenter ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  for (const { segment } of segmenter.segment(text)) width += measureGrapheme(segment);
  return width;
}

function measureGrapheme(grapheme: string): number {
  const code = grapheme.codePointAt(0) ?? 0;
  if (code >= 0x20 && code < 0x7f) return 1;
  if (EMOJI_PRESENTATION.test(grapheme)) return 2;
  if (ZERO_WIDTH.test(grapheme)) return 0;
  return isWide(code) ? 2 : 1;
}

/** East Asian Wide and Fullwidth blocks (Hangul, CJK, kana, fullwidth forms). */
function isWide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x20000 && code <= 0x3fffd)
  );
}
