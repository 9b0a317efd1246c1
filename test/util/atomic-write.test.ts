import { afterEach, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEMPORARY_NAME, temporaryPathOf, writeFileAtomically, writeFileAtomicallySync } from '../../src/util/atomic-write.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));
function tempDir(): string {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-atomic-'));
  return dir;
}

describe.each([
  ['writeFileAtomically', writeFileAtomically],
  ['writeFileAtomicallySync', async (file: string, content: string, mode?: number) => writeFileAtomicallySync(file, content, mode)],
])('%s', (_name, write) => {
  it('replaces the file with exactly the mode asked for and leaves no temporary file behind', async () => {
    const file = path.join(tempDir(), 'bento.prom');
    writeFileSync(file, 'old\n');
    const umask = process.umask(0o077);
    try {
      await write(file, 'new\n', 0o644);
    } finally {
      process.umask(umask);
    }
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir)).toEqual(['bento.prom']);
  });

  it('never writes through a link planted at its temporary name', async () => {
    const file = path.join(tempDir(), 'update.sh');
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'keep\n');
    symlinkSync(victim, temporaryPathOf(file));
    await write(file, 'new\n', 0o755);
    expect(readFileSync(victim, 'utf8')).toBe('keep\n');
    expect(lstatSync(file).isFile()).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(readdirSync(dir).sort()).toEqual(['update.sh', 'victim']);
  });

  it('fails, and cleans up, when the directory does not exist', async () => {
    tempDir();
    await expect(write(path.join(dir, 'missing', 'bento.prom'), 'x')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('keeps the old file and removes its temporary one when the rename fails', async () => {
    // A directory in the way: the rename fails after the temporary file was written.
    const target = path.join(tempDir(), 'states.txt');
    mkdirSync(target);
    writeFileSync(path.join(target, 'keep'), 'x');
    await expect(write(target, 'new\n')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['states.txt']);
    expect(readdirSync(target)).toEqual(['keep']);
  });
});

describe('temporary names', () => {
  it('are dot files in the same directory that TEMPORARY_NAME recognises', () => {
    const temporary = temporaryPathOf('/srv/chroot/states.txt');
    expect(path.dirname(temporary)).toBe('/srv/chroot');
    expect(path.basename(temporary)).toBe(`.states.txt.tmp-${process.pid}`);
    expect(TEMPORARY_NAME.test(path.basename(temporary))).toBe(true);
    expect(TEMPORARY_NAME.test('states.txt')).toBe(false);
    expect(TEMPORARY_NAME.test('.config-0123456789abcdef')).toBe(false);
  });
});
