import { describe, expect, it } from 'vitest';
import { printLine, warnLine } from '../../src/commands/io.js';
import { createProgress } from '../../src/progress.js';
import { Collector } from '../helpers/collect.js';

describe('a command io', () => {
  it('keeps stdout for results: a warning among them goes to stderr, with or without a status line', () => {
    for (const withProgress of [false, true]) {
      const stdout = new Collector();
      const stderr = new Collector();
      const io = { stdout, stderr, progress: withProgress ? createProgress(stdout, false) : undefined };
      printLine(io, '  ok  a');
      warnLine(io, 'hosts/x/update.sh is replaced\x1b[31m');
      expect(stdout.text).toBe('  ok  a\n');
      expect(stderr.text).toBe('  warning: hosts/x/update.sh is replaced\\x1b[31m\n');
    }
  });
});
