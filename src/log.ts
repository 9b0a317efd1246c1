/**
 * Messages for people go to stderr, results to stdout. Debug lines (every
 * external command) appear with BENTO_DEBUG=1.
 */

const debugEnabled = Boolean(process.env.BENTO_DEBUG);

/** Replaces control characters so names read from disk cannot drive the terminal. */
export function sanitize(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${sanitize(message)}\n`);
}

export function debug(message: string): void {
  if (debugEnabled) process.stderr.write(`debug: ${message}\n`);
}
