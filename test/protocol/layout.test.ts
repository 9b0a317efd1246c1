/**
 * The one walker of CHROOT_DIR (protocol/layout.ts, listChrootDir), on the
 * entries a CHROOT_DIR can hold: systems' directories and links to them,
 * bento's own files, temporary files of killed writes, and strays (names no
 * system can have, including hostile ones, and entries that are not
 * directories). status, the prunes, deploy's retirement and leftover
 * cleanup, and trigger all list CHROOT_DIR through it.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { listChrootDir, stagingAreaName } from '../../src/protocol/layout.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-layout-'));
  dirs.push(dir);
  return dir;
}

describe('listChrootDir', () => {
  it("lists a killed deploy's staging area (a directory) as a temporary entry, never as a system or a stray", () => {
    const chroot = tempDir();
    for (const name of ['.staging-4242/web', '.staging-x', 'web']) mkdirSync(path.join(chroot, name), { recursive: true });
    expect(stagingAreaName(4242)).toBe('.staging-4242');
    const listing = listChrootDir(chroot);
    expect(listing.temporaries).toEqual(['.staging-4242']);
    expect(listing.systems).toEqual([{ name: 'web', link: false }]);
    expect(listing.strays).toEqual([]);
  });

  it('sorts what it finds into systems, temporaries and strays, and skips what is bento’s own', () => {
    const chroot = tempDir();
    const elsewhere = tempDir();
    for (const name of ['web-2', 'db_1', '_x', 'Not-A-User', '.bento-cache', '.config-0123456789abcdef']) mkdirSync(path.join(chroot, name));
    mkdirSync(path.join(elsewhere, 'sys'));
    symlinkSync(path.join(elsewhere, 'sys'), path.join(chroot, 'alias'));
    symlinkSync(path.join(elsewhere, 'nothing'), path.join(chroot, 'dangling'));
    writeFileSync(path.join(chroot, 'notes'), '');
    symlinkSync(path.join(chroot, 'notes'), path.join(chroot, 'tofile'));
    for (const name of ['states.txt', 'rollout.json', '.states.txt.tmp-4242', 'states.txt.17.tmp', '.hidden']) writeFileSync(path.join(chroot, name), '');
    spawnSync('mkfifo', [path.join(chroot, 'fifo')]);
    writeFileSync(path.join(chroot, 'evil\n\u001b[2Jname'), '');
    mkdirSync(path.join(chroot, 'a'.repeat(33)));

    const listing = listChrootDir(chroot);
    expect(listing.systems).toEqual([
      { name: '_x', link: false },
      { name: 'alias', link: true },
      { name: 'db_1', link: false },
      { name: 'web-2', link: false },
    ]);
    expect(listing.temporaries).toEqual(['.states.txt.tmp-4242', 'states.txt.17.tmp']);
    const strays = [...listing.strays].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(strays).toEqual([
      { name: 'Not-A-User', why: 'not a system name' },
      { name: 'a'.repeat(33), why: 'not a system name' },
      { name: 'dangling', why: 'not a directory' },
      { name: 'evil\n\u001b[2Jname', why: 'not a system name' },
      { name: 'fifo', why: 'not a directory' },
      { name: 'notes', why: 'not a directory' },
      { name: 'tofile', why: 'not a directory' },
    ]);
  });

  it('throws when CHROOT_DIR cannot be listed', () => {
    expect(() => listChrootDir(path.join(tempDir(), 'missing'))).toThrow(/ENOENT/);
  });
});
