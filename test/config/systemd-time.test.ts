import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { calendarInterval, calendarProblem, pollSpreadOf, silentAfterOf, timeSpanSeconds } from '../../src/config/systemd-time.js';

/** Calendars systemd 252 accepts (`systemd-analyze calendar`): every form of systemd.time(7) a fleet's calendars use. */
const ACCEPTED = [
  'minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually', 'semi-annually', 'HOURLY',
  '*:0/15', '*:00/5', '*:0/59', '*:30', '*:00:00', '04:00', '4:0', '23:59', '04:00:00.5', '00..05:00', '1/2:00', '*-*-* 04/2:00', '*-*-* *:2/3',
  'Mon..Fri 02:00', 'mon..fri 02:00', 'Mon-Fri 02:00', 'Monday 02:00', 'Sat,Sun 10:00', 'Mon..Wed,Fri..Sat 10:00', 'Mon, 02:00', 'Mon..Fri', 'Sun *-*-* 03:00:00',
  '*-*-* 04:00:00', '*-*-* *:*:*', '*-*-1,15 02:00', '2024-01-01', '03-05 04:00', '70-01-01', '2199-12-31', 'Sat *-1..7 18:00:00', '*-1/2-* 00:00',
  '2015..2016-*-* 00:00', 'Wed..Sat,Tue 12-10-15 1:2:3', '*-*~03', '*-*~1..3', '*-*~07/1', '*-02~03', '*-*~28',
  '*:5..5/2', '*:0..1/2', '*:50..59/9', '5..6:00', '12:00:5..6', '12:34:56.789', '@1700000000', '@0',
  '04:00 UTC', '04:00 utc', 'daily UTC', '04:00 Europe/Berlin', 'daily Europe/Berlin', '02:00 CET', '02:00 Etc/GMT+1', 'Mon 04:00 America/New_York', '2024-01-01 04:00 UTC',
];

/** Calendars systemd 252 refuses, and what bento says of them. */
const REFUSED: [string, string][] = [
  ['hourlyy', '"hourlyy" is neither a weekday nor a name such as hourly or daily'],
  ['4am', '"am" does not belong in a calendar (a time is written hh:mm, e.g. 04:00)'],
  ['Mo 02:00', '"Mo" is neither a weekday nor a name such as hourly or daily'],
  ['daily; reboot', 'a name such as daily stands alone'],
  ['*/15', 'a repetition starts from a number, not *: every 15 minutes is *:0/15'],
  ['*:*/15', 'a repetition starts from a number, not *'],
  ['24:00', 'hour 24 is outside 0..23'],
  ['23:60', 'minute 60 is outside 0..59'],
  ['12:34:60', 'second 60 is outside 0..59'],
  ['*:0/0', 'a repetition of 0 never repeats'],
  ['*:0/60', 'minute 0/60 repeats less often than once per 0..59'],
  ['6..5:00', 'hour 6..5 is a range that goes backwards'],
  ['12:00:5..5', 'second 5..5 is a range shorter than one second'],
  ['Fri..Mon 02:00', 'the range Fri..Mon goes backwards'],
  ['Mon..', 'a range of weekdays has no end'],
  ['Mon..Wed..Fri', 'a range of weekdays has two ends, not three'],
  ['Sat 10:00..', 'a range needs an end'],
  ['13-01', 'month 13 is outside 1..12'],
  ['05-40', 'day 40 is outside 1..31'],
  ['*-*~29', 'day 29 is outside 1..28'],
  ['*-*~1/2', 'day 1/2 repeats past the end of its range'],
  ['1969-01-01', 'year 1969 is outside 1970..2199'],
  ['2200-01-01', 'year 2200 is outside 1970..2199'],
  ['@99999999999', 'is after 2199'],
  ['@12 04:00', '@ takes seconds since 1970 and nothing after them'],
  ['12', 'a time is written hh:mm or hh:mm:ss'],
  ['*', 'a time is written hh:mm or hh:mm:ss'],
  [':30', 'expected a number or *'],
  ['1,*:00', 'expected a number or *'],
  ['02:00 CEST', '"CEST" is not a time zone'],
  ['02:00 Mars/Olympus', '"Mars/Olympus" is not a time zone'],
  ['$(reboot)', 'expected a number or *'],
  ['', 'it is empty'],
  ['Mon\t04:00', 'a character other than'],
];

describe('calendarProblem', () => {
  it.each(ACCEPTED)('accepts %j', (calendar) => {
    expect(calendarProblem(calendar)).toBeUndefined();
  });

  it.each(REFUSED)('refuses %j, saying why', (calendar, why) => {
    expect(calendarProblem(calendar)).toContain(why);
  });

  it('agrees with systemd-analyze calendar where this machine has it', () => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) return; // the lists above were recorded with systemd 252
    const disagreements = [...ACCEPTED, ...REFUSED.map(([calendar]) => calendar)]
      .filter((calendar) => calendar !== '')
      .filter((calendar) => (spawnSync('systemd-analyze', ['calendar', calendar]).status === 0) !== (calendarProblem(calendar) === undefined));
    expect(disagreements).toEqual([]);
  });
});

describe('systemd time', () => {
  it('reads calendar intervals and time spans', () => {
    expect(calendarInterval('*:0/15')).toEqual({ span: '15min', seconds: 900 });
    expect(calendarInterval('*:00/60')).toEqual({ span: '1h', seconds: 3600 });
    expect(calendarInterval('*:30')).toEqual({ span: '1h', seconds: 3600 });
    expect(calendarInterval('daily')).toEqual({ span: '1d', seconds: 86400 });
    expect(calendarInterval('*:0/7')).toBeUndefined(); // 7 does not divide the hour: uneven
    expect(calendarInterval('Sun 03:00')).toBeUndefined();
    expect(pollSpreadOf('weekly')).toBe('1w');
    expect(timeSpanSeconds('1h 30min')).toBe(5400);
    expect(timeSpanSeconds('90')).toBe(90);
    expect(timeSpanSeconds('2 weeks')).toBe(1209600);
    expect(timeSpanSeconds('3 fortnights')).toBeUndefined();
  });

  it('makes SILENT_AFTER three poll intervals plus the random delay, one day when the interval cannot be told', () => {
    expect(silentAfterOf('*:0/15', '15min')).toBe(3600);
    expect(silentAfterOf('hourly', '0')).toBe(3 * 3600);
    expect(silentAfterOf('*:0/5', '30s')).toBe(930);
    expect(silentAfterOf('Sun 03:00', '1h')).toBe(86_400);
  });
});
