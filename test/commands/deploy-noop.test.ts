/**
 * `bento deploy` with nothing changed writes nothing: not in the fleet, not
 * in CHROOT_DIR, not in its temporary directory, not in its lock (no
 * snapshot of hosts/, no Nix: the flakes' names come from deploy's cache,
 * chroot/flake-names-cache.ts, which is not rewritten either). Seen from outside, without strace: every
 * inode's number, times and size before and after (a directory's times
 * catch a file made and removed in it). And a deploy that publishes
 * several systems replaces states.txt once (its renames, traced). Root,
 * real Nix, a test server.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flakeNamesCachePath } from '../../src/chroot/flake-names-cache.js';
import { sha256 } from '../../src/util/hash.js';
import { bento, CLI } from '../helpers/cli.js';
import { isRoot } from '../helpers/shell.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';
import { DURABILITY_CALLS, parseStraceLog } from '../helpers/strace.js';

const suite = useTestServer();
const { n } = suite;

const newFleet = suite.fleet;

/** Every inode under `roots` (links not followed): number, modification and change times, size, mode. */
function inventory(roots: readonly string[]): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (file: string) => {
    const stats = lstatSync(file, { bigint: true, throwIfNoEntry: false });
    if (!stats) return;
    found[file] = `${stats.ino} ${stats.mtimeNs} ${stats.ctimeNs} ${stats.size} ${stats.mode.toString(8)}`;
    if (stats.isDirectory()) for (const entry of readdirSync(file)) visit(path.join(file, entry));
  };
  for (const root of roots) visit(root);
  return found;
}

describe.skipIf(!isRoot)('bento deploy with nothing changed', () => {
  it('writes nothing and runs no Nix; an edit is then built from a snapshot and published, states.txt replaced once', () => {
    const chrootDir = suite.server.chrootDir;
    const names = [n('a'), n('b'), n('c'), n('r')];
    const fleet = newFleet({ pair: { flake: [n('a'), n('b')], utils: true, files: { 'extra/data.txt': 'data\n' } }, solo: { flake: [n('c')] }, [n('r')]: { nonFlake: true } });
    suite.server.addUsers(names);
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'bento-noop-tmp-'));
    // As /tmp is to the evaluator (nix/unprivileged.ts), less the sticky bit: bento's own temporary directories are below it.
    chmodSync(tmp, 0o755);
    suite.later(() => rmSync(tmp, { recursive: true, force: true }));
    const env = { BENTO_DIR: fleet.root, ...NIX_ENV, TMPDIR: tmp, BENTO_DEBUG: '1' };
    const first = bento(['deploy'], { env });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('deploy: 4 published');

    const lock = path.join('/run', `bento-deploy-${sha256(path.resolve(chrootDir)).slice(0, 16)}.lock`);
    expect(existsSync(lock)).toBe(true);
    const roots = [fleet.root, chrootDir, tmp, lock, flakeNamesCachePath(chrootDir)];
    suite.later(() => rmSync(flakeNamesCachePath(chrootDir), { force: true }));
    const before = inventory(roots);
    const again = bento(['deploy'], { env });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('deploy: 0 published, 4 unchanged, 0 failed');
    expect(again.stderr).not.toMatch(/debug: \$ .*\bnix\b/);
    expect(inventory(roots)).toEqual(before);

    // An edit: each flake system changed, built from a snapshot of what was read, and published.
    for (const [dir, name] of [['pair', n('a')], ['pair', n('b')], ['solo', n('c')]] as const) writeFileSync(path.join(fleet.root, 'hosts', dir, `${name}.nix`), `# ${name} edited\n`);
    const cache = readFileSync(flakeNamesCachePath(chrootDir), 'utf8');
    const log = path.join(tmp, 'strace.log');
    const traced = spawnSync('strace', ['-f', '-y', '-qq', '-o', log, '-e', DURABILITY_CALLS, process.execPath, CLI, 'deploy'], {
      env: { ...process.env, ...env, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(traced.status, traced.stderr).toBe(0);
    expect(traced.stderr).toContain('deploy: 3 published, 1 unchanged');
    // Nix evaluated the edited flakes again (their names' key changed), and the cache says so.
    expect(traced.stderr).toMatch(/debug: \$ .*\bnix\b.* eval /);
    expect(readFileSync(flakeNamesCachePath(chrootDir), 'utf8')).not.toBe(cache);
    const renames = parseStraceLog(readFileSync(log, 'utf8')).filter((call) => call.kind === 'rename' && call.to === path.join(chrootDir, 'states.txt'));
    expect(renames).toHaveLength(1);
    for (const [, name] of [['pair', n('a')], ['pair', n('b')], ['solo', n('c')]] as const) {
      expect(readFileSync(path.join(chrootDir, name, 'config', `${name}.nix`), 'utf8')).toBe(`# ${name} edited\n`);
    }
    // Nothing of the snapshot stays.
    expect(readdirSync(tmp).filter((entry) => entry !== 'strace.log')).toEqual([]);

    // Once more with nothing changed: nothing written again.
    const settled = inventory(roots.filter((root) => root !== tmp));
    const last = bento(['deploy'], { env });
    expect(last.stderr).toContain('deploy: 0 published, 4 unchanged, 0 failed');
    expect(inventory(roots.filter((root) => root !== tmp))).toEqual(settled);
  }, 180_000);
});
