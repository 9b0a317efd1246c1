/**
 * The wrapper flake's directory (src/nix/wrapper-flake.ts): its flake.nix
 * as given, readable by everyone whatever the umask (the evaluator reads
 * it), and the directory gone afterwards, also when its use fails.
 * Process tier: as root, the directory is handed to the evaluator's group.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withWrapperFlake } from '../../src/nix/wrapper-flake.js';

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
