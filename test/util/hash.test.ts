import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256, sha256File } from '../../src/util/hash.js';
import { IrregularFileError } from '../../src/util/read-at-most.js';

describe('sha256File', () => {
  it('hashes like sha256sum', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-hash-'));
    try {
      const file = path.join(dir, 'small');
      writeFileSync(file, 'bento\n');
      expect(sha256File(file)).toBe(sha256('bento\n'));
      expect(sha256File(file)).toBe(execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hashes a large file in bounded memory (reading it whole would add its size to the peak)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-hash-'));
    try {
      const file = path.join(dir, 'large');
      const size = 512 * 1024 * 1024;
      execFileSync('truncate', ['-s', String(size), file]);
      const before = process.resourceUsage().maxRSS * 1024;
      const digest = sha256File(file);
      const grown = process.resourceUsage().maxRSS * 1024 - before;
      expect(grown, `peak memory grew by ${grown} bytes`).toBeLessThan(64 * 1024 * 1024);
      expect(digest).toBe(execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a file that holds more than the size it had when opened: it is read no further (a FIFO, /dev/zero: hash-fifo.test.ts)', () => {
    // A file of /proc is a regular file of size 0 that holds more, as one its owner grows while it is read.
    expect(() => sha256File('/proc/self/status')).toThrow(new IrregularFileError('/proc/self/status', 'changed while read'));
  });
});
