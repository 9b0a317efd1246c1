/**
 * util/hash.ts's sha256File on what a fleet writer may put where a host
 * file was: a FIFO (opening it would wait for a writer forever) or a link
 * to /dev/zero (a read without end). Run in a child process
 * (test/helpers/bounded-child.ts), which either would leave hanging: both
 * must be refused at once.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBounded } from '../helpers/bounded-child.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-hash-fifo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sha256File on what is not a regular file', () => {
  it('refuses a FIFO and a link to /dev/zero at once, naming them', () => {
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const zero = path.join(dir, 'zero');
    symlinkSync('/dev/zero', zero);
    for (const file of [fifo, zero]) {
      expect(runBounded('util/hash', 'return imported.sha256File(args[0])', [file])).toEqual({ error: `${file} is not a regular file`, name: 'IrregularFileError' });
    }
  });
});
