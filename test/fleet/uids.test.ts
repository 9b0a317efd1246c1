/** fleet/uids.ts: the uid of each machine's account, recorded in uids.txt, stable as machines come and go. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { assignUids, formatUidRecord, parseUidRecord, readUidRecord, recordUids, UID_RECORD_FILE } from '../../src/fleet/uids.js';

const RANGE = { first: 70000, last: 99999 };

describe('assignUids', () => {
  it('gives new systems the lowest free uids of the range, in name order', () => {
    const { uids, added } = assignUids(new Map(), ['router', 'nas', 'web-1'], RANGE);
    expect([...uids]).toEqual([['nas', 70000], ['router', 70001], ['web-1', 70002]]);
    expect(added).toEqual(['nas', 'router', 'web-1']);
  });

  it('keeps every uid when machines are added or removed: a new one never moves an old one, a departed one keeps its uid', () => {
    const first = assignUids(new Map(), ['b', 'd'], RANGE).uids;
    // "a" sorts before both and "c" between them: neither moves them.
    const grown = assignUids(first, ['a', 'b', 'c', 'd'], RANGE).uids;
    expect(grown.get('b')).toBe(first.get('b'));
    expect(grown.get('d')).toBe(first.get('d'));
    expect(new Set(grown.values()).size).toBe(4);
    // "b" leaves: its uid stays recorded, never given to "e", and it gets it back if it returns.
    const shrunk = assignUids(grown, ['a', 'c', 'd', 'e'], RANGE).uids;
    expect(shrunk.get('b')).toBe(first.get('b'));
    expect([...shrunk.entries()].filter(([name]) => name !== 'b').map(([, uid]) => uid)).not.toContain(first.get('b'));
    expect(assignUids(shrunk, ['a', 'b'], RANGE).uids.get('b')).toBe(first.get('b'));
  });

  it('assigns again a recorded uid outside the range (SFTP_UIDS changed)', () => {
    const { uids, added } = assignUids(new Map([['nas', 998], ['router', 80000]]), ['nas', 'router'], { first: 80000, last: 80010 });
    expect([...uids]).toEqual([['router', 80000], ['nas', 80001]]);
    expect(added).toEqual(['nas']);
  });

  it('refuses when the range is full, saying how to widen it', () => {
    expect(() => assignUids(new Map([['a', 70000]]), ['a', 'b', 'c'], { first: 70000, last: 70001 })).toThrow(/SFTP_UIDS 70000-70001 has no free uid left for c: 2 are recorded in uids.txt/);
  });

  it('fits 10,000 systems in the default range', () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `m${i}`);
    const { uids } = assignUids(new Map(), names, RANGE);
    expect(new Set(uids.values()).size).toBe(10_000);
    expect(Math.max(...uids.values())).toBe(79999);
  });
});

describe('uids.txt', () => {
  it('reads what it writes, in uid order, comments and blank lines skipped', () => {
    const text = formatUidRecord(new Map([['router', 70001], ['nas', 70000]]));
    expect(text.split('\n').filter((line) => !line.startsWith('#'))).toEqual(['nas 70000', 'router 70001', '']);
    expect([...parseUidRecord(`${text}\n\n`)]).toEqual([['nas', 70000], ['router', 70001]]);
  });

  it.each([
    ['nas', /line 1: expected "<name> <uid>"/],
    ['nas 70000\nrouter 70000', /line 2: uid 70000 of router is nas's already/],
    ['nas 70000\nnas 70001', /line 2: nas has a line already/],
  ])('refuses %j, naming the line', (text, message) => {
    expect(() => parseUidRecord(text)).toThrow(message);
  });
});

describe('recordUids', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('writes uids.txt when a system is new, and leaves it alone when nothing is', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-uids-'));
    const file = path.join(dir, UID_RECORD_FILE);
    expect([...(await recordUids(dir, ['nas'], RANGE)).uids]).toEqual([['nas', 70000]]);
    const written = statSync(file).mtimeMs;
    writeFileSync(file, readFileSync(file, 'utf8'));
    const before = statSync(file);
    const again = await recordUids(dir, ['nas'], RANGE);
    expect(again.added).toEqual([]);
    expect(statSync(file).ino).toBe(before.ino);
    expect(written).toBeGreaterThan(0);
    await recordUids(dir, ['nas', 'router'], RANGE);
    expect(readFileSync(file, 'utf8')).toMatch(/\nnas 70000\nrouter 70001\n$/);
  });
});

describe('readUidRecord', () => {
  it('names a uids.txt it cannot read (a directory in its place) as the fleet\'s to mend, as one it cannot parse', () => {
    const fleetDir = mkdtempSync(path.join(os.tmpdir(), 'bento-uids-'));
    try {
      expect(readUidRecord(fleetDir).size).toBe(0);
      mkdirSync(path.join(fleetDir, UID_RECORD_FILE));
      const file = path.join(fleetDir, UID_RECORD_FILE);
      expect(() => readUidRecord(fleetDir)).toThrow(`cannot read ${file}: EISDIR: illegal operation on a directory, read`);
      expect(() => readUidRecord(fleetDir)).toThrow(UserError);
    } finally {
      rmSync(fleetDir, { recursive: true, force: true });
    }
  });
});
