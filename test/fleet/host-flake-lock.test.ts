/**
 * fleet/host-flake-lock.ts against real Nix 2.8: a host flake's lock is
 * made from a copy the evaluator reads (only its flake.lock is the
 * evaluator's to rewrite), and put in place only when Nix changed it,
 * keeping its mode.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { updateHostFlakeLock } from '../../src/fleet/host-flake-lock.js';
import { hostFlakeText, lockedHash, writeDep, writeHost } from '../helpers/flake-fixtures.js';

let work: string;
let fleet: string;
let dep: string;

beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-host-lock-'));
  // Run as root, the evaluator (an unprivileged user) reads the input: let everyone read it.
  chmodSync(work, 0o755);
  fleet = path.join(work, 'fleet');
  dep = path.join(work, 'deps', 'dep');
  writeDep(dep, 'v1');
  writeHost(fleet, 'hosts/laptop', hostFlakeText({ depA: dep }));
});

afterEach(() => rmSync(work, { recursive: true, force: true }));

const lockFile = () => path.join(fleet, 'hosts/laptop', 'flake.lock');

describe('updateHostFlakeLock', () => {
  it('writes a new lock, then rewrites it only when an input changed, keeping its mode', async () => {
    const first = await updateHostFlakeLock(fleet, 'hosts/laptop');
    expect(first).toMatchObject({ ok: true, before: undefined });
    expect(first.ok && first.after).toBe(readFileSync(lockFile(), 'utf8'));
    expect(statSync(lockFile()).mode & 0o777).toBe(0o644);
    const v1 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    expect(v1).toBeDefined();

    chmodSync(lockFile(), 0o664);
    const unchanged = await updateHostFlakeLock(fleet, 'hosts/laptop');
    expect(unchanged, JSON.stringify(unchanged)).toMatchObject({ ok: true });
    expect(unchanged.ok && unchanged.before === unchanged.after).toBe(true);

    writeDep(dep, 'v2');
    const changed = await updateHostFlakeLock(fleet, 'hosts/laptop');
    expect(changed).toMatchObject({ ok: true });
    const v2 = lockedHash(path.join(fleet, 'hosts/laptop'), 'depA');
    expect(v2).toBeDefined();
    expect(v2).not.toBe(v1);
    expect(statSync(lockFile()).mode & 0o777).toBe(0o664);
  });

  it('leaves a flake with no inputs and no lock without one, as Nix does', async () => {
    writeHost(fleet, 'hosts/bare', '{ outputs = _: { }; }\n');
    expect(await updateHostFlakeLock(fleet, 'hosts/bare')).toEqual({ ok: true, before: undefined, after: undefined });
    expect(existsSync(path.join(fleet, 'hosts/bare', 'flake.lock'))).toBe(false);
  });

  it('refuses a host directory with a link out of the fleet, naming it, and writes no lock', async () => {
    symlinkSync('/etc', path.join(fleet, 'hosts/laptop', 'outside'));
    const result = await updateHostFlakeLock(fleet, 'hosts/laptop');
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.error).toContain('outside');
    expect(() => statSync(lockFile())).toThrow();
  });
});
