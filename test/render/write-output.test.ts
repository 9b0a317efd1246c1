/**
 * Writing generated/ (src/render/write-output.ts): only what changed is
 * rewritten, what bento no longer produces is removed when the file set is
 * whole, and nothing is written or removed through a symbolic link.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { RenderedFile } from '../../src/render/render-fleet.js';
import { diffOutput, listFiles, writeOutput } from '../../src/render/write-output.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-write-output-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let count = 0;
function freshDir(): string {
  return path.join(scratch, `out-${++count}`);
}

const FILES: RenderedFile[] = [
  { path: 'systems/a/update.sh', content: '#!/bin/sh\necho a\n', mode: 0o755 },
  { path: 'client/gitignore', content: '/.bento/\n', mode: 0o644 },
];

describe('writeOutput', () => {
  it('writes every file with its mode, then nothing while nothing changes', async () => {
    const out = freshDir();
    expect(await writeOutput(out, FILES, { prune: true })).toEqual({ written: ['client/gitignore', 'systems/a/update.sh'], unchanged: 0, removed: [] });
    expect(statSync(path.join(out, 'systems/a/update.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(path.join(out, 'client/gitignore')).mode & 0o777).toBe(0o644);
    const inode = statSync(path.join(out, 'client/gitignore')).ino;
    expect(await writeOutput(out, FILES, { prune: true })).toEqual({ written: [], unchanged: 2, removed: [] });
    expect(statSync(path.join(out, 'client/gitignore')).ino).toBe(inode);
  });

  it('rewrites a file whose content or mode changed, and only that one', async () => {
    const out = freshDir();
    await writeOutput(out, FILES, { prune: true });
    const changed = [{ ...(FILES[0] as RenderedFile), mode: 0o644 }, { ...(FILES[1] as RenderedFile), content: '/result\n' }];
    expect(await diffOutput(out, changed, { includeExtra: true })).toEqual([
      { path: 'client/gitignore', problem: 'content' },
      { path: 'systems/a/update.sh', problem: 'mode' },
    ]);
    expect((await writeOutput(out, changed, { prune: true })).written).toEqual(['client/gitignore', 'systems/a/update.sh']);
    expect(await diffOutput(out, changed, { includeExtra: true })).toEqual([]);
  });

  it('removes what it no longer produces, and the directories left empty, only when the file set is whole', async () => {
    const out = freshDir();
    await writeOutput(out, FILES, { prune: true });
    const withoutA = [FILES[1] as RenderedFile];
    expect((await writeOutput(out, withoutA, { prune: false })).removed).toEqual([]);
    expect(existsSync(path.join(out, 'systems/a/update.sh'))).toBe(true);
    expect((await writeOutput(out, withoutA, { prune: true })).removed).toEqual(['systems/a/update.sh']);
    expect(existsSync(path.join(out, 'systems'))).toBe(false);
    expect(await listFiles(out)).toEqual(['client/gitignore']);
  });

  it('refuses an output directory that is a link, or a link for a directory inside it, before touching anything', async () => {
    const elsewhere = path.join(scratch, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    writeFileSync(path.join(elsewhere, 'precious'), 'keep me\n');
    const linkedOut = freshDir();
    symlinkSync(elsewhere, linkedOut);
    const error = await writeOutput(linkedOut, FILES, { prune: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(`${linkedOut} is a symbolic link (to ${elsewhere}): bento does not write or remove files through a link`);
    const out = freshDir();
    mkdirSync(out);
    symlinkSync(elsewhere, path.join(out, 'systems'));
    await expect(writeOutput(out, FILES, { prune: true })).rejects.toThrow(`${path.join(out, 'systems')} is a symbolic link`);
    expect(existsSync(path.join(out, 'client'))).toBe(false);
    expect(readFileSync(path.join(elsewhere, 'precious'), 'utf8')).toBe('keep me\n');
    expect(existsSync(path.join(elsewhere, 'a'))).toBe(false);
  });

  it('replaces a link where a file belongs, never writing through it', async () => {
    const target = path.join(scratch, 'link-target');
    writeFileSync(target, 'not bento\n');
    const out = freshDir();
    mkdirSync(path.join(out, 'client'), { recursive: true });
    symlinkSync(target, path.join(out, 'client/gitignore'));
    expect(await diffOutput(out, [FILES[1] as RenderedFile], { includeExtra: false })).toEqual([{ path: 'client/gitignore', problem: 'content' }]);
    await writeOutput(out, FILES, { prune: true });
    expect(lstatSync(path.join(out, 'client/gitignore')).isFile()).toBe(true);
    expect(readFileSync(path.join(out, 'client/gitignore'), 'utf8')).toBe('/.bento/\n');
    expect(readFileSync(target, 'utf8')).toBe('not bento\n');
  });

  it('creates the output directory and its missing parents, and writes a file given in parts as those bytes', async () => {
    const out = path.join(freshDir(), 'deeper', 'generated');
    const shared = Buffer.from('shared — library\n');
    const parts: RenderedFile = { path: 'systems/b/bootstrap.sh', content: '#!/bin/sh\nshared — library\nmain\n', mode: 0o755, bytes: [Buffer.from('#!/bin/sh\n'), shared, Buffer.from('main\n')] };
    expect((await writeOutput(out, [...FILES, parts], { prune: true })).written).toEqual(['client/gitignore', 'systems/a/update.sh', 'systems/b/bootstrap.sh']);
    expect(readFileSync(path.join(out, 'systems/b/bootstrap.sh'), 'utf8')).toBe(parts.content);
    expect(statSync(path.join(out, 'systems/b/bootstrap.sh')).mode & 0o777).toBe(0o755);
    expect(await diffOutput(out, [...FILES, parts], { includeExtra: true })).toEqual([]);
  });

  it('finds a file of the right size whose content differs, one that is longer, and one that is shorter', async () => {
    const out = freshDir();
    await writeOutput(out, FILES, { prune: true });
    writeFileSync(path.join(out, 'client/gitignore'), '/.bentX/\n');
    writeFileSync(path.join(out, 'systems/a/update.sh'), '#!/bin/sh\necho a\n\n');
    expect(await diffOutput(out, FILES, { includeExtra: true })).toEqual([
      { path: 'client/gitignore', problem: 'content' },
      { path: 'systems/a/update.sh', problem: 'content' },
    ]);
    writeFileSync(path.join(out, 'systems/a/update.sh'), '#!/bin/sh\n');
    await writeOutput(out, FILES, { prune: true });
    expect(await diffOutput(out, FILES, { includeExtra: true })).toEqual([]);
    expect(readFileSync(path.join(out, 'systems/a/update.sh'), 'utf8')).toBe('#!/bin/sh\necho a\n');
  });

  it('writes a file missing from a directory that exists, and keeps the others as they were', async () => {
    const out = freshDir();
    await writeOutput(out, FILES, { prune: true });
    const inode = statSync(path.join(out, 'client/gitignore')).ino;
    rmSync(path.join(out, 'systems/a/update.sh'));
    expect(await writeOutput(out, FILES, { prune: true })).toEqual({ written: ['systems/a/update.sh'], unchanged: 1, removed: [] });
    expect(statSync(path.join(out, 'systems/a/update.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(path.join(out, 'client/gitignore')).ino).toBe(inode);
  });
});
