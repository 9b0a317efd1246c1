/**
 * fleet/host-flake-lock.ts as root (bento flake-update), against real Nix
 * 2.8, in a host directory another user writes (the evaluator, made by
 * global-setup.ts, stands for a writer of the fleet): the lock keeps its
 * owner, given before the new file has its name, so that the user, who
 * may replace flake.lock by a link at any moment (here right after root
 * renamed the new lock into place: node:fs wrapped only to give the user
 * that moment), never has root give it what the link leads to.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { updateHostFlakeLock } from '../../src/fleet/host-flake-lock.js';
import { EVALUATOR_USER } from '../../src/nix/unprivileged.js';
import { hostFlakeText, writeDep, writeHost } from '../helpers/flake-fixtures.js';

/** Runs once, right after a rename onto `target`. */
const race: { target?: string; after?: () => void } = {};

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const renameSync: typeof fs.renameSync = (from, to) => {
    fs.renameSync(from, to);
    if (race.after && to === race.target) {
      const after = race.after;
      race.after = undefined;
      after();
    }
  };
  return { ...fs, default: { ...fs, renameSync }, renameSync };
});

const { uid, gid } = (() => {
  const fields = spawnSync('getent', ['passwd', EVALUATOR_USER], { encoding: 'utf8' }).stdout.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
})();

let work: string;
afterEach(() => {
  race.after = undefined;
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-host-lock-race-'));
  chmodSync(work, 0o755);
});

describe.skipIf(process.getuid?.() !== 0)('updateHostFlakeLock as root, in a host directory another user writes', () => {
  it('gives the new lock the old one\'s owner, never to what a link put in its place leads to', async () => {
    const fleet = path.join(work, 'fleet');
    const dep = path.join(work, 'deps', 'dep');
    writeDep(dep, 'v1');
    const host = writeHost(fleet, 'hosts/laptop', hostFlakeText({ depA: dep }));
    const lockFile = path.join(host, 'flake.lock');
    expect(await updateHostFlakeLock(fleet, 'hosts/laptop')).toMatchObject({ ok: true });
    // The host's directory and its lock are the other user's.
    chownSync(host, uid, gid);
    chownSync(lockFile, uid, gid);
    const victim = path.join(work, 'shadow');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    writeDep(dep, 'v2');
    race.target = lockFile;
    race.after = () => {
      const result = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', 'sh', '-c', 'mv "$1" "$1.moved" && ln -s "$2" "$1"', 'sh', lockFile, victim], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
    };
    const changed = await updateHostFlakeLock(fleet, 'hosts/laptop');
    expect(race.after, 'the lock was rewritten, and the other user had its moment').toBeUndefined();
    expect(changed).toMatchObject({ ok: true });
    expect(statSync(victim)).toMatchObject({ uid: 0, gid: 0 });
    expect(readFileSync(victim, 'utf8')).toBe('secret\n');
    // The new lock, moved away by the other user, is its own.
    expect(statSync(`${lockFile}.moved`)).toMatchObject({ uid, gid });
  });
});
