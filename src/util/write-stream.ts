/**
 * Writing to bento's output streams: waiting until a text is handed over,
 * and surviving a reader that went away.
 */
import type { Writable } from 'node:stream';

/**
 * Writes `text` and resolves once the stream has taken it, so that nothing
 * is lost when the CLI exits right after (process.exitCode, then the end of
 * the event loop, flushes what was handed over; an unflushed pipe write of
 * a process that exits would be cut). Resolves, too, when the write fails:
 * what failed is the output's to say (guardOutput), not this write's.
 */
export function writeText(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}

/** A failed write's error: its code says whether the reader went away (EPIPE). */
type WriteError = Error & { code?: string };

/** The first write error of a stream that guardOutput watches; undefined while there is none. */
export interface OutputGuard {
  readonly error: WriteError | undefined;
}

const guards = new WeakMap<Writable, { error: WriteError | undefined }>();

/**
 * Keeps a write error on `stream` (the process's stdout or stderr) from
 * ending the process. A stream with no 'error' listener throws its error at
 * the top of the event loop: `bento status | head -1`, whose reader exits
 * after one line (EPIPE), printed a stack trace, and `bento deploy | head`
 * died at its first line, publishing nothing (exit status 1). The
 * command goes on, its output going nowhere; runCli then reports an error
 * that is not a reader gone (outputFailure). One guard per stream, however
 * often it is asked for.
 */
export function guardOutput(stream: Writable): OutputGuard {
  let guard = guards.get(stream);
  if (!guard) {
    const made: { error: WriteError | undefined } = { error: undefined };
    stream.on('error', (error: WriteError) => {
      made.error ??= error;
    });
    guards.set(stream, made);
    guard = made;
  }
  return guard;
}

/**
 * What to tell the user about the output `guard` watched, `what` naming it:
 * undefined when it was all written, or its reader went away (EPIPE: as
 * `head` or a closed pager does, on purpose; and there is nobody to tell).
 */
export function outputFailure(guard: OutputGuard, what: string): string | undefined {
  const error = guard.error;
  if (!error || error.code === 'EPIPE') return undefined;
  return `${what} could not be written: ${error.message}`;
}

/**
 * Runs `run` (a command line) with its output `stdout` and its messages
 * `stderr` guarded (guardOutput), and returns its exit status; at least 1
 * when one of them failed other than by a reader gone, said on `stderr`
 * when it was the output.
 */
export async function runWithGuardedOutput(stdout: Writable, stderr: Writable, run: () => Promise<number>): Promise<number> {
  const output = guardOutput(stdout);
  const messages = guardOutput(stderr);
  const exitCode = await run();
  // The errors of the last writes are emitted on the next ticks.
  await new Promise((resolve) => setImmediate(resolve));
  const failure = outputFailure(output, 'the output');
  if (failure) stderr.write(`bento: error: ${failure}\n`);
  return failure || outputFailure(messages, 'the messages') ? Math.max(exitCode, 1) : exitCode;
}
