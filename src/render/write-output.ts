/**
 * Writes rendered files into an output directory. Only files whose content
 * or mode changed are rewritten (each atomically, by rename), so mtimes say
 * what really changed; a file that is missing is created in place (there is
 * no older content to replace), and in a directory bento just made nothing
 * is looked for first. Files that bento no longer produces are removed when
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
import { closeSync, constants, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, rmdirSync, statSync, unlinkSync, writevSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { RenderedFile } from './render-fleet.js';
import { unlinkIfPresentSync, writeFileAtomicallySync } from '../util/atomic-write.js';
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

/** A file's content as UTF-8, in the parts it was rendered in (RenderedFile.bytes). */
function bytesOf(file: RenderedFile): readonly Buffer[] {
  return file.bytes ?? [Buffer.from(file.content, 'utf8')];
}

function lengthOf(parts: readonly Buffer[]): number {
  let length = 0;
  for (const part of parts) length += part.length;
  return length;
}

/** Compares the output directory with what it should hold. */
export async function diffOutput(outDir: string, files: readonly RenderedFile[], options: { includeExtra: boolean }): Promise<OutputDifference[]> {
  return differencesOf(outDir, files, new Set(), options.includeExtra);
}

/** The differences, given the directories known to be missing (their files are, without a look). */
async function differencesOf(outDir: string, files: readonly RenderedFile[], missingDirs: ReadonlySet<string>, includeExtra: boolean): Promise<OutputDifference[]> {
  const differences: OutputDifference[] = [];
  const reader = new FileReader();
  for (const file of files) {
    const problem = missingDirs.has(path.posix.dirname(file.path)) ? 'missing' : compareFile(path.join(outDir, file.path), file, reader);
    if (problem) differences.push({ path: file.path, problem });
  }
  if (includeExtra && !missingDirs.has('.')) {
    const expected = new Set(files.map((file) => file.path));
    for (const existing of await listFiles(outDir)) {
      if (!expected.has(existing)) differences.push({ path: existing, problem: 'extra' });
    }
  }
  return differences.sort(byText((difference) => difference.path));
}

/** Reads files into one buffer, grown as needed: comparing thousands of files allocates once. */
class FileReader {
  private buffer = Buffer.allocUnsafe(1 << 17);

  /** Whether the regular file `target` holds exactly `parts` (its size was checked). */
  holds(target: string, parts: readonly Buffer[], length: number): boolean {
    // One byte more than expected is asked for, so a file that grew since its lstat shows.
    if (this.buffer.length < length + 1) this.buffer = Buffer.allocUnsafe(length + 1);
    let fd: number;
    try {
      fd = openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      return false;
    }
    let read = 0;
    try {
      for (let n = 1; n > 0 && read <= length; read += n) n = readSync(fd, this.buffer, read, length + 1 - read, null);
    } catch {
      // Not a file that can be read now (a FIFO swapped in since its lstat: EAGAIN): it differs.
      return false;
    } finally {
      closeSync(fd);
    }
    if (read !== length) return false;
    let offset = 0;
    for (const part of parts) {
      if (!part.equals(this.buffer.subarray(offset, offset + part.length))) return false;
      offset += part.length;
    }
    return true;
  }
}

function compareFile(target: string, file: RenderedFile, reader: FileReader): OutputDifference['problem'] | undefined {
  let stats;
  try {
    stats = lstatSync(target);
  } catch {
    return 'missing';
  }
  // A link (or anything else) where a file belongs is replaced by the rename, not read through.
  if (!stats.isFile()) return 'content';
  const parts = bytesOf(file);
  const length = lengthOf(parts);
  if (stats.size !== length || !reader.holds(target, parts, length)) return 'content';
  if ((stats.mode & 0o777) !== file.mode) return 'mode';
  return undefined;
}

/**
 * Refuses an output directory that is a symbolic link, or a directory inside
 * it that holds bento's files: checked before anything is read, written or
 * removed. (Extra files are found without following links, so a directory
 * they are removed from is never one.) Returns the directories that are
 * missing ('.' for the output directory), which bento creates: what goes
 * into them need not be looked for.
 */
function refuseLinkedDirs(outDir: string, files: readonly RenderedFile[]): Set<string> {
  const dirs = new Set<string>(['.']);
  for (const file of files) {
    for (let dir = path.posix.dirname(file.path); dir !== '.' && !dirs.has(dir); dir = path.posix.dirname(dir)) dirs.add(dir);
  }
  const missing = new Set<string>();
  // Sorted, a directory comes before those inside it.
  for (const relative of [...dirs].sort()) {
    if (relative !== '.' && missing.has(path.posix.dirname(relative))) {
      missing.add(relative);
      continue;
    }
    const dir = path.join(outDir, relative);
    let stats;
    try {
      stats = lstatSync(dir);
    } catch {
      missing.add(relative); // bento creates it (or says why it cannot)
      continue;
    }
    if (stats.isSymbolicLink()) throw linkedDirError(outDir, relative);
  }
  return missing;
}

