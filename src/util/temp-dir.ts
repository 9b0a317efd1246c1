/**
 * bento's working directories in the system's temporary directory
 * (snapshots of hosts/, build staging). Each carries the pid of the process
 * that made it, so that what a killed bento left behind (SIGKILL runs no
 * cleanup) is removed by the next one: a directory whose process is gone is
 * stale.
 */
import { lstatSync, mkdtempSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { removeTakingOver } from './remove-taking-over.js';

const NAME = /^bento-([a-z]+)-(\d+)-[A-Za-z0-9]{6}$/;
let swept = false;

/**
 * The temporary directory cannot hold bento's directories (TMPDIR names one
 * that is missing, or read-only): the user's to fix, which the CLI reports
 * as such, not as a bug. (util/ is under errors.ts: it cannot throw its
 * UserError.)
 */
export class TempDirError extends Error {
  readonly hint = 'set TMPDIR to a directory bento may write, or unset it (then /tmp)';
  constructor(message: string) {
    super(message);
    this.name = 'TempDirError';
  }
}

/** A new private (0700) directory `bento-<purpose>-<pid>-XXXXXX` in the temporary directory. */
export function makeTempDir(purpose: string): string {
  if (!swept) {
    swept = true;
    removeStaleTempDirs();
  }
  const dir = os.tmpdir();
  try {
    return mkdtempSync(path.join(dir, `bento-${purpose}-${process.pid}-`));
  } catch (error) {
    throw new TempDirError(`the temporary directory ${dir} cannot hold bento's working directories: ${(error as Error).message}`);
  }
}

const removals = new Set<Promise<void>>();

/**
 * Starts removing `dir` and returns at once: the removal of a large tree
 * (a build's staging copies) then runs while the command goes on (to
 * publish), instead of before (bench/README.md). Node finishes it before
 * the process exits; tempDirsRemoved waits for it. Should it fail, or the
 * process be killed first, the next bento removes what is left
 * (removeStaleTempDirs).
 */
export function removeTempDirLater(dir: string): void {
  const removal = rm(dir, { recursive: true, force: true })
    .catch(() => undefined)
    .finally(() => removals.delete(removal));
  removals.add(removal);
}

/** Waits for the removals removeTempDirLater started. */
export async function tempDirsRemoved(): Promise<void> {
  await Promise.all([...removals]);
}

/**
 * Removes the temporary directories of bento processes that no longer run.
 * Only real directories of this user: anyone can make a directory or link
 * of that name in /tmp, and root must not delete another user's files (or
 * follow a link) because of a name.
 */
export function removeStaleTempDirs(dir = os.tmpdir()): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const entry of entries) {
    const match = NAME.exec(entry);
    if (!match || isRunning(Number(match[2]))) continue;
    const file = path.join(dir, entry);
    const stats = lstatSync(file, { throwIfNoEntry: false });
    if (!stats?.isDirectory() || (uid !== undefined && stats.uid !== uid)) continue;
    // One may hold the evaluator's home (nix/unprivileged.ts), another user's.
    removeTakingOver(file);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
