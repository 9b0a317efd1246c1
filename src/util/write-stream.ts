/**
 * Writing to a stream and waiting until the text is handed over, so nothing
 * is lost when the CLI exits right after (process.exitCode, then the end of
 * the event loop, flushes what was handed over; an unflushed pipe write of a
 * process that exits would be cut).
 */
import type { Writable } from 'node:stream';

export function writeText(stream: Writable, text: string): Promise<void> {
  // A reader that went away (`bento status | head -1`) is not an error of bento's.
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}