function linkedDirError(outDir: string, relative: string, target?: string): UserError {
  const dir = path.join(outDir, relative);
  return new UserError(
    `${dir} is a symbolic link (to ${target ?? readlinkSync(dir)}): bento does not write or remove files through a link`,
    relative !== '.' ? `remove the link: ${outDir} is bento's own output, it creates the directory` : 'make it a real directory (or remove it: bento creates it); with bento generate --output, name the directory itself',
  );
}

/**
 * Brings `outDir` to hold exactly `files`. With `prune: false` (the file set
 * is partial, e.g. a flake failed to evaluate) nothing is removed.
 */
export async function writeOutput(outDir: string, files: readonly RenderedFile[], options: { prune: boolean }): Promise<WriteSummary> {
  const missingDirs = refuseLinkedDirs(outDir, files);
  const differences = await differencesOf(outDir, files, missingDirs, options.prune);
  const byPath = new Map(files.map((file) => [file.path, file]));
  const written: string[] = [];
  const removed: string[] = [];
  const readyDirs = new Set<string>();
  if (differences.length === 0) return { written, unchanged: files.length, removed };
  // From here on synchronous: no other code of this process runs while the
  // working directory is the output's (OutputDirectory).
  const output = new OutputDirectory(outDir);
  try {
    for (const difference of differences) {
      const target = path.join(outDir, difference.path);
      try {
        writeDifference(difference);
      } catch (error) {
        if (error instanceof UserError) throw error;
        throw new UserError(`cannot write ${target}: ${(error as Error).message}`, 'generated/ must be a directory bento can write (it owns everything in it)');
      }
    }
    if (removed.length > 0) removeEmptyDirs(output, '.');
  } finally {
    output.leave();
  }
  return { written, unchanged: files.length - written.length, removed };

  /** Makes the missing directory `relative` and those it is in, as mkdir -p would. */
  function makeDir(relative: string): void {
    if (readyDirs.has(relative) || !missingDirs.has(relative)) return;
    if (relative !== '.') makeDir(path.posix.dirname(relative));
    try {
      if (relative === '.') {
        // The output directory's own parents are made as needed too.
        mkdirSync(path.resolve(outDir), { recursive: true });
      } else {
        output.enter(path.posix.dirname(relative));
        mkdirSync(path.posix.basename(relative));
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Made meanwhile by someone else: still never a link (OutputDirectory.enter refuses it).
    }
    readyDirs.add(relative);
  }

  /** Brings the file of `difference` to what it should be, in its directory entered (OutputDirectory). */
  function writeDifference(difference: OutputDifference): void {
    const dir = path.posix.dirname(difference.path);
    const name = path.posix.basename(difference.path);
    if (difference.problem === 'extra') {
      output.enter(dir);
      // unlink, never rm: a directory swapped in after rm's own look would be emptied (util/atomic-write.ts).
      unlinkIfPresentSync(name);
      removed.push(difference.path);
      return;
    }
    const file = byPath.get(difference.path) as RenderedFile;
    if (difference.problem === 'missing') makeDir(dir);
    output.enter(dir);
    // Not flushed: generated/ is rewritten by the next run, and deploy flushes
    // what it publishes from it (chroot/publish.ts).
    if (difference.problem !== 'missing' || !createFile(name, file)) {
      writeFileAtomicallySync(name, Buffer.concat(bytesOf(file)), file.mode, { durable: false });
    }
    written.push(difference.path);
  }

  /**
   * Writes a file that is missing in place, created with O_EXCL: there is no
   * older content a reader could see half replaced, and a file half written
   * (a crash) differs from what it should hold, so the next run replaces it.
   * False when something appeared at its name meanwhile: it is then
   * replaced as any other. `name` is in the directory entered.
   */
  function createFile(name: string, file: RenderedFile): boolean {
    let fd: number;
    try {
      fd = openSync(name, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, file.mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
    try {
      writeAll(fd, bytesOf(file));
      fchmodSync(fd, file.mode); // whatever the umask
    } catch (error) {
      closeSync(fd);
      unlinkSync(name);
      throw error;
    }
    closeSync(fd);
    return true;
  }
}

/**
 * The output directory, written and pruned by names relative to the
 * directory they are in, which is entered as the process's working
 * directory one component at a time: each looked at without following a
 * link, and checked, once entered, to be the directory looked at. The
 * fleet's writers control generated/ and deploy writes it as root: a
 * directory in it swapped for a link after refuseLinkedDirs looked (to
 * /etc, say) would otherwise make root write its files there, or remove
 * what an extra file's name names there. A path through it is never used
 * once a component is checked (Node 20 has no openat). Entering is
 * synchronous; leave() goes back where the process was.
 */
class OutputDirectory {
  private readonly home: string;
  /** The identity of that directory: `home` names it, but a writer of the directories on that path may have made it name another meanwhile. */
  private readonly homeIdentity: { dev: number; ino: number } | undefined;
  /** The output directory as an absolute path: entered again from anywhere. */
  private readonly absolute: string;
  /** The components entered below the output directory, each with the identity it was checked to have; undefined: not in the output. */
  private entered: { name: string; dev: number; ino: number }[] | undefined;

  /** `outDir` as the user named it (for messages). */
  constructor(private readonly outDir: string) {
    this.absolute = path.resolve(outDir);
    try {
      this.home = process.cwd();
      this.homeIdentity = statSync('.');
    } catch {
      this.home = '/'; // removed meanwhile: anywhere is as good
    }
  }

  /** Makes `relative` ('/'-separated, '.' for the output directory itself) the working directory. */
  enter(relative: string): void {
    const parts = relative === '.' ? [] : relative.split('/');
    let chain = this.entered;
    // Up to the deepest directory both share, each step back checked to be
    // the directory entered there ('..' of the directory the process is in:
    // no name is looked up on the way); from the top when none is shared.
    if (chain !== undefined) {
      let shared = 0;
      while (shared < chain.length && shared < parts.length && chain[shared]?.name === parts[shared]) shared++;
      while (chain.length > shared) {
        chain.pop();
        process.chdir('..');
        if (!this.isEntered(chain)) {
          chain = undefined;
          break;
        }
      }
    }
    this.entered = undefined;
    if (chain === undefined) {
      chain = [];
      this.step(this.absolute, '.');
    }
    for (let index = chain.length; index < parts.length; index++) {
      const name = parts[index] as string;
      chain.push({ name, ...this.step(name, parts.slice(0, index + 1).join('/')) });
    }
    this.entered = chain;
  }

  /** Goes back to the working directory the process had. */
  leave(): void {
    this.entered = undefined;
    try {
      process.chdir(this.home);
      // Another directory by now (the user was in generated/ or hosts/, and
      // a writer swapped it for a link): not there, where what runs next
      // (Nix, say) would start; no path bento uses is relative to it.
      const here = statSync('.');
      if (this.homeIdentity !== undefined && (here.dev !== this.homeIdentity.dev || here.ino !== this.homeIdentity.ino)) process.chdir('/');
    } catch {
      process.chdir('/');
    }
  }

  /** Whether the working directory is the last of `path` (or the output directory itself, for none). */
  private isEntered(chain: readonly { dev: number; ino: number }[]): boolean {
    const last = chain[chain.length - 1] ?? this.root;
    const here = statSync('.');
    return last !== undefined && here.dev === last.dev && here.ino === last.ino;
  }

  /** The output directory's identity, as entered first from its absolute path. */
  private root: { dev: number; ino: number } | undefined;

  /** Enters `name` (from the working directory, or the absolute output directory), the directory `relative` of the output; its identity. */
  private step(name: string, relative: string): { dev: number; ino: number } {
    const stats = lstatSync(name);
    if (stats.isSymbolicLink()) throw linkedDirError(this.outDir, relative, readlinkSync(name));
    // Not a directory: chdir says so (ENOTDIR), which the caller reports with the file it was writing.
    process.chdir(name);
    const here = statSync('.');
    // Entered again from its absolute path ('..' led elsewhere): the same
    // directory, never another one that path now leads to (through a link
    // above generated/, say), where the names of this run would be written and removed.
    const first = relative === '.' ? this.root : undefined;
    if (here.dev !== stats.dev || here.ino !== stats.ino || (first !== undefined && (first.dev !== stats.dev || first.ino !== stats.ino))) {
      throw new UserError(`${path.join(this.outDir, relative)} changed while bento wrote in it (replaced, by a link maybe): nothing more is written`, `make sure nothing rewrites ${this.outDir} during a run, and run it again`);
    }
    if (relative === '.') this.root ??= { dev: stats.dev, ino: stats.ino };
    return { dev: stats.dev, ino: stats.ino };
  }
}

function writeAll(fd: number, parts: readonly Buffer[]): void {
  let rest = parts.filter((part) => part.length > 0);
  while (rest.length > 0) {
    let done = writevSync(fd, rest);
    const left: Buffer[] = [];
    for (const part of rest) {
      if (done >= part.length) done -= part.length;
      else {
        left.push(part.subarray(done));
        done = 0;
      }
    }
    rest = left;
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

/** Removes the empty directories below `relative` of the output (not itself); whether it is empty. */
function removeEmptyDirs(output: OutputDirectory, relative: string): boolean {
  output.enter(relative);
  let empty = true;
  for (const entry of readdirSync('.', { withFileTypes: true })) {
    const child = relative === '.' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory() && removeEmptyDirs(output, child)) {
      output.enter(relative);
      rmdirSync(entry.name);
    } else empty = false;
  }
  return empty;
}
