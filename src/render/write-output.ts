/**
 * Writes rendered files into an output directory. Only files whose content
 * or mode changed are rewritten (each atomically, by rename), so mtimes say
 * what really changed; files that bento no longer produces are removed when
 * the caller knows the file set is complete. Synchronous on purpose: for
 * thousands of small files it is several times faster than the thread pool.
 *
 * generated/ lives in the fleet, which its writers control, and deploy runs
 * this as root: a symbolic link as the output directory, or as a directory
 * inside it, would make root write or delete files wherever it leads. So
 * nothing is ever written or removed through a link: such a directory is
 * refused before anything is touched, and a link where a file belongs is
 * replaced, never followed.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from 'node:fs';
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
  let stats;
  try {
    stats = lstatSync(target);
  } catch {
    return 'missing';
  }
  // A link (or anything else) where a file belongs is replaced by the rename, not read through.
  if (!stats.isFile() || readFileSync(target, 'utf8') !== file.content) return 'content';
  if ((stats.mode & 0o777) !== file.mode) return 'mode';
  return undefined;
}

/**
 * Refuses an output directory that is a symbolic link, or a directory inside
 * it that holds bento's files: checked before anything is read, written or
 * removed. (Extra files are found without following links, so a directory
 * they are removed from is never one.)
 */
function refuseLinkedDirs(outDir: string, files: readonly RenderedFile[]): void {
  const dirs = new Set<string>(['']);
  for (const file of files) {
    const parts = file.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const relative of [...dirs].sort()) {
    const dir = relative ? path.join(outDir, relative) : outDir;
    let isLink: boolean;
    try {
      isLink = lstatSync(dir).isSymbolicLink();
    } catch {
      continue; // missing: bento creates it
    }
    if (isLink) {
      throw new UserError(
        `${dir} is a symbolic link (to ${readlinkSync(dir)}): bento does not write or remove files through a link`,
        relative ? `remove the link: ${outDir} is bento's own output, it creates the directory` : 'make it a real directory (or remove it: bento creates it); with bento generate --output, name the directory itself',
      );
    }
  }
}

/**
 * Brings `outDir` to hold exactly `files`. With `prune: false` (the file set
 * is partial, e.g. a flake failed to evaluate) nothing is removed.
 */
export async function writeOutput(outDir: string, files: readonly RenderedFile[], options: { prune: boolean }): Promise<WriteSummary> {
  refuseLinkedDirs(outDir, files);
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
    // Not flushed: generated/ is rewritten by the next run, and deploy flushes
    // what it publishes from it (chroot/publish.ts).
    writeFileAtomicallySync(target, file.content, file.mode, { durable: false });
    written.push(difference.path);
  }
}

/** Every file under `dir` (anything but a directory: a link is listed, never followed), relative, with '/' separators. */
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
