/** states.txt: the one parser, and its writer. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { parseStates, readStatesFile, readStatesFileToDecide, renderStates, validStates } from '../../src/protocol/states-file.js';

const A = '0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-a-24.05';
const B = 'h2xfyiy9znimv9c5vw0bj51qcpjxfmw3-nixos-system-b-24.05';

describe('parseStates', () => {
  it('reads <name>=<store path basename> lines, with their line numbers', () => {
    const file = parseStates(`a=${A}\r\n\nb=${B}\n`);
    expect(file.warnings).toEqual([]);
    expect(file.entries.get('a')).toEqual({ line: 1, storeBasename: A });
    expect(file.entries.get('b')).toEqual({ line: 3, storeBasename: B });
  });

  it('reports every line it cannot use, and names listed twice', () => {
    const file = parseStates(`garbage\nBad=${A}\na=not-a-store-path\nb=${B} \nc=${A}\nc=${B}\n`);
    expect(file.warnings).toEqual([
      'states.txt:1: ignored, not <system name>=<store path>: "garbage"',
      `states.txt:2: ignored, not <system name>=<store path>: "Bad=${A}"`,
      'states.txt:6: c is listed again (line 5 is ignored)',
    ]);
    expect(file.entries.get('a')).toEqual({ line: 3, problem: 'states.txt:3: the store path does not start with a 32-character nix hash: "not-a-store-path"' });
    // A trailing space is not trimmed away: it is not a store path then.
    expect(file.entries.get('b')).toMatchObject({ line: 4, problem: expect.stringContaining('characters nix does not allow') });
    expect(file.entries.get('c')).toEqual({ line: 6, storeBasename: B });
    expect([...validStates(file)]).toEqual([['c', B]]);
  });

  it('round-trips what renderStates writes, sorted by name', () => {
    const text = renderStates(new Map([['b', B], ['a', A]]));
    expect(text).toBe(`a=${A}\nb=${B}\n`);
    expect([...validStates(parseStates(text))]).toEqual([['a', A], ['b', B]]);
  });
});

describe('readStatesFileToDecide', () => {
  it('is readStatesFile, but one that cannot be read is a UserError naming it (deploy stops on it; status reads it raw)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-states-'));
    try {
      expect(readStatesFileToDecide(dir).entries.size).toBe(0);
      mkdirSync(path.join(dir, 'states.txt'));
      expect(() => readStatesFile(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
      let error: unknown;
      try {
        readStatesFileToDecide(dir);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).message).toBe(`cannot read ${path.join(dir, 'states.txt')}: EISDIR: illegal operation on a directory, read`);
      expect((error as UserError).hint).toMatch(/^restore it, or move it away/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
