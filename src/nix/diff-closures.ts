/**
 * What `bento diff` asks of the store: which store paths are present here,
 * and the difference between two system closures, by nvd when it is
 * installed (a friendlier package list) and by `nix store diff-closures`
 * otherwise.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';
import { ToolError } from '../errors.js';
import { runNix, summarizeNixError } from './nix.js';

export const STORE_DIR = '/nix/store';

/** `/nix/store/<basename>`. */
export function storePathOf(basename: string): string {
  return `${STORE_DIR}/${basename}`;
}

/**
 * The store paths among `paths` that are valid in the local store, asked in
 * one `nix path-info --json` call. Nix 2.8 lists a missing path with
 * `"valid": false` and still exits 0, so nothing is fetched or built.
 */
export async function queryValidPaths(paths: readonly string[]): Promise<Set<string>> {
  if (paths.length === 0) return new Set();
  const result = await runNix(['path-info', '--json', ...new Set(paths)]);
  return parsePathInfoValidity(result.stdout, result.command);
}

/** Parses `nix path-info --json` output into the set of valid paths. */
export function parsePathInfoValidity(stdout: string, command = 'nix path-info --json'): Set<string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new ToolError(command, 0, stdout.slice(0, 500), `unexpected output from ${command}`);
  const valid = new Set<string>();
  for (const item of parsed) {
    if (typeof item !== 'object' || item === null) continue;
    const info = item as { path?: unknown; valid?: unknown };
    if (typeof info.path === 'string' && info.valid !== false) valid.add(info.path);
  }
  return valid;
}

/** The first executable file called `name` in the directories of `pathEnv` (a PATH value). */
export function findExecutable(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable: keep looking
    }
  }
  return undefined;
}

export type ClosureDiffTool = 'nvd' | 'nix';

/** nvd when it is on PATH (as the original bento did), else Nix's own diff-closures. */
export function chooseClosureDiffTool(pathEnv: string | undefined): ClosureDiffTool {
  return findExecutable('nvd', pathEnv) ? 'nvd' : 'nix';
}

export type ClosureDiff = { ok: true; command: string; output: string } | { ok: false; command: string; error: string };

/**
 * Compares the closures of two store paths (both must be in the local
 * store: check with queryValidPaths first, or Nix tries to fetch them).
 * The tool's output is returned as it is, colours included.
 */
export async function diffClosures(oldPath: string, newPath: string, tool: ClosureDiffTool): Promise<ClosureDiff> {
  const result =
    tool === 'nvd' ? await run('nvd', ['diff', oldPath, newPath], { allowFailure: true }) : await runNix(['store', 'diff-closures', oldPath, newPath], { allowFailure: true });
  if (result.failed) {
    const summary = tool === 'nix' ? summarizeNixError(result.stderr) : result.stderr.trim().split('\n').slice(-10).join('\n');
    return { ok: false, command: result.command, error: summary || `exited with ${result.exitCode}` };
  }
  return { ok: true, command: result.command, output: result.stdout };
}
