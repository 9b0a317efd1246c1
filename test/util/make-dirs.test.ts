/** mkdir -p and copies with exact modes, whatever the umask; a checked file copied only if it is still that file, a file of generated/ only if it still holds what bento wrote. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ChangedWhileCopiedError, copyFilesWithModes, makeDirsSync } from '../../src/util/make-dirs.js';
import { sha256 } from '../../src/util/hash.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-make-dirs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modeOf = (file: string) => statSync(file).mode & 0o7777;

let umask: number | undefined;
afterEach(() => {
  if (umask !== undefined) process.umask(umask);
  umask = undefined;
});

describe('makeDirsSync', () => {
  it('makes each missing directory with exactly the mode, under umask 077, and leaves those that exist', () => {
    mkdirSync(path.join(dir, 'kept'), { mode: 0o700 });
    chmodSync(path.join(dir, 'kept'), 0o700);
    umask = process.umask(0o077);
    makeDirsSync(path.join(dir, 'kept', 'a', 'b'), 0o755);
    expect(modeOf(path.join(dir, 'kept'))).toBe(0o700);
    expect(modeOf(path.join(dir, 'kept', 'a'))).toBe(0o755);
    expect(modeOf(path.join(dir, 'kept', 'a', 'b'))).toBe(0o755);
    makeDirsSync(path.join(dir, 'kept', 'a', 'b'), 0o700);
    expect(modeOf(path.join(dir, 'kept', 'a', 'b'))).toBe(0o755);
  });
});

describe('copyFilesWithModes', () => {
  it('with sharing: a file with a link source is a hard link to it; one whose source is gone is copied, and told as written', () => {
    const into = path.join(dir, 'shared');
    mkdirSync(into);
    const source = path.join(dir, 'shared-source');
    writeFileSync(source, 'same\n');
    const first = path.join(dir, 'shared-first');
    writeFileSync(first, 'same\n');
    const written: string[] = [];
    const sharing = { linkSource: (file: { relative: string }) => (file.relative === 'gone' ? path.join(dir, 'no-such-file') : first), written: (file: { relative: string }, destination: string) => written.push(path.join(destination, file.relative)) };
    copyFilesWithModes(into, [{ relative: 'linked', source, executable: false }, { relative: 'gone', source, executable: false }], sharing);
    expect(statSync(path.join(into, 'linked')).ino).toBe(statSync(first).ino);
    expect(statSync(path.join(into, 'gone')).ino).not.toBe(statSync(first).ino);
    expect(readFileSync(path.join(into, 'gone'), 'utf8')).toBe('same\n');
    expect(modeOf(path.join(into, 'gone'))).toBe(0o644);
    expect(written).toEqual([path.join(into, 'gone')]);
  });

  it('copies files 0755 or 0644 as they are executable, into directories 0755, under umask 077', () => {
    const source = path.join(dir, 'source');
    writeFileSync(source, 'content\n', { mode: 0o600 });
    const destination = path.join(dir, 'copy');
    mkdirSync(destination);
    umask = process.umask(0o077);
    copyFilesWithModes(destination, [
      { relative: 'deep/x/run.sh', source, executable: true },
      { relative: 'deep/data', source, executable: false },
    ]);
    expect(readFileSync(path.join(destination, 'deep/x/run.sh'), 'utf8')).toBe('content\n');
    expect(modeOf(path.join(destination, 'deep/x/run.sh'))).toBe(0o755);
    expect(modeOf(path.join(destination, 'deep/data'))).toBe(0o644);
    expect(modeOf(path.join(destination, 'deep'))).toBe(0o755);
    expect(modeOf(path.join(destination, 'deep/x'))).toBe(0o755);
  });

  it('copies a checked file only while it is the file checked, readable by everyone', () => {
    const checkedFile = path.join(dir, 'checked');
    writeFileSync(checkedFile, 'checked\n', { mode: 0o644 });
    const { dev, ino } = statSync(checkedFile);
    const checked = { dev, ino, place: 'hosts/web/configuration.nix' };
    const copy = (name: string, source: string) => copyFilesWithModes(path.join(dir, name), [{ relative: 'f', source, executable: false, checked }]);
    mkdirSync(path.join(dir, 'ok'));
    copy('ok', checkedFile);
    expect(readFileSync(path.join(dir, 'ok', 'f'), 'utf8')).toBe('checked\n');

    const other = path.join(dir, 'other');
    writeFileSync(other, 'secret\n', { mode: 0o644 });
    symlinkSync(other, path.join(dir, 'swapped'));
    mkdirSync(path.join(dir, 'bad'));
    expect(() => copy('bad', path.join(dir, 'swapped'))).toThrow(ChangedWhileCopiedError);
    expect(() => copy('bad', path.join(dir, 'swapped'))).toThrow('hosts/web/configuration.nix changed while bento copied it (it is another file than the one checked');

    chmodSync(checkedFile, 0o600);
    mkdirSync(path.join(dir, 'unreadable'));
    expect(() => copy('unreadable', checkedFile)).toThrow('it is no longer readable by everyone');
  });

  it('copies a checked file no further than the size it had when opened', () => {
    // A file of /proc is a regular file of size 0 that holds more, as one its owner grows while it is read.
    const { dev, ino } = statSync('/proc/self/status');
    mkdirSync(path.join(dir, 'grown'));
    expect(() => copyFilesWithModes(path.join(dir, 'grown'), [{ relative: 'f', source: '/proc/self/status', executable: false, checked: { dev, ino, place: 'hosts/web/grown' } }])).toThrow(
      'hosts/web/grown changed while bento copied it (it grew while it was read)',
    );
    expect(readdirSync(path.join(dir, 'grown'))).toEqual([]);
  });

  it('copies a file of generated/ (not checked) only while it holds what bento wrote, never through a link, never waiting on a FIFO', () => {
    const written = path.join(dir, 'rendered');
    writeFileSync(written, 'rendered\n');
    const copy = (name: string, source: string) => {
      mkdirSync(path.join(dir, `gen-${name}`));
      copyFilesWithModes(path.join(dir, `gen-${name}`), [{ relative: 'update.sh', source, executable: true, sha256: sha256('rendered\n') }]);
    };
    copy('fine', written);
    expect(readFileSync(path.join(dir, 'gen-fine', 'update.sh'), 'utf8')).toBe('rendered\n');
    expect(modeOf(path.join(dir, 'gen-fine', 'update.sh'))).toBe(0o755);

    const secret = path.join(dir, 'secret');
    writeFileSync(secret, 'rendered\n', { mode: 0o600 });
    symlinkSync(secret, path.join(dir, 'link'));
    expect(() => copy('through-link', path.join(dir, 'link'))).toThrow(ChangedWhileCopiedError);
    expect(() => copy('through-link-again', path.join(dir, 'link'))).toThrow(/changed while bento copied it \(it cannot be opened as a file: ELOOP\)/);
    writeFileSync(path.join(dir, 'other-content'), 'something else\n');
    expect(() => copy('other', path.join(dir, 'other-content'))).toThrow('it no longer holds what bento wrote there');
    expect(spawnSync('mkfifo', [path.join(dir, 'fifo')]).status).toBe(0);
    expect(() => copy('fifo', path.join(dir, 'fifo'))).toThrow('it is no longer a regular file');
    for (const name of ['through-link', 'through-link-again', 'other', 'fifo']) expect(readdirSync(path.join(dir, `gen-${name}`))).toEqual([]);
  });
});
