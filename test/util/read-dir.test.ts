/** A directory's entries, or nothing when it cannot be read. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDirIfAny } from '../../src/util/read-dir.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-read-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readDirIfAny', () => {
  it("lists a directory's names, an empty one as none, and a missing path or a file as undefined", () => {
    mkdirSync(path.join(dir, 'full', 'sub'), { recursive: true });
    writeFileSync(path.join(dir, 'full', 'file'), '');
    mkdirSync(path.join(dir, 'empty'));
    expect(readDirIfAny(path.join(dir, 'full'))?.sort()).toEqual(['file', 'sub']);
    expect(readDirIfAny(path.join(dir, 'empty'))).toEqual([]);
    expect(readDirIfAny(path.join(dir, 'missing'))).toBeUndefined();
    expect(readDirIfAny(path.join(dir, 'full', 'file'))).toBeUndefined();
  });
});
