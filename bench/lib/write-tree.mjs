// The write floor of `bento generate` into an empty generated/ (bench/README.md):
// a plain node process that writes a tree packed by tree-floor.mjs (packTree)
// into an empty directory — the same files, bytes and modes — and nothing
// else: no rendering, no comparing, no reading back. It writes each file as
// bento does (created in place, O_EXCL, the shared parts with one writev),
// and leaves the modes to open(2) under umask 0 rather than an fchmod each.
//
//   node bench/lib/write-tree.mjs PACK DEST
import { closeSync, constants, mkdirSync, openSync, readFileSync, writevSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const [pack, dest] = process.argv.slice(2);
const data = readFileSync(pack);
const headerEnd = data.indexOf(10);
const { dirs, files, parts } = JSON.parse(data.subarray(0, headerEnd).toString('utf8'));
const bodies = [];
for (let offset = headerEnd + 1, i = 0; i < parts.length; offset += parts[i], i++) bodies.push(data.subarray(offset, offset + parts[i]));

process.umask(0);
mkdirSync(dest, { recursive: true });
for (const dir of dirs) mkdirSync(path.join(dest, dir));
for (const [file, mode, ...indices] of files) {
  const fd = openSync(path.join(dest, file), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  const chunks = indices.map((i) => bodies[i]);
  let written = writevSync(fd, chunks);
  // A short write (rare, for large files): the rest, plainly.
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  if (written < total) {
    const rest = Buffer.concat(chunks).subarray(written);
    for (let offset = 0; offset < rest.length; ) offset += writevSync(fd, [rest.subarray(offset)]);
    written = total;
  }
  closeSync(fd);
}
