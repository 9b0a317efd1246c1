/**
 * reboots.json and a machine's reboot-slot file (src/protocol/reboot-slots.ts,
 * docs/protocol.md §12): what bento writes reads back, anything else is refused.
 */
import { describe, expect, it } from 'vitest';
import { parseRebootRecord, renderRebootSlot, type RebootRecord } from '../../src/protocol/reboot-slots.js';

const RECORD: RebootRecord = {
  version: 1,
  slots: { 'web-1': { token: '0123456789abcdef0123456789abcdef', grantedAt: '2026-12-07T03:00:00.000Z', expiresAt: '2026-12-07T04:00:00.000Z' } },
  waiting: { 'web-2': '2026-12-07T02:55:00.000Z' },
};

describe('parseRebootRecord', () => {
  it('reads back what bento writes', () => {
    expect(parseRebootRecord(JSON.stringify(RECORD))).toEqual(RECORD);
  });

  it.each([
    ['not JSON', '{', 'not JSON'],
    ['another version', JSON.stringify({ ...RECORD, version: 2 }), 'version is not 1'],
    ['a key bento does not write', JSON.stringify({ ...RECORD, extra: 1 }), 'a key bento does not write'],
    ['a name no system has', JSON.stringify({ ...RECORD, waiting: { '../x': '2026-12-07T02:55:00.000Z' } }), 'not a system name'],
    ['a short token', JSON.stringify({ ...RECORD, slots: { a: { ...RECORD.slots['web-1'], token: 'abc' } } }), 'token is not 32 hex digits'],
    ['a time not as bento writes it', JSON.stringify({ ...RECORD, slots: { a: { ...RECORD.slots['web-1'], expiresAt: 'tomorrow' } } }), 'slots.a.expiresAt is not a time'],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseRebootRecord(text)).toThrow(message);
  });
});

describe('renderRebootSlot', () => {
  it('writes the lines the machine reads (token:) and people read', () => {
    expect(renderRebootSlot('web-1', RECORD.slots['web-1'] as RebootRecord['slots'][string])).toBe('bento reboot slot of web-1\ntoken: 0123456789abcdef0123456789abcdef\nexpires: 2026-12-07T04:00:00.000Z\n');
  });
});
