/** The typed errors: what each carries, and the short reason of a file-system error. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeError, errorCode, MissingToolError, ToolError, UserError, UserErrors } from '../src/errors.js';

describe('the typed errors', () => {
  it('a UserError carries its hint; UserErrors all its problems, one a line', () => {
    const error = new UserError('no fleet here', 'run bento init');
    expect([error.name, error.message, error.hint]).toEqual(['UserError', 'no fleet here', 'run bento init']);
    const several = new UserErrors(['a is wrong', 'b is wrong']);
    expect(several).toBeInstanceOf(UserError);
    expect([several.name, several.message, several.problems]).toEqual(['UserErrors', 'a is wrong\nb is wrong', ['a is wrong', 'b is wrong']]);
  });

  it('a ToolError names the command and its exit status, or the signal, unless given a summary', () => {
    expect(new ToolError('nix build .#x', 1, 'tail').message).toBe('command failed (exit 1): nix build .#x');
    expect(new ToolError('nix build .#x', undefined, '').message).toBe('command failed (exit signal): nix build .#x');
    const summarized = new ToolError('nix build', 1, 'error: x', 'nix build failed: x');
    expect([summarized.name, summarized.message, summarized.command, summarized.exitCode, summarized.stderrTail]).toEqual(['ToolError', 'nix build failed: x', 'nix build', 1, 'error: x']);
  });

  it('a MissingToolError is the user\'s to fix, with the install hint', () => {
    const error = new MissingToolError('nix', 'install Nix');
    expect(error).toBeInstanceOf(UserError);
    expect([error.name, error.message, error.hint, error.tool]).toEqual(['MissingToolError', 'nix was not found on PATH', 'install Nix', 'nix']);
  });
});

describe('errorCode and describeError', () => {
  it('give the errno code of a file-system error, else the message', () => {
    let failure: unknown;
    try {
      readFileSync('/nonexistent/bento-errors-test');
    } catch (error) {
      failure = error;
    }
    expect(errorCode(failure)).toBe('ENOENT');
    expect(describeError(failure)).toBe('ENOENT');
    expect(errorCode(new Error('plain'))).toBeUndefined();
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('a string')).toBe('a string');
    expect(errorCode(undefined)).toBeUndefined();
  });
});
