/**
 * A flake as the machine builds it. The client turns /var/bento into a git
 * work tree with everything added (`git init`, `git add -A`) because a flake
 * in a git repository sees only what git tracks; the server does the same to
 * its staging copy, so that .gitignore files (bento's own and nested ones)
 * leave out the same files on both sides, and builds it as `git+file:`.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { run } from '../exec.js';
import { mapLimit } from '../util/concurrency.js';
import { makeTempDir } from '../util/temp-dir.js';

/**
 * Neither the server's own git configuration nor the system one: a global
 * excludes file of root's would hide files here that the machine sees.
 */
const NEUTRAL_GIT = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };

/** At most this many work trees per shell: its argument list stays far below the kernel's limit. */
const TREES_PER_SHELL = 500;

/**
 * Adds everything in each work tree named on the command line, stopping at
 * the first failure with the tree it failed in. Only the paths: Nix reads
 * the file list of an uncommitted tree from the index (`git ls-files`) and
 * the files from the work tree, so the index needs no content
 * (`--intent-to-add`, which lists the same paths and modes as a plain
 * `git add -A` without hashing and storing every file; the store path is
 * the same, test/nix/build-flakes.test.ts).
 */
const ADD_EACH = 'for tree do git -C "$tree" add -A --intent-to-add || { printf \'git add -A failed in %s\\n\' "$tree" >&2; exit 1; }; done';

/**
 * `git init` and `git add -A` in `dir`, as the client does in /var/bento.
 * The repository is readable by everyone whatever the umask (`--shared`):
 * an unprivileged user evaluates it (unprivileged.ts).
 */
export async function addEverythingToGit(dir: string): Promise<void> {
  await addEverythingToGitEach([dir]);
}

/**
 * addEverythingToGit for many work trees, at most `jobs` shells at a time.
 * One `git init` makes an empty repository that each tree gets a copy of
 * (an empty repository names no path of its own), and each shell runs
 * `git add -A` in many trees: a process per tree instead of a node spawn
 * of two (bench/README.md). The empty template leaves out only git's
 * sample hooks and an exclude file of comments: what git tracks is the same.
 */
export async function addEverythingToGitEach(dirs: readonly string[], jobs = 1): Promise<void> {
  if (dirs.length === 0) return;
  const skeleton = makeTempDir('git');
  try {
    await run('git', ['init', '-q', '--template=', '--shared=0644', skeleton], { env: NEUTRAL_GIT });
    // Its top level only: HEAD, config, objects/ and refs/, what makes a
    // repository git recognises (gitrepository-layout(5)); the empty
    // directories below them (objects/info, objects/pack, refs/heads,
    // refs/tags) git makes when it first writes there, which `git add
    // --intent-to-add` and Nix's reads of the tree never do. Four
    // directories fewer in every staging copy, made and then removed.
    const entries = treeEntries(path.join(skeleton, '.git')).filter((entry) => !entry.relative.includes(path.sep));
    for (const dir of dirs) copyTree(path.join(skeleton, '.git'), path.join(dir, '.git'), entries);
  } finally {
    rmSync(skeleton, { recursive: true, force: true });
  }
  const chunks: string[][] = [];
  const size = Math.min(TREES_PER_SHELL, Math.ceil(dirs.length / Math.max(1, jobs)));
  for (let start = 0; start < dirs.length; start += size) chunks.push(dirs.slice(start, start + size));
  await mapLimit(chunks, jobs, (chunk) => run('sh', ['-c', ADD_EACH, 'sh', ...chunk], { env: NEUTRAL_GIT }));
}

interface TreeEntry {
  relative: string;
  directory: boolean;
  mode: number;
}

/** What is under `root`: directories before what they hold, with their modes (a tree of directories and files only). */
function treeEntries(root: string, relative = ''): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const entry of readdirSync(path.join(root, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    entries.push({ relative: child, directory: entry.isDirectory(), mode: statSync(path.join(root, child)).mode & 0o7777 });
    if (entry.isDirectory()) entries.push(...treeEntries(root, child));
  }
  return entries;
}

/** Copies `entries` of `from` to `to` with git's modes (readable by everyone, setgid directories), whatever the umask. */
function copyTree(from: string, to: string, entries: readonly TreeEntry[]): void {
  mkdirSync(to);
  chmodSync(to, statSync(from).mode & 0o7777);
  for (const entry of entries) {
    const target = path.join(to, entry.relative);
    if (entry.directory) mkdirSync(target);
    else copyFileSync(path.join(from, entry.relative), target);
    chmodSync(target, entry.mode);
  }
}

/** The flake in the git work tree `dir` (what git tracks of it), as Nix names it. */
export function gitFlakeRef(dir: string, attribute?: string): string {
  return `git+file://${dir}${attribute ? `#${attribute}` : ''}`;
}
