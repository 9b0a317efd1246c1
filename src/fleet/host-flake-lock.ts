/**
 * Updating the flake.lock of a flake under hosts/ without root's rights.
 * Locking fetches every input, and Nix reads a local input (`path:/…`,
 * `git+file:…`) with the rights of whoever runs it: as root it would copy
 * any directory of the server into the store and record its hash. So Nix,
 * as the evaluator (nix/unprivileged.ts), locks a copy of the flake's
 * directory that it may read and not change, but for the copy's flake.lock,
 * which Nix rewrites in place (shareTreeWithEvaluator, writableByEvaluator);
 * bento puts the lock file Nix wrote in place.
 * The copy is the directory as it is (a `path:` flake: files not yet added
 * to git are seen, the git index is left alone), made as for a deploy
 * (host-tree.ts: links inside the fleet followed, nothing unreadable).
 */
import { readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { NO_INPUTS_LOCK, updateFlakeLock } from '../nix/flake-lock.js';
import { readEvaluatorFile, shareTreeWithEvaluator, shareWithEvaluator, writableByEvaluator } from '../nix/unprivileged.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { makeTempDir } from '../util/temp-dir.js';
import { copyHostTree } from './host-tree.js';

export type HostLockUpdate = { ok: true; before: string | undefined; after: string | undefined } | { ok: false; error: string };

/**
 * Updates every input of the flake in `fleetDir/label` (`hosts/laptop`), or
 * only `input`. flake.lock is rewritten only when Nix changed it, keeping
 * its mode and owner. A flake.lock that cannot be copied (not a regular
 * file, not readable by everyone) comes back with the reason, as anything
 * else that fails; one the copy cannot read (a directory) is thrown (its
 * errno code).
 */
export async function updateHostFlakeLock(fleetDir: string, label: string, input?: string): Promise<HostLockUpdate> {
  const dir = path.join(fleetDir, label);
  const lockFile = path.join(dir, 'flake.lock');
  const work = makeTempDir('lock');
  try {
    await shareWithEvaluator(work);
    const copy = path.join(work, 'flake');
    try {
      copyHostTree(dir, copy, { where: label, boundary: fleetDir });
    } catch (error) {
      if (error instanceof UserError) return { ok: false, error: error.message };
      throw error;
    }
    await shareTreeWithEvaluator(copy);
    // The copy's flake.lock, or one with no inputs, which is how Nix reads
    // a missing lock (and leaves it missing for a flake with no inputs):
    // the one file the evaluator may write. It is also the lock as it was,
    // read from the copy (root's, made as for a deploy: a regular file, a
    // link only inside the fleet), never from hosts/, where a fleet writer
    // may put a FIFO in its place (root would wait for a writer for ever)
    // or a link to /dev/zero (a read without end).
    const copyLock = path.join(copy, 'flake.lock');
    const before = readIfPresent(copyLock);
    if (before !== undefined) unlinkSync(copyLock);
    await writableByEvaluator(copyLock, before ?? NO_INPUTS_LOCK);
    const result = await updateFlakeLock(copy, input);
    // Nix names the copy: name the flake instead.
    if (!result.ok) return { ok: false, error: result.error.split(copy).join(dir) };
    const written = readEvaluatorFile(copyLock);
    const after = before === undefined && written === NO_INPUTS_LOCK ? undefined : written;
    if (after !== undefined && after !== before) writeLockFile(lockFile, after);
    return { ok: true, before, after };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Replaces flake.lock atomically, with the mode and owner it had (a new
 * one: 0644, bento's user). The owner is given to the new file before it
 * has its name: the fleet's writers may replace flake.lock by a link at
 * any time, and a chown by name after the rename would follow it.
 */
function writeLockFile(file: string, content: string): void {
  const existing = statSync(file, { throwIfNoEntry: false });
  const owner = existing && process.getuid?.() === 0 ? { uid: existing.uid, gid: existing.gid } : undefined;
  writeFileAtomicallySync(file, content, existing ? existing.mode & 0o777 : 0o644, owner ? { owner } : {});
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
