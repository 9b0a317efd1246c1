import { describe, expect, it } from 'vitest';
import { calendarInterval, pollSpreadOf, silentAfterOf, timeSpanSeconds } from '../../src/config/systemd-time.js';

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
