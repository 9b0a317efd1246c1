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

  it('prints a line on another stream (stderr) with the status line taken away first and drawn again after', () => {
    const out = capture();
    const err = capture();
    const progress = createProgress(out.stream, true);
    progress.start(2, 'built');
    progress.printOn(err.stream, '  warning: w');
    progress.stop();
    expect(err.text()).toBe('  warning: w\n');
    expect(out.text()).toMatch(/^\r\x1b\[Kbuilt 0\/2 · 0\.\ds\r\x1b\[Kbuilt 0\/2 · 0\.\ds\r\x1b\[K$/);
    const plain = { out: capture(), err: capture() };
    createProgress(plain.out.stream, false).printOn(plain.err.stream, 'w');
    expect([plain.out.text(), plain.err.text()]).toEqual(['', 'w\n']);
  });
});
