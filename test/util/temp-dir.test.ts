/** What a killed bento left in /tmp is removed by the next one: only its own directories. */
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeStaleTempDirs, removeTempDirLater, tempDirsRemoved } from '../../src/util/temp-dir.js';

const isRoot = process.getuid?.() === 0;
/** Above any pid_max: no process has it. */
const GONE = 99_999_999;

const cleanups: string[] = [];
afterEach(() => cleanups.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(dir);
  return dir;
}

describe('removeStaleTempDirs', () => {
  it("removes this user's directories of processes that are gone, and keeps those of running ones", () => {
    const tmp = tempDir('bento-tmp-test-');
    mkdirSync(path.join(tmp, `bento-snapshot-${GONE}-abcdef`, 'host'), { recursive: true });
    mkdirSync(path.join(tmp, `bento-build-${process.pid}-abcdef`));
    removeStaleTempDirs(tmp);
    expect(readdirSync(tmp)).toEqual([`bento-build-${process.pid}-abcdef`]);
  });

  it('never follows a link of that name', () => {
    const tmp = tempDir('bento-tmp-test-');
    const victim = tempDir('bento-victim-');
    writeFileSync(path.join(victim, 'keep'), 'x');
    symlinkSync(victim, path.join(tmp, `bento-snapshot-${GONE}-linked`));
    removeStaleTempDirs(tmp);
    expect(readdirSync(victim)).toEqual(['keep']);
    expect(readdirSync(tmp)).toEqual([`bento-snapshot-${GONE}-linked`]);
  });

  it.skipIf(!isRoot)("leaves another user's directory of that name alone, even as root", () => {
    const tmp = tempDir('bento-tmp-test-');
    const theirs = path.join(tmp, `bento-snapshot-${GONE}-theirs`);
    mkdirSync(theirs);
    writeFileSync(path.join(theirs, 'work'), 'x');
    chownSync(theirs, 65534, 65534);
    removeStaleTempDirs(tmp);
    expect(existsSync(path.join(theirs, 'work'))).toBe(true);
  });
});

describe('removeTempDirLater', () => {
  it('returns before the tree is gone; tempDirsRemoved waits until it is, and a missing one is no error', async () => {
    const tree = mkdtempSync(path.join(os.tmpdir(), 'bento-later-test-'));
    for (let index = 0; index < 50; index++) {
      mkdirSync(path.join(tree, `d${index}`, 'sub'), { recursive: true });
      writeFileSync(path.join(tree, `d${index}`, 'sub', 'file'), 'x');
    }
    removeTempDirLater(tree);
    removeTempDirLater(path.join(os.tmpdir(), 'bento-later-test-missing-XXXXXX'));
    expect(existsSync(tree)).toBe(true);
    await tempDirsRemoved();
    expect(existsSync(tree)).toBe(false);
    await tempDirsRemoved();
  });
});
