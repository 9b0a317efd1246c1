/**
 * What deploy records or publishes is on the disk before it counts
 * (util/durable.ts): every file or directory it renames into CHROOT_DIR or
 * next to the signing key was flushed (fsync) before the rename, and the
 * directory holding the new name is flushed after it. Checked on the
 * system calls of a real `bento deploy` (strace), not on the code: a
 * flush forgotten by any writer — states.txt, last_change_date,
 * rollout.json, a version directory and its files, the config/ link, a
 * prebuilt cache, the signing key — fails it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { makeFleet } from '../helpers/fleet.js';
import { NIX_ENV, useTestServer } from '../helpers/server.js';
import { isRoot } from '../helpers/shell.js';
import { DURABILITY_CALLS, durabilityProblems, parseStraceLog } from '../helpers/strace.js';

const suite = useTestServer();
const { n } = suite;

describe.skipIf(!isRoot)('deploy flushes what it records and publishes', () => {
  it('parses strace lines, split ones included', () => {
    const log = [
      '[pid  12] fsync(18</srv/x/.states.txt.tmp-12>) = 0',
      '[pid  12] rename("/srv/x/.states.txt.tmp-12", "/srv/x/states.txt" <unfinished ...>',
      '[pid  13] execve("/usr/bin/nix", ["nix"], 0x0 /* 1 var */) = 0',
      '[pid  12] <... rename resumed>) = 0',
      '[pid  15] fsync(20</srv/x/.signed-by.tmp-15> <unfinished ...>',
      '[pid  15] <... fsync resumed>) = 0',
      '[pid  12] fsync(19</srv/x>) = -1 EIO (Input/output error)',
      '[pid  14] renameat2(AT_FDCWD</tmp>, "/var/bento/.bento/incoming/a", 3</var/bento>, "a", RENAME_NOREPLACE) = 0',
      '[pid  14] renameat2(AT_FDCWD</var/bento>, "b.tmp", AT_FDCWD</var/bento>, "/var/bento/b", RENAME_NOREPLACE) = -1 EEXIST (File exists)',
    ].join('\n');
    expect(parseStraceLog(log)).toEqual([
      { kind: 'fsync', pid: 12, path: '/srv/x/.states.txt.tmp-12' },
      { kind: 'execve', pid: 13 },
      { kind: 'rename', pid: 12, from: '/srv/x/.states.txt.tmp-12', to: '/srv/x/states.txt' },
      { kind: 'fsync', pid: 15, path: '/srv/x/.signed-by.tmp-15' },
      { kind: 'rename', pid: 14, from: '/var/bento/.bento/incoming/a', to: '/var/bento/a' },
    ]);
  });

  it('flushes every file and directory before renaming it into place, and the directory after, in every writer', () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), 'bento-durable-keys-'));
    suite.later(() => rmSync(keys, { recursive: true, force: true }));
    const secret = path.join(keys, 'signing-key');
    const chrootDir = suite.server.chrootDir;
    const fleet = makeFleet({
      config: `CHROOT_DIR=${chrootDir}\nREMOTE_IP=127.0.0.1\nSIGNING_KEY=${secret}\nROLLOUT_WAVES="${n('a')} *"\n`,
      hosts: { pair: { flake: [n('a'), n('b')], utils: true }, pi: { flake: [n('pi')], files: { PREBUILT: '' } }, [n('r')]: { nonFlake: true } },
    });
    suite.later(fleet.cleanup);
    suite.server.addUsers([n('a'), n('b'), n('pi'), n('r')]);

    const deployTraced = (label: string) => {
      const log = path.join(keys, `strace-${label}.log`);
      const run = spawnSync('strace', ['-f', '-y', '-qq', '-o', log, '-e', DURABILITY_CALLS, process.execPath, CLI, 'deploy'], {
        env: { ...process.env, ...NIX_ENV, BENTO_DIR: fleet.root, NO_COLOR: '1' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(run.status, run.stderr).toBe(0);
      return durabilityProblems(parseStraceLog(readFileSync(log, 'utf8')), { roots: [chrootDir, keys], ownCallsOnly: true });
    };

    // A first deploy: the signing key, caches, version directories, states.txt, the rollout.
    const first = deployTraced('first');
    // Then every system changed: config/ links replaced, states.txt and rollout.json rewritten.
    writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n('a')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'pair', `${n('b')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', 'pi', `${n('pi')}.nix`), 'changed\n');
    writeFileSync(path.join(fleet.root, 'hosts', n('r'), 'configuration.nix'), '{ ... }: { networking.hostName = "changed"; }\n');
    const second = deployTraced('second');

    expect([...first.problems, ...second.problems]).toEqual([]);
    const names = new Set([...first.renamed, ...second.renamed].map((file) => path.relative(chrootDir, file)));
    const kinds = (pattern: RegExp) => [...names].some((name) => pattern.test(name));
    // Each writer was seen, so the check above covered it.
    expect(names).toContain('states.txt');
    expect(names).toContain('rollout.json');
    expect(names).toContain(`${n('a')}/last_change_date`);
    expect(names).toContain(`${n('a')}/config`);
    expect(kinds(new RegExp(`^${n('b')}/\\.config-[0-9a-f]{16}`))).toBe(true);
    expect(kinds(new RegExp(`^${n('pi')}/\\.cache-`))).toBe(true);
    expect([...first.renamed].some((file) => file === secret)).toBe(true);
    expect(existsSync(secret)).toBe(true);
  });
});
