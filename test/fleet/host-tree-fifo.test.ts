/**
 * fleet/host-tree.ts's HashCache on a FIFO a fleet writer puts in a file's
 * place between its check (listHostFiles, which refuses a FIFO) and its
 * hash: opening it would wait for a writer forever, the deploy lock held.
 * Run in a child process (test/helpers/bounded-child.ts), which a blocked
 * open would leave hanging: it must be refused at once, naming the file.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBounded } from '../helpers/bounded-child.js';

const fleet = mkdtempSync(path.join(os.tmpdir(), 'bento-host-tree-fifo-'));
afterAll(() => rmSync(fleet, { recursive: true, force: true }));

describe('hashing a host file that became a FIFO after its check', () => {
  it('refuses it at once, naming it, never waiting for a writer', () => {
    const host = path.join(fleet, 'hosts', 'laptop');
    mkdirSync(host, { recursive: true });
    writeFileSync(path.join(host, 'configuration.nix'), '{ }\n');
    // Checked, then swapped for a FIFO, then hashed: the race played at its widest.
    const body = `
      const { rmSync } = await import('node:fs');
      const { spawnSync } = await import('node:child_process');
      const [file] = imported.listHostFiles(args[0], { where: 'hosts/laptop', boundary: args[1] });
      rmSync(file.source);
      spawnSync('mkfifo', [file.source]);
      return new imported.HashCache().hash(file.source, file.checked);`;
    expect(runBounded('fleet/host-tree', body, [host, fleet])).toEqual({
      error:
        'hosts/laptop/configuration.nix changed while bento read it (it is no longer a regular file): nothing of it is used; make sure nothing rewrites hosts/ during a deploy, and run it again',
      name: 'UserError',
    });
    expect(spawnSync('test', ['-p', path.join(host, 'configuration.nix')]).status).toBe(0);
  });
});
