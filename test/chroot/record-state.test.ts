import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readStatesFile } from '../../src/protocol/states-file.js';
import { recordState } from '../../src/chroot/record-state.js';

const A = '0f8vsf8l1ipxn3afgc8w9k4fg0y6wq1z-nixos-system-a-24.05';
const B = 'h2xfyiy9znimv9c5vw0bj51qcpjxfmw3-nixos-system-b-24.05';

describe('recordState', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sets one line, keeps the others, drops lines nothing can read, and leaves no temporary file', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bento-states-'));
    expect(readStatesFile(dir).entries.size).toBe(0);
    writeFileSync(path.join(dir, 'states.txt'), `b=${B}\nbroken line\n`);
    recordState(dir, 'a', A);
    expect(readFileSync(path.join(dir, 'states.txt'), 'utf8')).toBe(`a=${A}\nb=${B}\n`);
    expect(readdirSync(dir)).toEqual(['states.txt']);
  });
});
