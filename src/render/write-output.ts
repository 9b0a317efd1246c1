/**
 * Writes rendered files into an output directory. Only files whose content
 * or mode changed are rewritten (each atomically, by rename), so mtimes say
 * what really changed; files that bento no longer produces are removed when
 * the caller knows the file set is complete. Synchronous on purpose: for
 * thousands of small files it is several times faster than the thread pool.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { RenderedFile } from './render-fleet.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { byText } from '../util/text.js';

export interface WriteSummary {
  written: string[];
  unchanged: number;
  removed: string[];
}

export interface OutputDifference {
  path: string;
  problem: 'missing' | 'content' | 'mode' | 'extra';
}

/** Compares the output directory with what it should hold. */
export async function diffOutput(outDir: string, files: readonly RenderedFile[], options: { includeExtra: boolean }): Promise<OutputDifference[]> {
  const differences: OutputDifference[] = [];
  for (const file of files) {
    const problem = compareFile(path.join(outDir, file.path), file);
    if (problem) differences.push({ path: file.path, problem });
  }
  if (options.includeExtra) {
    const expected = new Set(files.map((file) => file.path));
    for (const existing of await listFiles(outDir)) {
      if (!expected.has(existing)) differences.push({ path: existing, problem: 'extra' });
    }
  }
  return differences.sort(byText((difference) => difference.path));
}

function compareFile(target: string, file: RenderedFile): OutputDifference['problem'] | undefined {
  let current: string;
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    return 'missing';
  }
  if (current !== file.content) return 'content';
  if ((statSync(target).mode & 0o777) !== file.mode) return 'mode';
  return undefined;
}

/**
 * Brings `outDir` to hold exactly `files`. With `prune: false` (the file set
 * is partial, e.g. a flake failed to evaluate) nothing is removed.
 */
export async function writeOutput(outDir: string, files: readonly RenderedFile[], options: { prune: boolean }): Promise<WriteSummary> {
  const differences = await diffOutput(outDir, files, { includeExtra: options.prune });
  const byPath = new Map(files.map((file) => [file.path, file]));
  const written: string[] = [];
  const removed: string[] = [];
  const createdDirs = new Set<string>();
  for (const difference of differences) {
    const target = path.join(outDir, difference.path);
    try {
      writeDifference(difference, target);
    } catch (error) {
      throw new UserError(`cannot write ${target}: ${(error as Error).message}`, 'generated/ must be a directory bento can write (it owns everything in it)');
    }
  }
  if (removed.length > 0) removeEmptyDirs(outDir);
  return { written, unchanged: files.length - written.length, removed };

  function writeDifference(difference: OutputDifference, target: string): void {
    if (difference.problem === 'extra') {
      rmSync(target, { force: true });
      removed.push(difference.path);
      return;
    }
    const file = byPath.get(difference.path) as RenderedFile;
    const dir = path.dirname(target);
    if (!createdDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      createdDirs.add(dir);
    }
    writeFileAtomicallySync(target, file.content, file.mode);
    written.push(difference.path);
  }
}

/** Every regular file under `dir`, relative, with '/' separators. */
export async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = (prefix: string) => {
    let entries;
    try {
      entries = readdirSync(path.join(dir, prefix), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(relative);
      else found.push(relative);
    }
  };
  walk('');
  return found;
}

function removeEmptyDirs(dir: string): boolean {
  let empty = true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory() && removeEmptyDirs(child)) rmdirSync(child);
    else empty = false;
  }
  return empty;
}
