/**
 * `bento diff` against real Nix: two versions of each system are built, a
 * fake CHROOT_DIR says which one each machine runs, and the real output of
 * `nix store diff-closures` (or of an nvd on PATH) is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diffCommand } from '../../src/commands/diff.js';
import { UserError } from '../../src/errors.js';
import { skippedHostDirMessage } from '../../src/fleet/fleet.js';
import { makeFleet, type TestFleet } from '../helpers/fleet.js';
import { Collector } from '../helpers/collect.js';
import { buildToplevels, plain, versionedFlakeText, writeChroot } from '../helpers/diff-fixtures.js';

const FLAKE_SYSTEMS = ['alpha', 'beta', 'delta', 'epsilon', 'gamma'];
/** A store path that no store holds. */
const NOWHERE = '00000000000000000000000000000000-nixos-system-gamma-0.5';

let work: string;
let fleet: TestFleet;
let chroot: string;
let v1: Record<string, string>;
let v2: Record<string, string>;

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'bento-diff-'));
  chroot = path.join(work, 'chroot');
  fleet = makeFleet(
    {
      config: `CHROOT_DIR=${chroot}\nREMOTE_IP=127.0.0.1\n`,
      hosts: { machines: { flakeText: versionedFlakeText(FLAKE_SYSTEMS, '1.0') }, legacy: { nonFlake: true } },
      keys: [...FLAKE_SYSTEMS, 'legacy'],
    },
    work,
  );
  const hostDir = path.join(fleet.root, 'hosts', 'machines');
  v1 = buildToplevels(hostDir, ['alpha']);
  writeFileSync(path.join(hostDir, 'flake.nix'), versionedFlakeText(FLAKE_SYSTEMS, '2.0'));
  v2 = buildToplevels(hostDir, ['alpha', 'beta', 'gamma']);
  writeChroot(chroot, {
    states: { alpha: v2.alpha as string, beta: v2.beta as string, gamma: v2.gamma as string, delta: v2.alpha as string },
    systems: {
      // An older log of the new version, then the latest: the old version.
      alpha: { logs: [[v2.alpha as string, 'failure'], [v1.alpha as string, 'rollback']] },
      beta: { logs: [[v2.beta as string, 'success']] },
      gamma: { logs: [[NOWHERE, 'success']] },
      delta: {},
      legacy: { logs: [['1dyc4lgrb2vvrwjyih7vxijmfcz1s2yp-nixos-system-legacy-24.05', 'success']] },
    },
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

async function diff(names: string[] = [], color?: boolean) {
  const stdout = new Collector();
  const stderr = new Collector();
  const status = await diffCommand({ fleetDir: fleet.root, names, color }, { stdout, stderr });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

describe('diffCommand with real Nix', () => {
  it('compares what each machine runs with what it should run, and says why the others cannot be compared', async () => {
    const { status, stdout, stderr } = await diff();
    const out = plain(stdout);
    // Fleet order: alpha beta delta epsilon gamma legacy.
    expect(out).toMatch(
      new RegExp(
        [
          `^Changes in alpha between ${v1.alpha} and ${v2.alpha}\n`,
          '(.*\n)*?',
          'beta is running the latest version\n',
          'delta has not reported yet\n',
          'epsilon has not reported yet \\(CHROOT_DIR has no directory for it: never deployed\\?\\)\n',
          'legacy is a non-flake system: it cannot be compared .*\n$',
        ].join(''),
      ),
    );
    // The closure diff of nix store diff-closures, passed through.
    expect(out).toContain('hello: 1.0 → 2.0');
    expect(out).toContain('nixos-system-alpha: 1.0 → 2.0');
    // gamma runs a store path this machine does not have: one line, and exit 1.
    expect(stderr).toBe(
      `gamma: cannot compare ${NOWHERE} with ${v2.gamma}: /nix/store/${NOWHERE} (what it runs, from its latest log) is not in the local store: garbage-collected, or never built here\n`,
    );
    expect(status).toBe(1);
  });

  it('exits 0 when every selected comparison worked (NAME selection)', async () => {
    const { status, stdout, stderr } = await diff(['beta', 'alpha']);
    expect(status).toBe(0);
    expect(stderr).toBe('');
    const lines = plain(stdout).split('\n');
    expect(lines[0]).toBe(`Changes in alpha between ${v1.alpha} and ${v2.alpha}`);
    expect(lines).toContain('beta is running the latest version');
    expect(stdout).not.toContain('gamma');
  });

  it('skips hosts/common (no machine) with one line, and compares the others', async () => {
    const common = path.join(fleet.root, 'hosts', 'common');
    mkdirSync(common);
    writeFileSync(path.join(common, 'base.nix'), '{ }\n');
    try {
      const { status, stdout, stderr } = await diff(['beta']);
      expect(stderr).toBe(`${skippedHostDirMessage('common')}\n`);
      expect(plain(stdout)).toContain('beta is running the latest version');
      expect(status).toBe(0);
    } finally {
      rmSync(common, { recursive: true, force: true });
    }
  });

  it('keeps the colours of diff-closures unless told not to', async () => {
    expect((await diff(['alpha'])).stdout).toContain('\x1b[');
    const { stdout } = await diff(['alpha'], false);
    expect(stdout).not.toContain('\x1b');
    expect(stdout).toMatch(/^hello: 1\.0 → 2\.0, \+19\.5 KiB$/m);
  });

  it('refuses an unknown NAME, listing the known ones', async () => {
    await expect(diff(['alpha', 'nosuch'])).rejects.toThrow(UserError);
    await expect(diff(['nosuch'])).rejects.toThrow(/unknown system "nosuch" \(known: alpha, beta, delta, epsilon, gamma, legacy\)/);
  });

  it('uses nvd when it is on PATH', async () => {
    const bin = path.join(work, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'nvd'), '#!/bin/sh\necho "nvd stub: $*"\n');
    chmodSync(path.join(bin, 'nvd'), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${savedPath ?? ''}`;
    try {
      const { status, stdout } = await diff(['alpha']);
      expect(status).toBe(0);
      expect(stdout).toBe(`Changes in alpha between ${v1.alpha} and ${v2.alpha}\nnvd stub: diff /nix/store/${v1.alpha} /nix/store/${v2.alpha}\n`);
      // A diff tool that fails: reported under the header, exit 1, and the next system still goes.
      writeFileSync(path.join(bin, 'nvd'), '#!/bin/sh\necho "nvd: cannot read closure" >&2\nexit 3\n');
      const failed = await diff(['alpha', 'beta']);
      expect(failed.status).toBe(1);
      expect(failed.stdout).toBe(`Changes in alpha between ${v1.alpha} and ${v2.alpha}\nbeta is running the latest version\n`);
      expect(failed.stderr).toBe(`alpha: cannot compare: nvd diff /nix/store/${v1.alpha} /nix/store/${v2.alpha} failed:\n  | nvd: cannot read closure\n`);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('diffCommand without states.txt', () => {
  it('says states.txt is missing instead of failing on every system', async () => {
    const bare = path.join(work, 'bare-chroot');
    writeChroot(bare, { systems: { alpha: { logs: [[v1.alpha as string, 'success']] } } });
    const other = makeFleet(
      { config: `CHROOT_DIR=${bare}\nREMOTE_IP=127.0.0.1\n`, hosts: { machines: { flakeText: versionedFlakeText(['alpha'], '2.0') } } },
      work,
    );
    const promise = diffCommand({ fleetDir: other.root, names: [] }, { stdout: new Collector(), stderr: new Collector() });
    await expect(promise).rejects.toThrow(UserError);
    await expect(diffCommand({ fleetDir: other.root, names: [] }, { stdout: new Collector(), stderr: new Collector() })).rejects.toThrow(
      `${bare}/states.txt does not exist: no expected store path to compare with`,
    );
  });

  it('reports a missing CHROOT_DIR as a user error', async () => {
    const gone = path.join(work, 'no-such-chroot');
    const other = makeFleet({ config: `CHROOT_DIR=${gone}\nREMOTE_IP=127.0.0.1\n`, hosts: { legacy: { nonFlake: true } } }, work);
    await expect(diffCommand({ fleetDir: other.root, names: [] }, { stdout: new Collector(), stderr: new Collector() })).rejects.toThrow(
      /cannot read CHROOT_DIR .*no-such-chroot: ENOENT/,
    );
  });
});
