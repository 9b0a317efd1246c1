/** Text for people: sanitized line by line, so a multi-line message keeps its lines. */
import { describe, expect, it } from 'vitest';
import { indentedMessage, sanitizeLines } from '../src/log.js';

describe('sanitizeLines', () => {
  it('keeps the line breaks of a message and escapes every other control in each line', () => {
    expect(sanitizeLines('first line\nsecond line')).toBe('first line\nsecond line');
    expect(sanitizeLines('web-1\u001b]0;owned\u0007\nnext\r')).toBe('web-1\\x1b]0;owned\\x07\nnext\\x0d');
    expect(sanitizeLines('a\u202eb\n\n')).toBe('a\\u{202e}b\n\n');
  });
});

describe('indentedMessage', () => {
  it('keeps the lines of a message (never \\x0a), sanitized, the later ones indented under the first', () => {
    expect(indentedMessage("hosts/a/flake.nix: undefined variable 'foo'\n       at /nix/store/x-source/flake.nix:3:62:\u001b[2J")).toBe(
      "hosts/a/flake.nix: undefined variable 'foo'\n         at /nix/store/x-source/flake.nix:3:62:\\x1b[2J",
    );
  });
});
