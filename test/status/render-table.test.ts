import { describe, expect, it } from 'vitest';
import { measureWidth, renderTable } from '../../src/status/render-table.js';
import { decideStatus } from '../../src/status/states.js';
import { NOW, SILENCE, ago, flake, heartbeat, logEntry, snapshot } from './fixtures.js';

/** The fleet of the reference output, plus a new machine. */
const fleet = () =>
  [
    snapshot('interbus', { logs: [logEntry('1dyc4lgr', 'success', 11)] }),
    snapshot('kikimora', { expected: flake('996vw3r6'), lastChangeMs: ago(168), logs: [logEntry('996vw3r6', 'success', 353)] }),
    snapshot('nas', { expected: flake('r7ips2c6'), lastChangeMs: ago(105), logs: [logEntry('lvbajpc5', 'success', 349)] }),
    snapshot('t470', { expected: flake('b2vvrxjy'), lastChangeMs: ago(200), logs: [logEntry('ih7vxijm', 'rollback', 144)] }),
    snapshot('x1', { expected: flake('fcz1s2yp'), lastChangeMs: ago(200), logs: [logEntry('fcz1s2yp', 'success', 157)], heartbeat: heartbeat(40, 'fcz1s2yp') }),
    snapshot('new', { expected: flake('fcz1s2yp'), lastChangeMs: ago(200) }),
  ].map((system) => decideStatus(system));

/** Machines with heartbeats: one quiet and well, one silent, one changed by hand, one waiting for a reboot. */
const heartbeats = () =>
  [
    snapshot('quiet', { expected: flake('fcz1s2yp'), lastChangeMs: ago(86_400), logs: [logEntry('fcz1s2yp', 'success', 80_000)], heartbeat: heartbeat(180, 'fcz1s2yp') }),
    snapshot('gone', { expected: flake('fcz1s2yp'), lastChangeMs: ago(86_400), logs: [logEntry('fcz1s2yp', 'success', 80_000)], heartbeat: heartbeat(7300, 'fcz1s2yp') }),
    snapshot('broken', { expected: flake('fcz1s2yp'), lastChangeMs: ago(200), logs: [logEntry('ih7vxijm', 'failure', 100)], heartbeat: heartbeat(7300, 'ih7vxijm') }),
    snapshot('hand', { expected: flake('fcz1s2yp'), lastChangeMs: ago(86_400), logs: [logEntry('fcz1s2yp', 'success', 80_000)], heartbeat: heartbeat(60, 'lvbajpc5') }),
    snapshot('kernel', { expected: flake('fcz1s2yp'), lastChangeMs: ago(86_400), logs: [logEntry('fcz1s2yp', 'success', 80_000)], heartbeat: heartbeat(60, 'fcz1s2yp', true) }),
  ].map((system) => decideStatus(system, SILENCE));

/** Terminal width computed independently of the code under test: every character from U+2300 up here is an emoji. */
const columnsOf = (text: string) => [...text].reduce((width, char) => width + ((char.codePointAt(0) ?? 0) >= 0x2300 ? 2 : 1), 0);

/** Display column where each cell of each line starts (cells hold single spaces, columns are 2+ apart). */
function cellStarts(line: string): number[] {
  const starts: number[] = [];
  const re = /(?:^|\s{2,})(\S)/g;
  for (let match = re.exec(line); match; match = re.exec(line)) starts.push(columnsOf(line.slice(0, match.index + match[0].length - match[1]!.length)));
  return starts;
}

