/**
 * A small flake bento writes whose inputs are the fleet's flakes, so that
 * one pure Nix evaluation answers for all of them (their system names,
 * flake-names.ts; their toplevels, build.ts): `builtins.getFlake` on a
 * directory would need impure mode, and a `nix build` of several
 * installables fetches an uncommitted flake again for each.
 */
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../util/temp-dir.js';
import { NO_INPUTS_LOCK } from './flake-lock.js';
import { shareWithEvaluator, writableByEvaluator } from './unprivileged.js';

/**
 * Writes `flakeText` as flake.nix of a fresh directory the evaluator can
 * read (unprivileged.ts), runs `use` with that directory, and removes it.
 * `purpose` names the temporary directory. With `lockFile`, the directory
 * also holds a flake.lock with no inputs (NO_INPUTS_LOCK) that the evaluator may rewrite
 * (writableByEvaluator), where Nix writes the wrapper's lock (read it with
 * readEvaluatorFile); the directory itself stays bento's.
 */
export async function withWrapperFlake<T>(purpose: string, flakeText: string, use: (dir: string) => Promise<T>, options: { lockFile?: boolean } = {}): Promise<T> {
  const dir = makeTempDir(purpose);
  try {
    await shareWithEvaluator(dir);
    const flakeFile = path.join(dir, 'flake.nix');
    writeFileSync(flakeFile, flakeText);
    chmodSync(flakeFile, 0o644); // whatever the umask: the evaluator reads it
    if (options.lockFile) await writableByEvaluator(path.join(dir, 'flake.lock'), NO_INPUTS_LOCK);
    return await use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Evaluations through a wrapper flake run on one thread per Nix process,
 * and Nix fetches the flakes one after the other: many flakes are shared
 * among up to `--jobs` processes side by side, at least this many each so
 * that each repays its start (bench/README.md).
 */
export const FLAKES_PER_EVALUATOR = 16;
