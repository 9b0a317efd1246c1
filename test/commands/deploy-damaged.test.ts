/**
 * `bento deploy` and `bento generate` with a state or record file damaged
 * on the server (a directory where bento's file should be): a message
 * naming the file and exit 1, not an internal error, and nothing that is
 * published changes. Root, real Nix, a test server.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bento } from '../helpers/cli.js';
import { isRoot } from '../helpers/shell.js';
import { NIX_ENV, snapshotTree, useTestServer } from '../helpers/server.js';

const suite = useTestServer();
const { n } = suite;

describe.skipIf(!isRoot)('a damaged file on the server', () => {
  it('states.txt a directory: deploy names it and publishes nothing; uids.txt a directory: generate and deploy name it', () => {
    const chrootDir = suite.server.chrootDir;
    const fleet = suite.fleet({ pair: { flake: [n('a'), n('b')] } });
    suite.server.addUsers([n('a'), n('b')]);
    const env = { BENTO_DIR: fleet.root, ...NIX_ENV };
    const first = bento(['deploy'], { env });
    expect(first.status, first.stderr).toBe(0);

    // An edit that only a: the planner asks states.txt whether b's build is what b publishes.
    writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n('a')}.nix`), '# edited\n');
    const states = path.join(chrootDir, 'states.txt');
    rmSync(states);
    mkdirSync(states);
    const before = snapshotTree(chrootDir);
    const refused = bento(['deploy'], { env });
    expect(refused.stderr).not.toContain('internal error');
    expect(refused.stderr).toContain(`bento: error: cannot read ${states}: EISDIR`);
    expect(refused.stderr).toContain('restore it, or move it away');
    expect(refused.status).toBe(1);
    // Every entry as it was (CHROOT_DIR's own times aside: deploy's temporary files come and go in it).
    const entries = (snapshot: Record<string, string>) => Object.entries(snapshot).filter(([entry]) => entry !== '.');
    expect(entries(snapshotTree(chrootDir))).toEqual(entries(before));
    rmSync(states, { recursive: true });

    const uids = path.join(fleet.root, 'uids.txt');
    rmSync(uids);
    mkdirSync(uids);
    for (const command of ['generate', 'deploy']) {
      const run = bento([command], { env });
      expect(run.stderr, command).toContain(`bento: error: cannot read ${uids}: EISDIR`);
      expect(run.status, command).toBe(1);
    }
  }, 180_000);
});