describe('renderTable', () => {
  it('renders the reference example, aligned', () => {
    expect(renderTable(fleet(), { nowMs: NOW.getTime(), color: false })).toBe(
      [
        'machine   local version  remote version  state               seen        time',
        '--------  -------------  --------------  ------------------  ----------  -------------------------------------',
        'interbus  non-flakes     1dyc4lgr 📌     up to date 💚       11s ago     (last log 11s)',
        'kikimora  996vw3r6       996vw3r6 💚     sync pending 🚩     5m 53s ago  (last log 5m 53s) (new config 2m 48s)',
        'nas       r7ips2c6       lvbajpc5 🛑     rebuild pending 🚩  5m 49s ago  (last log 5m 49s) (new config 1m 45s)',
        't470      b2vvrxjy       ih7vxijm 🛑     rollbacked ⏪       2m 24s ago  (last log 2m 24s)',
        'x1        fcz1s2yp       fcz1s2yp 💚     up to date 💚       40s ago     (last log 2m 37s)',
        'new       fcz1s2yp                       new machine                     (new config 3m 20s)',
        '',
      ].join('\n'),
    );
  });

  it('shows when each machine was last seen, and silent, drift and reboot pending', () => {
    expect(renderTable(heartbeats(), { nowMs: NOW.getTime(), color: false })).toBe(
      [
        'machine  local version  remote version  state                           seen        time',
        '-------  -------------  --------------  ------------------------------  ----------  -------------------------------------',
        'quiet    fcz1s2yp       fcz1s2yp 💚     up to date 💚                   3m ago      (last log 22h 13m)',
        'gone     fcz1s2yp       fcz1s2yp 💚     silent 💤                       2h 1m ago   (last log 22h 13m) (new config 1d)',
        'broken   fcz1s2yp       ih7vxijm 🛑     failing 🔥                      1m 40s ago  (last log 1m 40s) (new config 3m 20s)',
        'hand     fcz1s2yp       fcz1s2yp 💚     up to date 💚 · drift           1m ago      (last log 22h 13m)',
        'kernel   fcz1s2yp       fcz1s2yp 💚     up to date 💚 · reboot pending  1m ago      (last log 22h 13m)',
        '',
      ].join('\n'),
    );
  });

  it('aligns every column by display width, whatever the name lengths and emoji', () => {
    const longest = 'a-very-long-machine-name-32chars';
    expect(longest).toHaveLength(32);
    const statuses = [
      ...fleet(),
      decideStatus(snapshot(longest, { expected: flake('996vw3r6'), logs: [logEntry('996vw3r6', 'success', 1200), logEntry('996vw3r6', 'success', 600)] })),
      decideStatus(snapshot('a', { logs: [logEntry('1dyc4lgr', 'autoupdate', 3 * 86_400 + 4 * 3600)] })),
      decideStatus(snapshot('b', { logs: [logEntry('1dyc4lgr', 'success', 5)], problems: ['broken'] })),
    ];
    const lines = renderTable(statuses, { nowMs: NOW.getTime(), color: false }).trimEnd().split('\n');
    const rows = lines.filter((line) => !line.startsWith('-'));
    const full = rows.filter((line) => cellStarts(line).length === 6);
    expect(full.length).toBeGreaterThanOrEqual(8);
    const expected = cellStarts(rows[0]!);
    expect(expected).toEqual([0, 34, 49, 65, 85, 97]);
    for (const line of full) expect(cellStarts(line)).toEqual(expected);
    expect(lines).toContain(`${longest}  996vw3r6       996vw3r6 💚     extra logs 🔥       10m ago     (last log 10m) (new config 1h)`);
    expect(lines).toContain(`a${' '.repeat(33)}non-flakes     1dyc4lgr 📌     auto updated 🤖     3d 4h ago   (last log 3d 4h)`);
    expect(lines).toContain(`b${' '.repeat(33)}non-flakes     1dyc4lgr 📌     unknown ❓          5s ago      (last log 5s) (new config 1h)`);
    for (const line of lines) expect(line).not.toMatch(/\s$/);
  });

  it('colours the header and the state only when asked, without changing the alignment', () => {
    const plain = renderTable(fleet(), { nowMs: NOW.getTime(), color: false });
    const colored = renderTable(fleet(), { nowMs: NOW.getTime(), color: true });
    expect(plain).not.toContain('\x1b');
    expect(colored).toContain('\x1b[31mrollbacked ⏪\x1b[0m');
    expect(colored).toContain('\x1b[1mmachine\x1b[0m');
    expect(colored.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain);
  });

  it('renders only the header for an empty fleet', () => {
    expect(renderTable([], { nowMs: NOW.getTime(), color: false })).toBe(
      'machine  local version  remote version  state  seen  time\n-------  -------------  --------------  -----  ----  ----\n',
    );
  });
});

describe('measureWidth', () => {
  it.each([
    ['', 0],
    ['abc', 3],
    ['up to date 💚', 13],
    ['rollbacked ⏪', 13],
    ['❓', 2],
    ['❤️', 2],
    ['e\u0301', 1],
    ['日本', 4],
  ])('%j takes %i columns', (text, width) => {
    expect(measureWidth(text)).toBe(width);
  });
});

describe('a reboot that waits for its window', () => {
  it('shows when the window opens, beside the state', () => {
    const waiting = heartbeat(60, 'fcz1s2yp', true);
    waiting.says = { ...waiting.says, rebootWindow: 'Mon..Fri 02:00-05:00', rebootWaiting: 'window' };
    const status = decideStatus(snapshot('web', { heartbeat: waiting }), SILENCE);
    expect(renderTable([status], { nowMs: NOW.getTime(), color: false })).toContain('reboot pending (window Mon..Fri 02:00)');
  });
});
