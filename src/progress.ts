/**
 * Live progress for long steps. On a terminal, a status line under the
 * output ("building 3/40 · 12.4s") is redrawn as work finishes and every
 * second; lines printed meanwhile appear above it. Piped, only the lines are
 * written, plainly.
 */
import type { Writable } from 'node:stream';

export interface Progress {
  /** Prints a line of output (above the status line on a terminal). */
  print(line: string): void;
  /** Prints a line on another stream (stderr) that shares the terminal: the status line is taken away, then drawn again. */
  printOn(other: Writable, line: string): void;
  /** Starts counting `total` items of work called `label`. */
  start(total: number, label: string): void;
  /** One item is done. */
  advance(): void;
  /** Removes the status line. */
  stop(): void;
}

export function createProgress(stream: Writable & { isTTY?: boolean }, interactive = Boolean(stream.isTTY)): Progress {
  let total = 0;
  let done = 0;
  let label = '';
  let startedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const status = () => `${label} ${done}/${total} · ${((Date.now() - startedAt) / 1000).toFixed(1)}s`;
  const redraw = () => {
    if (timer) stream.write(`\r\x1b[K${status()}`);
  };
  return {
    print(line) {
      stream.write(timer ? `\r\x1b[K${line}\n${status()}` : `${line}\n`);
    },
    printOn(other, line) {
      if (timer) stream.write('\r\x1b[K');
      other.write(`${line}\n`);
      if (timer) stream.write(status());
    },
    start(count, what) {
      total = count;
      done = 0;
      label = what;
      startedAt = Date.now();
      if (!interactive || count === 0) return;
      timer = setInterval(redraw, 1000);
      timer.unref();
      redraw();
    },
    advance() {
      done += 1;
      redraw();
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = undefined;
      stream.write('\r\x1b[K');
    },
  };
}
