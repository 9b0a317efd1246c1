/**
 * REBOOT_WINDOW's parser and rule (src/config/reboot-window.ts): the
 * normalised text, the numbers the client compares with `date`, what is
 * refused, and when a window is open, across midnight too.
 */
import { describe, expect, it } from 'vitest';
import { parseRebootWindow, rebootWindowOpen, rebootWindowOpening } from '../../src/config/reboot-window.js';

describe('parseRebootWindow', () => {
  it.each([
    ['Mon..Fri 02:00-05:00', 'Mon..Fri 02:00-05:00', '12345', 120, 300],
    ['Sat,Sun 1:30-4:05', 'Sat,Sun 01:30-04:05', '67', 90, 245],
    ['Mon,Wed..Fri 22:00-02:00', 'Mon,Wed..Fri 22:00-02:00', '1345', 1320, 120],
    ['* 00:00-23:59', '* 00:00-23:59', '1234567', 0, 1439],
    ['Mon..Sun 03:00-04:00', '* 03:00-04:00', '1234567', 180, 240],
    ['  monday,Tue,wednesday   03:00-04:00 ', 'Mon..Wed 03:00-04:00', '123', 180, 240],
    ['Fri,Mon,Fri 03:00-04:00', 'Mon,Fri 03:00-04:00', '15', 180, 240],
    ['Sun,Sat 03:00-04:00', 'Sat,Sun 03:00-04:00', '67', 180, 240],
    ['Mon..Tue,Thu..Sun 03:00-04:00', 'Mon,Tue,Thu..Sun 03:00-04:00', '124567', 180, 240],
  ])('%j → %j', (raw, text, days, from, to) => {
    expect(parseRebootWindow(raw)).toEqual({ text, days, from, to });
  });

  it.each([
    ['', 'must be weekdays and a time range'],
    ['02:00-05:00', 'must be weekdays and a time range'],
    ['Mon..Fri', 'must be weekdays and a time range'],
    ['Mon..Fri 02:00', 'must be weekdays and a time range'],
    ['Mon..Fri 02:00-05:00 UTC', 'must be weekdays and a time range'],
    ['Mon..Fri 2h-5h', 'must be weekdays and a time range'],
    ['Fri..Mon 02:00-05:00', 'goes backwards'],
    ['Mon..Wed..Fri 02:00-05:00', 'two ends'],
    ['Mon,,Fri 02:00-05:00', 'empty item'],
    ['Moon 02:00-05:00', '"Moon", which is not a weekday'],
    ['Mon 24:00-05:00', 'not a time of day'],
    ['Mon 02:60-05:00', 'not a time of day'],
    ['Mon 02:00-02:00', 'opens and closes at the same minute'],
    ["Mon 02:00-05:00'; reboot", 'must be weekdays and a time range'],
  ])('refuses %j (%s)', (raw, message) => {
    expect(() => parseRebootWindow(raw)).toThrow(message);
  });
});

describe('rebootWindowOpen', () => {
  const at = (hh: number, mm: number) => hh * 60 + mm;

  it('within one day: open from its start, closed from its end, only on its days', () => {
    const window = parseRebootWindow('Mon..Fri 02:00-05:00');
    expect(rebootWindowOpen(window, 1, at(1, 59))).toBe(false);
    expect(rebootWindowOpen(window, 1, at(2, 0))).toBe(true);
    expect(rebootWindowOpen(window, 5, at(4, 59))).toBe(true);
    expect(rebootWindowOpen(window, 5, at(5, 0))).toBe(false);
    expect(rebootWindowOpen(window, 6, at(3, 0))).toBe(false);
    expect(rebootWindowOpen(window, 7, at(3, 0))).toBe(false);
  });

  it('across midnight: it opens on its days and closes the next morning', () => {
    const window = parseRebootWindow('Fri,Sun 22:00-02:00');
    expect(rebootWindowOpen(window, 5, at(21, 59))).toBe(false);
    expect(rebootWindowOpen(window, 5, at(22, 0))).toBe(true);
    expect(rebootWindowOpen(window, 6, at(1, 59))).toBe(true); // Friday's window, on Saturday
    expect(rebootWindowOpen(window, 6, at(2, 0))).toBe(false);
    expect(rebootWindowOpen(window, 6, at(23, 0))).toBe(false); // Saturday opens none
    expect(rebootWindowOpen(window, 7, at(23, 0))).toBe(true);
    expect(rebootWindowOpen(window, 1, at(0, 30))).toBe(true); // Sunday's, on Monday
    expect(rebootWindowOpen(window, 5, at(1, 0))).toBe(false); // Thursday opens none
  });

  it('rebootWindowOpening: when it opens, as status shows it', () => {
    expect(rebootWindowOpening('Mon..Fri 02:00-05:00')).toBe('Mon..Fri 02:00');
  });
});
