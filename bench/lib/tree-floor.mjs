// What the write floor of `bento generate` writes (write-tree.mjs): a tree
// packed into one file, each part shared by many files (the client library
// that every bootstrap.sh holds) stored once, as bento renders it; and the
// check that a tree written from it is the one bento wrote.
import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { repoRoot, timed } from './process.mjs';

const writeTreeScript = path.join(repoRoot, 'bench', 'lib', 'write-tree.mjs');

/** Every file and directory under `dir`, relative, sorted; directories before what they hold. */
function walk(dir, prefix = '', out = { dirs: [], files: [] }) {
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      out.dirs.push(relative);
      walk(dir, relative, out);
    } else out.files.push(relative);
  }
  return out;
}

/**
 * Packs the tree `dir` (bento's generated/) into `packFile`: a JSON line
 * (the directories; each file's path, mode and parts; each part's length),
 * then the parts. `shared` is a file of the tree whose content others hold
 * whole (generated/client/bento-client.sh): stored once.
 */
export function packTree(dir, packFile, shared) {
  const { dirs, files } = walk(dir);
  const library = readFileSync(path.join(dir, shared));
  const parts = [library];
  const entries = files.map((file) => {
    const content = readFileSync(path.join(dir, file));
    const mode = lstatSync(path.join(dir, file)).mode & 0o7777;
    const at = content.indexOf(library);
    const pieces = at < 0 ? [content] : [content.subarray(0, at), library, content.subarray(at + library.length)];
    return [file, mode, ...pieces.filter((piece) => piece.length > 0).map((piece) => (piece === library ? 0 : parts.push(piece) - 1))];
  });
  const header = JSON.stringify({ dirs, files: entries, parts: parts.map((part) => part.length) });
  writeFileSync(packFile, Buffer.concat([Buffer.from(`${header}\n`), ...parts]));
  return { files: files.length, bytes: entries.reduce((sum, [, , ...indices]) => sum + indices.reduce((n, i) => n + parts[i].length, 0), 0) };
}

/** Throws unless `a` and `b` hold the same directories and files, with the same bytes and modes. */
export function assertSameTree(a, b) {
  const left = walk(a);
  const right = walk(b);
  if (JSON.stringify(left) !== JSON.stringify(right)) throw new Error(`${a} and ${b} do not hold the same paths`);
  for (const file of left.files) {
    const [x, y] = [path.join(a, file), path.join(b, file)];
    if ((lstatSync(x).mode & 0o7777) !== (lstatSync(y).mode & 0o7777)) throw new Error(`${file}: modes differ`);
    if (!readFileSync(x).equals(readFileSync(y))) throw new Error(`${file}: contents differ`);
  }
}

/**
 * The write floor of the generated/ tree `generated`, in `floorRoot`: packed
 * there, written once and checked to be that tree; then each call removes
 * the tree it wrote and times a plain node process writing it again
 * (write-tree.mjs), in seconds.
 */
export async function writeFloorOf(generated, floorRoot) {
  const pack = path.join(floorRoot, 'tree.pack');
  const tree = path.join(floorRoot, 'tree');
  packTree(generated, pack, 'client/bento-client.sh');
  const writeTree = async () => (await timed(process.execPath, [writeTreeScript, pack, tree])).seconds;
  await writeTree();
  assertSameTree(generated, tree);
  return async () => {
    rmSync(tree, { recursive: true, force: true });
    return writeTree();
  };
}
