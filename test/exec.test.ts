/**
 * The one wrapper around external programs (src/exec.ts): a failure carries
 * the command and the tail of its output, a missing program its install
 * hint, and the deploy lock is a real flock that a second holder cannot take.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MissingToolError, ToolError } from '../src/errors.js';
import { formatCommand, holdFileLock, requireOnPath, run, tail } from '../src/exec.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-exec-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('formatCommand', () => {
  it('quotes for people the words a shell would split or expand', () => {
    expect(formatCommand('nix', ['build', '--json', '.#nixosConfigurations.a b', "it's", '$HOME'])).toBe(
      "nix build --json '.#nixosConfigurations.a b' 'it'\\''s' '$HOME'",
    );
  });
});

describe('run', () => {
  it('returns the output of a command that succeeds', async () => {
    const result = await run('sh', ['-c', 'echo out; echo err >&2']);
    expect(result).toMatchObject({ command: "sh -c 'echo out; echo err >&2'", exitCode: 0, stdout: 'out\n', stderr: 'err\n', failed: false });
  });

  it('throws a ToolError with the command, the exit status and the tail of stderr', async () => {
    const error = await run('sh', ['-c', 'seq 1 30 >&2; exit 3']).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ToolError);
    const toolError = error as ToolError;
    expect(toolError.command).toBe("sh -c 'seq 1 30 >&2; exit 3'");
    expect(toolError.exitCode).toBe(3);
    expect(toolError.stderrTail).toBe(Array.from({ length: 20 }, (_, i) => String(i + 11)).join('\n'));
    expect(toolError.message).toBe("command failed (exit 3): sh -c 'seq 1 30 >&2; exit 3'");
  });

  it('returns a failure instead with allowFailure', async () => {
    expect(await run('sh', ['-c', 'exit 4'], { allowFailure: true })).toMatchObject({ exitCode: 4, failed: true });
  });

  it('gives a missing program its install hint', async () => {
    const error = await run('nix', ['--version'], { env: { PATH: scratch }, extendEnv: false }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MissingToolError);
    expect((error as MissingToolError).message).toBe('nix was not found on PATH');
    expect((error as MissingToolError).tool).toBe('nix');
  });

  it('hands the child only env when extendEnv is false', async () => {
    process.env.BENTO_EXEC_TEST_SECRET = 'leak';
    try {
      const result = await run('/usr/bin/env', [], { env: { ONLY: 'this' }, extendEnv: false });
      expect(result.stdout).toBe('ONLY=this\n');
    } finally {
      delete process.env.BENTO_EXEC_TEST_SECRET;
    }
  });
});

describe('requireOnPath', () => {
  it('finds an executable on PATH and names a missing one with its hint', () => {
    expect(() => requireOnPath('sh', '/nonexistent::/bin')).not.toThrow();
    expect(() => requireOnPath('setpriv', scratch)).toThrow(MissingToolError);
    expect(() => requireOnPath('setpriv', scratch)).toThrow('setpriv was not found on PATH');
  });
});

describe('tail', () => {
  it('keeps the last lines, without the final line end', () => {
    expect(tail('a\nb\nc\n', 2)).toBe('b\nc');
    expect(tail('only\n')).toBe('only');
  });
});

describe('holdFileLock', () => {
  it('is exclusive while held, and free again once released', async () => {
    const file = path.join(scratch, 'lock');
    const first = await holdFileLock(file);
    expect(first).toBeDefined();
    expect(await holdFileLock(file)).toBeUndefined();
    await first?.release();
    const again = await holdFileLock(file);
    expect(again).toBeDefined();
    await again?.release();
  });
});
