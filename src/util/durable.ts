/**
 * Flushing what bento records or publishes to the disk before it counts.
 *
 * A rename is atomic, but not durable by itself: after a power cut the file
 * system may hold the rename and not the data it named (ext4 without
 * auto_da_alloc, XFS, btrfs), leaving states.txt, rollout.json or a
 * published file empty. So what is to be renamed into place is flushed
 * first (fsync(2) of the file), and the directory that holds the new name is
 * flushed after the rename (fsync of a directory makes its entries durable:
 * fsync(2), "Calling fsync() does not necessarily ensure that the entry in
 * the directory containing the file has also reached disk").
 *
 * Files are opened read-only to be flushed: on Linux, fsync through any
 * descriptor writes the inode's dirty data, and a read-only open never
 * creates or truncates anything. Never through a link, and without
 * waiting: a file flushed by its name in a directory others write (a
 * flake.lock of the fleet's) may have been replaced by a FIFO, whose
 * opening for reading would wait for a writer forever (fsync of a FIFO
 * then fails, EINVAL).
 */
import { closeSync, constants, fsyncSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from './concurrency.js';

/** How a file or directory is opened to be flushed. */
const TO_FLUSH = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Writes `file`'s data and metadata (a regular file or a directory) to the disk. */
export function flushSync(file: string): void {
  const fd = openSync(file, TO_FLUSH);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The same, asynchronously. */
export async function flush(file: string): Promise<void> {
  const handle = await open(file, TO_FLUSH);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes the directory holding `file`: after a rename into it, or a new entry. */
export function flushParentSync(file: string): void {
  flushSync(path.dirname(file));
}

/**
 * Flushes every file and directory of the tree at `dir` (links are not
 * followed; a link's own entry is made durable with its directory), the
 * directories after what they hold: a tree written under a temporary name
 * is then whole on the disk before it is renamed into place.
 */
export function flushTreeSync(dir: string): void {
  for (const entry of treeToFlush(dir)) flushSync(entry);
}

/** What flushTreeSync flushes, in its order: the files and directories of the tree at `dir`, each directory after what it holds. */
export function treeToFlush(dir: string): string[] {
  const entries: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) entries.push(...treeToFlush(entryPath));
    else if (entry.isFile()) entries.push(entryPath);
  }
  if (lstatSync(dir).isDirectory()) entries.push(dir);
  return entries;
}

/**
 * Steps of a durable write, as a generator: each `yield` hands over the
 * paths that must be on the disk before the write goes on, and a flush
 * that fails is thrown at that `yield`. The same steps then run alone
 * (runStepsSync: each flush in turn, as flushSync would) or many writes in
 * step together (runStepsTogether), their flushes at once: the disk then
 * commits many in one journal transaction instead of one each, without
 * any write going on before its own files are flushed (bench/README.md).
 */
export type DurableSteps<T> = Generator<readonly string[], T, void>;

/** Runs `steps`, flushing what each step asks for one path after the other. */
export function runStepsSync<T>(steps: DurableSteps<T>): T {
  let next = steps.next();
  while (!next.done) {
    let failure: { error: unknown } | undefined;
    try {
      for (const file of next.value) flushSync(file);
    } catch (error) {
      failure = { error };
    }
    next = failure ? steps.throw(failure.error) : steps.next();
  }
  return next.value;
}

/** How each of runStepsTogether's writes ended: its value, or what it threw. */
export type StepsOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** At most this many flushes at a time: each holds a descriptor open, and Node's thread pool runs a few at once anyway. */
const FLUSHES_AT_ONCE = 32;

/**
 * Runs every one of `writes` step by step together: the first steps of all,
 * then every path they asked for flushed at once, then the second steps of
 * those that asked, and so on. One write's failure (thrown by its steps, or
 * one of its flushes) is its own; the others go on.
 */
export async function runStepsTogether<T>(writes: readonly DurableSteps<T>[]): Promise<StepsOutcome<T>[]> {
  const outcomes = new Array<StepsOutcome<T>>(writes.length);
  const advance = (index: number, resume: () => IteratorResult<readonly string[], T>): readonly string[] | undefined => {
    try {
      const next = resume();
      if (!next.done) return next.value;
      outcomes[index] = { ok: true, value: next.value };
    } catch (error) {
      outcomes[index] = { ok: false, error };
    }
    return undefined;
  };
  let waiting = new Map<number, readonly string[]>();
  writes.forEach((steps, index) => {
    const asked = advance(index, () => steps.next());
    if (asked) waiting.set(index, asked);
  });
  while (waiting.size > 0) {
    const flushes = [...waiting].flatMap(([index, files]) => files.map((file) => ({ index, file })));
    const failures = new Map<number, unknown>();
    await mapLimit(flushes, FLUSHES_AT_ONCE, async ({ index, file }) => {
      if (failures.has(index)) return;
      try {
        await flush(file);
      } catch (error) {
        if (!failures.has(index)) failures.set(index, error);
      }
    });
    const next = new Map<number, readonly string[]>();
    for (const index of waiting.keys()) {
      const steps = writes[index] as DurableSteps<T>;
      const asked = failures.has(index) ? advance(index, () => steps.throw(failures.get(index))) : advance(index, () => steps.next());
      if (asked) next.set(index, asked);
    }
    waiting = next;
  }
  return outcomes;
}
