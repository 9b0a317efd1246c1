/**
 * Version directories one deploy writes share their files by content
 * (chroot/publish.ts, sharingByContent): seen through whole deploys. A
 * later deploy that publishes only some systems, and removes an old version
 * that shared its files with the others' current ones, leaves those whole
 * and their record usable (chroot/published-stats.ts: the change times
 * moved, so the files are read again); and a shared file changed in place,
 * through one system's name, is found in every system that holds it — the
 * record and the check that reads a shared file once (SharedFileChecks)
 * hide it from none. Root, real Nix, a test server.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTLE_MS } from '../../src/chroot/published-stats.js';
import { bento } from '../helpers/cli.js';
import { isRoot } from '../helpers/shell.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';

const suite = useTestServer();
const { n } = suite;

const newFleet = suite.fleet;

/** sha256sum -c of the system's config/ against its own manifest: empty when every file holds its digest. */
function manifestProblems(name: string): string {
  const check = spawnSync('sha256sum', ['-c', '--strict', '--quiet', '.bento-manifest'], { cwd: path.join(suite.server.chrootDir, name, 'config'), encoding: 'utf8' });
  return check.status === 0 ? '' : `${check.stdout}${check.stderr}`;
}

const published = (name: string, file: string) => path.join(suite.server.chrootDir, name, 'config', file);

describe.skipIf(!isRoot)('bento deploy: versions written together share files', () => {
  it('a partial deploy removing an old version leaves the others whole; a shared file changed in place is published again for every system that holds it', () => {
    const [a, b, c] = [n('sa'), n('sb'), n('sc')];
    // Three flakes, one system each: the client files and common.txt are the same bytes in all three.
    const fleet = newFleet({ ha: { flake: [a], files: { 'common.txt': 'same\n' } }, hb: { flake: [b], files: { 'common.txt': 'same\n' } }, hc: { flake: [c], files: { 'common.txt': 'same\n' } } });
    suite.server.addUsers([a, b, c]);
    const deploy = () => bento(['deploy'], { env: { BENTO_DIR: fleet.root, ...NIX_ENV } });
    const first = deploy();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('deploy: 3 published, 0 unchanged, 0 failed');
    for (const file of ['bento-client.sh', 'common.txt']) {
      expect(new Set([a, b, c].map((name) => lstatSync(published(name, file)).ino)).size, file).toBe(1);
    }

    // a alone, twice: the second removes a's first version, whose files were b's and c's too.
    for (const round of [1, 2]) {
      writeFileSync(path.join(fleet.root, 'hosts', 'ha', `${a}.nix`), `# edit ${round}\n`);
      const run = deploy();
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain('deploy: 1 published, 2 unchanged, 0 failed');
    }
    expect(lstatSync(published(b, 'common.txt')).nlink).toBe(2);
    for (const name of [a, b, c]) expect(manifestProblems(name), name).toBe('');
    for (let i = 0; i < 2; i++) expect(deploy().stderr).toContain('deploy: 0 published, 3 unchanged, 0 failed');

    // Changed in place through b's name, same size and modification time: c's file is that file.
    const target = published(b, 'common.txt');
    const { atime, mtime } = lstatSync(target);
    writeFileSync(target, 'evil\n');
    utimesSync(target, atime, mtime);
    expect(readFileSync(published(c, 'common.txt'), 'utf8')).toBe('evil\n');
    // Past the record's racy margin (published-stats.ts): only the change time tells.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4 * SETTLE_MS);
    const repair = deploy();
    expect(repair.status, repair.stderr).toBe(0);
    for (const name of [b, c]) expect(repair.stdout).toContain(`${name}: its published files do not match their manifest (common.txt differs from the manifest): publishing it again`);
    expect(repair.stderr).toContain('deploy: 2 published, 1 unchanged, 0 failed');
    for (const name of [a, b, c]) expect(manifestProblems(name), name).toBe('');
    expect(readFileSync(published(c, 'common.txt'), 'utf8')).toBe('same\n');
    expect(deploy().stderr).toContain('deploy: 0 published, 3 unchanged, 0 failed');
  });
});
