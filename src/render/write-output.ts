/**
 * Writes rendered files into an output directory. Only files whose content
 * or mode changed are rewritten (each atomically, by rename), so mtimes say
 * what really changed; files that bento no longer produces are removed when
 * the caller knows the file set is complete.
 */
import { chmod, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from '../concurrency.js';
import type { RenderedFile } from './render-fleet.js';

export interface WriteSummary {
  written: string[];
  unchanged: number;
  removed: string[];
}

export interface OutputDifference {
  path: string;
  problem: 'missing' | 'content' | 'mode' | 'extra';
}

const IO_LANES = 32;

/** Compares the output directory with what it should hold. */
export async function diffOutput(outDir: string, files: readonly RenderedFile[], options: { includeExtra: boolean }): Promise<OutputDifference[]> {
  const differences = (
    await mapLimit(files, IO_LANES, async (file) => {
      const problem = await compareFile(path.join(outDir, file.path), file);
      return problem ? [{ path: file.path, problem }] : [];
    })
  ).flat();
  if (options.includeExtra) {
    const expected = new Set(files.map((file) => file.path));
    for (const existing of await listFiles(outDir)) {
      if (!expected.has(existing)) differences.push({ path: existing, problem: 'extra' });
    }
  }
  return differences.sort((a, b) => (a.path < b.path ? -1 : 1));
}

async function compareFile(target: string, file: RenderedFile): Promise<OutputDifference['problem'] | undefined> {
  let current: string;
  try {
    current = await readFile(target, 'utf8');
  } catch {
    return 'missing';
  }
  if (current !== file.content) return 'content';
  if (((await stat(target)).mode & 0o777) !== file.mode) return 'mode';
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
    if (difference.problem === 'extra') {
      await rm(target, { force: true });
      removed.push(difference.path);
      continue;
    }
    const file = byPath.get(difference.path) as RenderedFile;
    const dir = path.dirname(target);
    if (!createdDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      createdDirs.add(dir);
    }
    const temporary = `${target}.bento-tmp`;
    await writeFile(temporary, file.content, { mode: file.mode });
    await chmod(temporary, file.mode);
    await rename(temporary, target);
    written.push(difference.path);
  }
  if (removed.length > 0) await removeEmptyDirs(outDir);
  return { written, unchanged: files.length - written.length, removed };
}

/** Every regular file under `dir`, relative, with '/' separators. */
export async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true }).catch(() => []);
  const lists = await Promise.all(
    entries.map(async (entry) => {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) return listFiles(dir, relative);
      return [relative];
    }),
  );
  return lists.flat();
}

async function removeEmptyDirs(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let empty = true;
  for (const entry of entries) {
    if (entry.isDirectory() && (await removeEmptyDirs(path.join(dir, entry.name)))) {
      await rmdir(path.join(dir, entry.name));
    } else {
      empty = false;
    }
  }
  return empty;
}
