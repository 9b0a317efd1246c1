/**
 * The slot decisions of `bento reboots` (src/rollout/reboot-slots.ts,
 * decideRebootSlots): pure, on records and what heartbeats said.
 */
import { describe, expect, it } from 'vitest';
import { decideRebootSlots, type RebootObservation } from '../../src/rollout/reboot-slots.js';
import type { RebootRecord } from '../../src/protocol/reboot-slots.js';

const T0 = Date.parse('2026-12-07T03:00:00.000Z');
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
const POLICY = { max: 1, maxPerWave: 0, slotSeconds: 3600 };

/** Tokens a, b, c… padded to 32 hex digits, in the order they are drawn. */
function tokens(): () => string {
  let n = 0;
  return () => (++n).toString(16).padStart(32, '0');
}

const waiting = (name: string, heartbeatMs: number, extra: Partial<RebootObservation> = {}): RebootObservation => ({ name, heartbeatMs, waitsForSlot: true, rebootPending: true, ...extra });
const empty: RebootRecord = { version: 1, slots: {}, waiting: {} };

describe('decideRebootSlots', () => {
  it('REBOOT_MAX=1: one slot, to the machine waiting longest; the others wait in line', () => {
    const first = decideRebootSlots(empty, [waiting('a', T0), waiting('b', T0), waiting('c', T0)], POLICY, T0, tokens());
    expect(first.events).toEqual([{ name: 'a', kind: 'granted', why: `until ${iso(T0 + 3600_000)}` }]);
    expect(first.record.slots).toEqual({ a: { token: '1'.padStart(32, '0'), grantedAt: iso(T0), expiresAt: iso(T0 + 3600_000) } });
    expect(first.record.waiting).toEqual({ b: iso(T0), c: iso(T0) });
    // c waited before b: c is next.
    const record: RebootRecord = { ...first.record, waiting: { b: iso(T0), c: iso(T0 - MIN) } };
    const token = first.record.slots.a?.token as string;
    const next = decideRebootSlots(record, [waiting('a', T0 + 10 * MIN, { waitsForSlot: false, rebootPending: false, rebootedWith: token }), waiting('b', T0 + MIN), waiting('c', T0 + MIN)], POLICY, T0 + 11 * MIN, tokens());
    expect(next.events.map((event) => [event.name, event.kind])).toEqual([['a', 'released'], ['c', 'granted']]);
    expect(Object.keys(next.record.slots)).toEqual(['c']);
    expect(next.record.waiting).toEqual({ b: iso(T0) });
  });

  it('keeps a slot while its machine has not reported back: a heartbeat older than the grant, or one that still waits', () => {
    const record: RebootRecord = { version: 1, slots: { a: { token: 'f'.repeat(32), grantedAt: iso(T0), expiresAt: iso(T0 + 3600_000) } }, waiting: {} };
    for (const seen of [waiting('a', T0 - MIN, { rebootPending: false }), waiting('a', T0 + MIN), waiting('a', T0 + MIN, { rebootedWith: 'e'.repeat(32) })]) {
      const result = decideRebootSlots(record, [seen, waiting('b', T0)], POLICY, T0 + 2 * MIN, tokens());
      expect(result.events).toEqual([]);
      expect(result.record).toEqual({ ...record, waiting: { b: iso(T0 + 2 * MIN) } });
    }
  });

  it('frees a slot whose machine needs no reboot any more, or left CHROOT_DIR', () => {
    const record: RebootRecord = { version: 1, slots: { a: { token: 'f'.repeat(32), grantedAt: iso(T0), expiresAt: iso(T0 + 3600_000) }, gone: { token: 'e'.repeat(32), grantedAt: iso(T0), expiresAt: iso(T0 + 3600_000) } }, waiting: {} };
    const result = decideRebootSlots(record, [waiting('a', T0 + MIN, { waitsForSlot: false, rebootPending: false })], { ...POLICY, max: 2 }, T0 + 2 * MIN, tokens());
    expect(result.events).toEqual([
      { name: 'a', kind: 'released', why: 'it needs no reboot any more' },
      { name: 'gone', kind: 'released', why: 'it left CHROOT_DIR' },
    ]);
    expect(result.record.slots).toEqual({});
  });

  it('a slot held by a machine that never comes back expires, and goes to the next; the machine queues again only once it reports', () => {
    const record: RebootRecord = { version: 1, slots: { dead: { token: 'f'.repeat(32), grantedAt: iso(T0), expiresAt: iso(T0 + 3600_000) } }, waiting: { b: iso(T0) } };
    const observations = [waiting('dead', T0 - MIN), waiting('b', T0 + 30 * MIN)];
    expect(decideRebootSlots(record, observations, POLICY, T0 + 59 * MIN, tokens()).events).toEqual([]);
    const expired = decideRebootSlots(record, observations, POLICY, T0 + 60 * MIN, tokens());
    expect(expired.events.map((event) => [event.name, event.kind])).toEqual([['dead', 'expired'], ['b', 'granted']]);
    expect(expired.record.waiting).toEqual({});
    // Back, still waiting: at the end of the line.
    const back = decideRebootSlots({ ...expired.record, waiting: { c: iso(T0) } }, [waiting('dead', T0 + 61 * MIN), waiting('b', T0 + 61 * MIN), waiting('c', T0)], { ...POLICY, max: 0 }, T0 + 62 * MIN, tokens());
    expect(back.record.waiting).toEqual({ c: iso(T0), dead: iso(T0 + 62 * MIN) });
  });

  it('REBOOT_MAX_PER_WAVE: at most that many slots within one wave, the fleet cap over all', () => {
    const observations = [waiting('a1', T0, { wave: 0 }), waiting('a2', T0, { wave: 0 }), waiting('b1', T0, { wave: 1 }), waiting('b2', T0, { wave: 1 }), waiting('loose', T0)];
    const result = decideRebootSlots(empty, observations, { max: 3, maxPerWave: 1, slotSeconds: 600 }, T0, tokens());
    expect(Object.keys(result.record.slots).sort()).toEqual(['a1', 'b1', 'loose']);
    expect(Object.keys(result.record.waiting).sort()).toEqual(['a2', 'b2']);
  });

  it('grants nothing to a machine that does not wait for a slot (no reboot pending, its window closed)', () => {
    const result = decideRebootSlots(empty, [waiting('w', T0, { waitsForSlot: false })], POLICY, T0, tokens());
    expect(result.record).toEqual(empty);
    expect(result.events).toEqual([]);
  });
});
