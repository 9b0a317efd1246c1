/**
 * util/read-at-most.ts's readRegularFileSync on a FIFO put where a file
 * was: opening it for reading would wait for a writer forever. Run in a
 * child process (test/helpers/bounded-child.ts), which a blocked open would
 * leave hanging: it must be refused at once instead.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBounded } from '../helpers/bounded-child.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-read-at-most-fifo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readRegularFileSync on a FIFO', () => {
  it('refuses it at once, never waiting for a writer', () => {
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const noFollow of [false, true]) {
      expect(runBounded('util/read-at-most', 'return imported.readRegularFileSync(args[0], 100, { noFollow: args[1] })', [fifo, noFollow])).toEqual({
        error: `${fifo} is not a regular file`,
        name: 'IrregularFileError',
      });
    }
  });
});
