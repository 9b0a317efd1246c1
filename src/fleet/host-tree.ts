/**
 * Walking hosts/. One walker (walkTree) serves every reader of the tree:
 * the files of a host directory as a machine receives them (listHostFiles:
 * symlinks inside the fleet followed, so the usual `utils -> ../../utils`
 * link becomes a real directory; `.git` and build results left out), used
 * for the snapshot that is evaluated, built and published; and the flakes
 * under hosts/ for flake-update (findFlakes: links never followed).
 */
import { chmodSync, lstatSync, readdirSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { ChangedWhileCopiedError, copyFilesWithModes, makeDirsSync, type CopySharing } from '../util/make-dirs.js';
import { hashFile, sha256 } from '../util/hash.js';
import { IrregularFileError } from '../util/read-at-most.js';
import { compareText } from '../util/text.js';

/** Entries no walk of hosts/ enters: git's own metadata. */
const NEVER_WALKED = new Set(['.git']);

export interface TreeEntry {
  name: string;
  /** Path below the walk's root, with '/' separators. */
  relative: string;
  absolute: string;
  /** lstat of the entry: a symbolic link is seen as one. */
  link: Stats;
}

export interface WalkOptions {
  /** A directory below the root cannot be read: report it; without this, the error is thrown. */
  onUnreadable?: (relative: string, error: NodeJS.ErrnoException) => void;
  /** Names `root` in messages (`hosts/laptop`). */
  where: string;
  /**
   * The root must lead inside this directory (the fleet directory): hosts/
   * or a host directory that is a symbolic link out of the fleet is refused
   * like a link inside a host directory.
   */
  boundary?: string;
}

/**
 * Why `dir` (a directory of the fleet that may itself be a symbolic link)
 * leads out of `boundary`, or undefined. The same rule as for links inside
 * a host directory: a link is followed only when it stays in the fleet.
 */
export function outsideBoundaryProblem(dir: string, boundary: string, where: string): string | undefined {
  const real = realpathSync(dir);
  const realBoundary = realpathSync(boundary);
  if (isInside(real, realBoundary)) return undefined;
  const how = lstatSync(dir).isSymbolicLink() ? `is a symbolic link to ${readlinkSync(dir)}` : `leads to ${real} (through a symbolic link)`;
  return `${where} ${how}, outside the fleet directory: bento follows links only inside it (like utils -> ../../utils); copy what the machine needs into the fleet`;
}

function isInside(real: string, realBoundary: string): boolean {
  return real === realBoundary || real.startsWith(realBoundary === '/' ? '/' : `${realBoundary}/`);
}

/**
 * Visits every entry under `root` depth first, in sorted order, never
 * entering `.git`. `visit` returns 'descend' to walk into a directory entry
 * (a symbolic link to a directory too: following links is the visitor's
 * choice); a directory already being walked above (a link loop) is an error.
 */
export function walkTree(root: string, options: WalkOptions, visit: (entry: TreeEntry) => 'descend' | void): void {
  const walk = (absolute: string, relative: string, ancestors: ReadonlySet<string>) => {
    let names: string[];
    try {
      names = readdirSync(absolute).sort(compareText);
    } catch (error) {
      if (relative === '' || !options.onUnreadable) throw error;
      options.onUnreadable(relative, error as NodeJS.ErrnoException);
      return;
    }
    for (const name of names) {
      if (NEVER_WALKED.has(name)) continue;
      const entry: TreeEntry = { name, relative: relative ? `${relative}/${name}` : name, absolute: path.join(absolute, name), link: lstatSync(path.join(absolute, name)) };
      if (visit(entry) !== 'descend') continue;
      const real = realpathSync(entry.absolute);
      if (ancestors.has(real)) throw new UserError(`${options.where}/${entry.relative} is a symlink loop`);
      walk(entry.absolute, entry.relative, new Set([...ancestors, real]));
    }
  };
  if (options.boundary) {
    const problem = outsideBoundaryProblem(root, options.boundary, options.where);
    if (problem) throw new UserError(problem);
  }
  walk(root, '', new Set([realpathSync(root)]));
}

export interface HostFile {
  /** Path inside the configuration, with '/' separators. */
  relative: string;
  /** Where its content is read from. */
  source: string;
  executable: boolean;
  /** The file that was checked (util/make-dirs.ts): a copy reads that file or nothing. */
  checked: { dev: number; ino: number; place: string };
}

/**
 * Names the client keeps for itself at the top of /var/bento (its state
 * directory and the manifest it checks): a host file there would break the
 * machine on every run (docs/protocol.md §4, §6).
 */
export const CLIENT_RESERVED_NAMES: ReadonlySet<string> = new Set(['.bento', '.bento-manifest']);

export interface ListHostFilesOptions {
  /** Names the directory in messages (`hosts/laptop`). */
  where: string;
  /**
   * Symbolic links are followed only when they resolve inside this directory
   * (the fleet directory: the usual `utils -> ../../utils`). Anything else
   * would publish the server's own files.
   */
  boundary: string;
}

/**
 * The files of a host directory as its machine receives them: symlinks
 * followed (inside the boundary only), links into /nix/store (build results)
 * left out. Refused, naming the path: a link leading out of the fleet, a
 * broken link, a name the client reserves, anything but regular files and
 * directories, and a file or directory that not everyone may read (it would
 * be copied into the world-readable Nix store and onto the machine).
 */
export function listHostFiles(dir: string, options: ListHostFilesOptions): HostFile[] {
  const { where } = options;
  const boundary = realpathSync(options.boundary);
  const found: HostFile[] = [];
  // The host directory itself gets the rules of its contents: it may not lead out of the fleet, and everyone may read it.
  const rootStats = statSync(dir);
  const rootProblem = outsideBoundaryProblem(dir, boundary, where) ?? ((rootStats.mode & 0o005) !== 0o005 ? unreadableProblem(where, 'directory', rootStats.mode) : undefined);
  if (rootProblem) throw new UserError(rootProblem);
  walkTree(dir, { where }, (entry) => {
    const place = `${where}/${entry.relative}`;
    if (entry.relative === entry.name && CLIENT_RESERVED_NAMES.has(entry.name)) {
      throw new UserError(`${place}: ${entry.name} is reserved for the bento client's own state on the machine (/var/bento/${entry.name}); remove it from the host directory`);
    }
    if (entry.link.isSymbolicLink()) {
      const target = readlinkSync(entry.absolute);
      if (target.startsWith('/nix/store/')) return;
      let real: string;
      try {
        real = realpathSync(entry.absolute);
      } catch {
        throw new UserError(`${place} is a broken symbolic link (to ${target})`);
      }
      if (!isInside(real, boundary)) {
        throw new UserError(
          `${place} is a symbolic link to ${target}, outside the fleet directory: bento follows links only inside it (like utils -> ../../utils); copy what the machine needs into the fleet`,
        );
      }
    }
    const stats = statSync(entry.absolute);
    if (stats.isDirectory()) {
      if ((stats.mode & 0o005) !== 0o005) throw new UserError(unreadableProblem(place, 'directory', stats.mode));
      return 'descend';
    }
    if (!stats.isFile()) throw new UserError(`${place} is neither a regular file nor a directory (a FIFO, socket or device): only files and directories are published`);
    if ((stats.mode & 0o004) === 0) throw new UserError(unreadableProblem(place, 'file', stats.mode));
    found.push({ relative: entry.relative, source: entry.absolute, executable: (stats.mode & 0o111) !== 0, checked: { dev: stats.dev, ino: stats.ino, place } });
  });
  return found;
}

function unreadableProblem(place: string, kind: string, mode: number): string {
  return (
    `${place} is a ${kind} not everyone may read (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}): ` +
    'it would be copied into the world-readable Nix store and onto the machine; keep secrets out of hosts/ (sops-nix, agenix), or make it readable (chmod o+r' +
    (kind === 'directory' ? 'x' : '') +
    ')'
  );
}

/**
 * Copies the files of a host directory (listHostFiles) into `destination`:
 * directories 0755, files 0755 or 0644 as they are executable or not, set
 * explicitly whatever the umask (a copy is checked again as a host
 * directory, and everyone must be able to read it). `linked`, for a source
 * that is a snapshot (a copy this function made): its files are hard-linked
 * rather than written again (LINK_TO_SOURCE).
 */
export function copyHostTree(source: string, destination: string, options: ListHostFilesOptions & { linked?: boolean }): HostFile[] {
  const files = listHostFiles(source, options);
  makeDirsSync(destination, 0o755);
  chmodSync(destination, 0o755);
  try {
    copyFilesWithModes(destination, files, options.linked ? LINK_TO_SOURCE : undefined);
  } catch (error) {
    if (error instanceof ChangedWhileCopiedError) throw new UserError(error.message);
    throw error;
  }
  return files;
}

/**
 * Each file a hard link to its source, which holds what the copy would
 * (copyHostTree's `linked`: a snapshot, whose files copyHostTree wrote with
 * these modes and nothing changes); copied where no link can be made (another
 * file system).
 */
const LINK_TO_SOURCE: CopySharing<HostFile> = { linkSource: (file) => file.source, written: () => {} };

/**
 * Hashes by real path, size and mtime, so files shared through utils/ are
 * read once per run. A file of hosts/ is its writers': between its check
 * (listHostFiles) and its hash, one may put a FIFO in its place (opening it
 * would wait, the deploy lock held, for ever), a link to /dev/zero, or grow
 * it without end. What is hashed is then the file checked (`checked`: the
 * same device and inode), opened without waiting, a regular file, read no
 * further than the size it had (util/hash.ts, hashFile); otherwise a
 * UserError naming it (`checked.place`).
 */
export class HashCache {
  private readonly entries = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

  hash(file: string, checked?: HostFile['checked']): string {
    const real = realpathSync(file);
    const stats = statSync(real);
    const known = this.entries.get(real);
    if (known && known.size === stats.size && known.mtimeMs === stats.mtimeMs) return known.sha256;
    let hashed: { sha256: string; stats: Stats };
    try {
      hashed = hashFile(real);
    } catch (error) {
      if (!(error instanceof IrregularFileError)) throw error;
      const place = checked?.place ?? file;
      throw changedWhileRead(place, error.reason === 'not a regular file' ? 'it is no longer a regular file' : 'it grew or shrank while it was read');
    }
    if (checked && (hashed.stats.dev !== checked.dev || hashed.stats.ino !== checked.ino)) {
      throw changedWhileRead(checked.place, 'it is another file than the one checked: a directory on its path was replaced, by a link maybe');
    }
    // What was read: the open file's size and mtime, not those of the look before.
    this.entries.set(real, { size: hashed.stats.size, mtimeMs: hashed.stats.mtimeMs, sha256: hashed.sha256 });
    return hashed.sha256;
  }
}

/** What a file of hosts/ that changed between its check and its reading is: as a copy says it (util/make-dirs.ts, ChangedWhileCopiedError). */
function changedWhileRead(place: string, why: string): UserError {
  return new UserError(`${place} changed while bento read it (${why}): nothing of it is used; make sure nothing rewrites hosts/ during a deploy, and run it again`);
}

/** A file of a host directory (listHostFiles) with the SHA-256 of its content. */
export interface HashedHostFile extends HostFile {
  sha256: string;
}

/** listHostFiles, each file hashed (through `cache`) only if it is still the file checked. */
export function listHashedHostFiles(dir: string, options: ListHostFilesOptions, cache: HashCache): HashedHostFile[] {
  return listHostFiles(dir, options).map((file) => ({ ...file, sha256: cache.hash(file.source, file.checked) }));
}

/**
 * The identity of a host directory's content as its machine receives it:
 * every path, whether it is executable, and its content's hash. Two trees
 * with the same fingerprint are the same configuration, wherever they are.
 */
export function hostTreeFingerprint(files: readonly HashedHostFile[]): string {
  return sha256(files.map((file) => `${file.executable ? 'x' : '-'} ${file.sha256} ${JSON.stringify(file.relative)}\n`).join(''));
}

export interface FoundFlakes {
  /** Directories holding a flake.nix, relative to the fleet directory (`hosts/laptop`), sorted. */
  flakes: string[];
  /** What was left out and why (a flake.nix that is a symbolic link, a directory that cannot be read). */
  skipped: string[];
}

/** What every command says of a fleet directory without hosts/. */
export function missingHostsError(fleetDir: string): UserError {
  return new UserError(`${path.join(fleetDir, 'hosts')} does not exist`, 'create one directory per machine (or per flake) under hosts/, or run `bento init`');
}

/**
 * Every directory under `hosts/` (at any depth) holding a flake.nix, for
 * flake-update. Symbolic links are never followed: the usual
 * `utils -> ../../utils` link leads out of hosts/, and a link inside it
 * would list a flake twice. hosts/ itself missing is thrown (ENOENT) for the
 * caller to explain; below it, an unreadable directory is skipped.
 */
export function findFlakes(fleetDir: string): FoundFlakes {
  const found: FoundFlakes = { flakes: [], skipped: [] };
  const onUnreadable = (relative: string, error: NodeJS.ErrnoException) => {
    found.skipped.push(`hosts/${relative} cannot be read (${error.code ?? error.message}): skipped`);
  };
  walkTree(path.join(fleetDir, 'hosts'), { where: 'hosts', onUnreadable, boundary: fleetDir }, (entry) => {
    if (entry.name === 'flake.nix') {
      const where = entry.relative === 'flake.nix' ? 'hosts' : `hosts/${path.posix.dirname(entry.relative)}`;
      if (entry.link.isFile()) found.flakes.push(where);
      else if (entry.link.isSymbolicLink()) found.skipped.push(`${where}/flake.nix is a symbolic link: skipped (make it a regular file to update it)`);
      return;
    }
    if (entry.link.isDirectory()) return 'descend';
  });
  found.flakes.sort(compareText);
  found.skipped.sort(compareText);
  return found;
}
