import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../src/progress.js';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('progress', () => {
  it('writes plain lines when not interactive', () => {
    const out = capture();
    const progress = createProgress(out.stream, false);
    progress.start(2, 'built');
    progress.print('  ok  a');
    progress.advance();
    progress.stop();
    expect(out.text()).toBe('  ok  a\n');
  });

  it('keeps a status line with counts and elapsed time under the output on a terminal', () => {
    const out = capture();
    const progress = createProgress(out.stream, true);
    progress.start(2, 'built');
    progress.print('  ok  a');
    progress.advance();
    progress.stop();
    expect(out.text()).toMatch(/^\r\x1b\[Kbuilt 0\/2 · 0\.\ds\r\x1b\[K {2}ok {2}a\nbuilt 0\/2 · 0\.\ds\r\x1b\[Kbuilt 1\/2 · 0\.\ds\r\x1b\[K$/);
  });
});
