/**
 * Text for people. Messages quote names from the fleet and the chroot, so
 * they are sanitized line by line; debug lines (every external command)
 * appear on stderr with BENTO_DEBUG=1.
 */
import { sanitize } from './util/sanitize.js';

const debugEnabled = Boolean(process.env.BENTO_DEBUG);

/** Like sanitize, line by line: a multi-line message keeps its lines. */
export function sanitizeLines(text: string): string {
  return text.split('\n').map(sanitize).join('\n');
}

/** A message for stderr: sanitized line by line (a Nix error keeps its lines), the lines after the first indented under it. */
export function indentedMessage(message: string): string {
  return sanitizeLines(message).replace(/\n/g, '\n  ');
}

export function debug(message: string): void {
  if (debugEnabled) process.stderr.write(`debug: ${message}\n`);
}
