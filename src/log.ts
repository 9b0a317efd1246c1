/**
 * Messages for people go to stderr, results to stdout. Debug lines (every
 * external command) appear with BENTO_DEBUG=1.
 */

import { sanitize } from './sanitize.js';

const debugEnabled = Boolean(process.env.BENTO_DEBUG);

/** Like sanitize, line by line: a multi-line message keeps its lines. */
export function sanitizeLines(text: string): string {
  return text.split('\n').map(sanitize).join('\n');
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${sanitizeLines(message)}\n`);
}

export function debug(message: string): void {
  if (debugEnabled) process.stderr.write(`debug: ${message}\n`);
}
