/**
 * The wrapper flake's directory (src/nix/wrapper-flake.ts): its flake.nix
 * as given, readable by everyone whatever the umask (the evaluator reads
 * it), and the directory gone afterwards, also when its use fails.
 * Process tier: as root, the directory is handed to the evaluator's group;
 * with a lock file, only that file is the evaluator's.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withWrapperFlake } from '../../src/nix/wrapper-flake.js';
import { NO_INPUTS_LOCK } from '../../src/nix/flake-lock.js';
import { EVALUATOR_USER, FALLBACK_EVALUATOR_USER } from '../../src/nix/unprivileged.js';

/** Runs `sh -c script` as the user who evaluates fleet code as root (the one bento finds: its own user, else the fallback). */
function asEvaluator(script: string, ...args: string[]) {
  const passwd = spawnSync('getent', ['passwd', EVALUATOR_USER], { encoding: 'utf8' }).stdout || spawnSync('getent', ['passwd', FALLBACK_EVALUATOR_USER], { encoding: 'utf8' }).stdout;
  const [, , uid, gid] = passwd.split(':');
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', script, 'sh', ...args], { encoding: 'utf8' });
}

describe('withWrapperFlake', () => {
  it('writes flake.nix 0644 whatever the umask, gives its directory to the use, returns its result, then removes the directory', async () => {
    const before = process.umask(0o077);
    let seen = '';
    try {
      const result = await withWrapperFlake('wrapper-test', '{ outputs = _: { }; }\n', async (dir) => {
        seen = dir;
        const flakeFile = path.join(dir, 'flake.nix');
        expect(readFileSync(flakeFile, 'utf8')).toBe('{ outputs = _: { }; }\n');
        expect(statSync(flakeFile).mode & 0o777).toBe(0o644);
        return 42;
      });
      expect(result).toBe(42);
    } finally {
      process.umask(before);
    }
    expect(seen).not.toBe('');
    expect(existsSync(seen)).toBe(false);
  });

  it('with lockFile: a flake.lock with no inputs the evaluator may rewrite, in a directory that stays bento\'s (the evaluator can neither rename it nor add to it)', async () => {
    let seen = '';
    await withWrapperFlake(
      'wrapper-test',
      '{ outputs = _: { }; }\n',
      async (dir) => {
        seen = dir;
        expect(statSync(dir).uid).toBe(process.getuid?.());
        const lockFile = path.join(dir, 'flake.lock');
        expect(readFileSync(lockFile, 'utf8')).toBe(NO_INPUTS_LOCK);
        expect(statSync(lockFile).mode & 0o777).toBe(0o644);
        if (process.getuid?.() !== 0) return;
        // As root, another user evaluates: it rewrites the file in place, as Nix does, and nothing more.
        const rewrite = asEvaluator('printf x > "$1/flake.lock"', dir);
        expect(rewrite.status, rewrite.stderr).toBe(0);
        expect(readFileSync(lockFile, 'utf8')).toBe('x');
        for (const script of ['mv "$1" "$1.moved"', 'mkdir "$1/sub"', 'rm "$1/flake.lock"', 'printf x > "$1/flake.nix"']) {
          expect(asEvaluator(script, dir).status, script).not.toBe(0);
        }
      },
      { lockFile: true },
    );
    expect(existsSync(seen)).toBe(false);
    expect(existsSync(`${seen}.moved`)).toBe(false);
  });

  it('removes the directory when the use throws, and passes the error on', async () => {
    let seen = '';
    await expect(
      withWrapperFlake('wrapper-test', '{ }\n', async (dir) => {
        seen = dir;
        throw new Error('nix failed');
      }),
    ).rejects.toThrow('nix failed');
    expect(existsSync(seen)).toBe(false);
  });
});
