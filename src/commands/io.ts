/**
 * The one contract of every command: `(options, io) => Promise<exit status>`.
 * Options are typed and already read from flags and the environment by
 * cli.ts; io is where the command talks to its user. A command returns its
 * exit status, or throws a typed error (errors.ts) that cli.ts reports.
 */
import type { Writable } from 'node:stream';
import type { Progress } from '../progress.js';
import { sanitizeLines } from '../log.js';
import { writeText } from '../util/write-stream.js';

export interface CommandIO {
  /** Results: tables, JSON, build lines. */
  stdout: Writable & { isTTY?: boolean };
  /** Messages for people: summaries, warnings, errors. */
  stderr: Writable;
  /** The status line of long steps (builds); lines printed through it land on stdout. */
  progress?: Progress;
  /** Asks a question on the terminal; resolves to the answer ('' when there is none). */
  ask?: (question: string) => Promise<string>;
}

/** Writes one line to stderr (sanitized: it may quote names from the fleet or the chroot). */
export function tell(io: CommandIO, message: string): Promise<void> {
  return writeText(io.stderr, `${sanitizeLines(message)}\n`);
}

/** `warning: …` on stderr. */
export function warnUser(io: CommandIO, message: string): Promise<void> {
  return tell(io, `warning: ${message}`);
}

/** A line of results: through the progress line when there is one (it stays under the output), else on stdout. */
export function printLine(io: CommandIO, line: string): void {
  const text = sanitizeLines(line);
  if (io.progress) io.progress.print(text);
  else io.stdout.write(`${text}\n`);
}
