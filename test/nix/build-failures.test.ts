import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attributeFailures, failedBuilders } from '../../src/nix/build-failures.js';

const NIX_ENV = { ...process.env, NIX_CONFIG: `${process.env.NIX_CONFIG ?? ''}\nsubstituters =\n` };
const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-build-failures-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DRV_A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-dep.drv';
const DRV_B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-b.drv';

describe('failedBuilders', () => {
  it("reads each failed builder's line and the indented lines under it, colours removed; the first message of a derivation named twice", () => {
    const log = [
      `building '${DRV_A}'...`,
      `\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m${DRV_A}\x1b[0m' failed with exit code 3;`,
      '       last 1 log lines:',
      '       > broken-on-purpose',
      `       For full logs, run 'nix log ${DRV_A}'.`,
      `error: builder for '${DRV_B}' failed with exit code 4;`,
      `error: 1 dependencies of derivation '${DRV_B}' failed to build`,
      `error: builder for '${DRV_A}' failed with exit code 9;`,
      '       > the second build of it',
    ].join('\n');
    const failed = failedBuilders(log);
    expect([...failed.keys()]).toEqual([DRV_A, DRV_B]);
    expect(failed.get(DRV_A)).toBe(
      [`error: builder for '${DRV_A}' failed with exit code 3;`, '       last 1 log lines:', '       > broken-on-purpose', `       For full logs, run 'nix log ${DRV_A}'.`].join('\n'),
    );
    // The next unindented line ends a message.
    expect(failed.get(DRV_B)).toBe(`error: builder for '${DRV_B}' failed with exit code 4;`);
  });

  it('keeps at most 15 lines of one message, and finds nothing in a log without a failed builder', () => {
    const long = [`error: builder for '${DRV_A}' failed with exit code 1;`, ...Array.from({ length: 40 }, (_, index) => `       > line ${index}`)].join('\n');
    expect(failedBuilders(long).get(DRV_A)?.split('\n')).toHaveLength(15);
    expect(failedBuilders("error: some substitutes for the outputs of derivation '/nix/store/x.drv' failed\nerror: builder for 'not-a-store-path.drv' failed").size).toBe(0);
  });
});

describe('attributeFailures', () => {
  it('gives each toplevel that did not build the messages of the failed builders it needs (through the store), and nothing for one none explains', async () => {
    const nonce = randomBytes(8).toString('hex');
    const file = path.join(scratch, 'fleet.nix');
    const derivation = (name: string, script: string, extra = '') =>
      `(builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${nonce}"; ${extra} args = [ "-c" ${JSON.stringify(script)} ]; })`;
    writeFileSync(
      file,
      `let
        dep = ${derivation('dep', 'echo dep-broken-on-purpose >&2; exit 3')};
        other = ${derivation('other', 'echo other-broken-on-purpose >&2; exit 6')};
        fine = ${derivation('fine', 'echo > $out')};
      in [
        ${derivation('nixos-system-a', 'echo > $out', 'inherit dep;')}
        ${derivation('nixos-system-b', 'echo > $out', 'inherit dep other;')}
        ${derivation('nixos-system-c', 'echo own-broken-on-purpose >&2; exit 4', 'inherit fine;')}
        ${derivation('nixos-system-d', 'echo > $out', 'inherit fine;')}
      ]\n`,
    );
    const instantiated = spawnSync('nix-instantiate', [file], { env: NIX_ENV, encoding: 'utf8' });
    expect(instantiated.status, instantiated.stderr).toBe(0);
    const [a, b, c, d] = instantiated.stdout.trim().split('\n') as [string, string, string, string];
    const built = spawnSync('nix', ['--extra-experimental-features', 'nix-command', 'build', '--no-link', '--keep-going', a, b, c, d], { env: NIX_ENV, encoding: 'utf8' });
    expect(built.status).not.toBe(0);

    // d built: asked about anyway, it has no cause. c failed by its own builder, which Nix 2.8 names only in the one
    // error it ends with (here a's): not explained, so the caller builds it again alone for its message.
    expect(built.stderr).toContain('dep-broken-on-purpose');
    expect(built.stderr).not.toContain('own-broken-on-purpose');
    const causes = await attributeFailures([a, b, c, d], built.stderr, 2);
    expect([...causes.keys()].sort()).toEqual([a, b].sort());
    expect(causes.get(a)).toMatch(/^error: builder for '\/nix\/store\/[a-z0-9]{32}-dep\.drv' failed with exit code 3;/);
    expect(causes.get(a)).toContain('dep-broken-on-purpose');
    expect(causes.get(a)).not.toContain('other-broken-on-purpose');
    // Both of b's dependencies, each with its own message.
    expect(causes.get(b)).toContain('dep-broken-on-purpose');
    expect(causes.get(b)).toContain('other-broken-on-purpose');
  });

  it("gives a toplevel whose own builder failed that builder's message when the log has it", async () => {
    const log = `error: builder for '${DRV_B}' failed with exit code 4;\n       > own-broken-on-purpose\n`;
    // Its own failure, named in the log: its message; DRV_A, made up, is no one's dependency in the store.
    expect(await attributeFailures([DRV_B, DRV_A], log, 2)).toEqual(new Map([[DRV_B, `error: builder for '${DRV_B}' failed with exit code 4;\n       > own-broken-on-purpose`]]));
  });
});

describe('attributeFailures, failures other than a builder', () => {
  it("gives each toplevel the fixed-output hash mismatch, the timeout or the missing platform of a dependency it shares, as Nix 2.8 prints them, not to be built again alone per system", async () => {
    const nonce = randomBytes(8).toString('hex');
    const file = path.join(scratch, 'others.nix');
    const derivation = (name: string, script: string, extra = '', system = 'builtins.currentSystem') =>
      `(builtins.derivation { name = "${name}"; system = ${system}; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = "${nonce}"; ${extra} args = [ "-c" ${JSON.stringify(script)} ]; })`;
    writeFileSync(
      file,
      `let
        fod = ${derivation('fod', 'echo not-the-hash > $out', 'outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "0000000000000000000000000000000000000000000000000000";')};
        slow = ${derivation('slow', 'sleep 60; echo > $out')};
        arm = ${derivation('arm', 'echo > $out', '', '"aarch64-linux"')};
      in [
        ${derivation('nixos-system-f1', 'echo > $out', 'inherit fod;')}
        ${derivation('nixos-system-f2', 'echo > $out', 'inherit fod;')}
        ${derivation('nixos-system-t1', 'echo > $out', 'inherit slow;')}
        ${derivation('nixos-system-t2', 'echo > $out', 'inherit slow;')}
        ${derivation('nixos-system-a1', 'echo > $out', 'inherit arm;')}
        ${derivation('nixos-system-a2', 'echo > $out', 'inherit arm;')}
      ]\n`,
    );
    const instantiated = spawnSync('nix-instantiate', [file], { env: NIX_ENV, encoding: 'utf8' });
    expect(instantiated.status, instantiated.stderr).toBe(0);
    const [f1, f2, t1, t2, a1, a2] = instantiated.stdout.trim().split('\n') as [string, string, string, string, string, string];
    const build = (drvs: string[]) =>
      spawnSync('nix', ['--extra-experimental-features', 'nix-command', 'build', '--no-link', '--keep-going', '--option', 'timeout', '1', ...drvs], { env: NIX_ENV, encoding: 'utf8' });
    const built = build([f1, f2, t1, t2]);
    expect(built.status).not.toBe(0);
    const causes = await attributeFailures([f1, f2, t1, t2], built.stderr, 2);
    expect([...causes.keys()].sort()).toEqual([f1, f2, t1, t2].sort());
    for (const toplevel of [f1, f2]) expect(causes.get(toplevel)).toMatch(/^error: hash mismatch in fixed-output derivation '\/nix\/store\/[a-z0-9]{32}-fod\.drv':\n\s+specified: /);
    for (const toplevel of [t1, t2]) expect(causes.get(toplevel)).toMatch(/^error: building of '\/nix\/store\/[a-z0-9]{32}-slow\.drv!out' from \.drv file timed out after 1 seconds$/);

    // A platform no machine has ends the whole build at once: the systems that need it are named, the others not.
    const platform = build([a1, a2]);
    expect(platform.status).not.toBe(0);
    const missing = await attributeFailures([a1, a2], platform.stderr, 2);
    expect([...missing.keys()].sort()).toEqual([a1, a2].sort());
    expect(missing.get(a1)).toMatch(/^error: a 'aarch64-linux' with features \{\} is required to build '\/nix\/store\/[a-z0-9]{32}-arm\.drv', but I am a /);
  }, 60_000);
});

describe("attributeFailures, a toplevel that is another one's dependency", () => {
  it("gives a toplevel that needs another toplevel whose builder failed that builder's message, as well as the failed one its own", async () => {
    const nonce = randomBytes(8).toString('hex');
    const file = path.join(scratch, 'host-guest.nix');
    const derivation = (name: string, script: string, extra = '') =>
      `(builtins.derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${nonce}"; ${extra} args = [ "-c" ${JSON.stringify(script)} ]; })`;
    writeFileSync(
      file,
      `let guest = ${derivation('nixos-system-guest', 'echo guest-broken-on-purpose >&2; exit 3')};
      in [ guest ${derivation('nixos-system-host', 'echo > $out', 'inherit guest;')} ]\n`,
    );
    const instantiated = spawnSync('nix-instantiate', [file], { env: NIX_ENV, encoding: 'utf8' });
    expect(instantiated.status, instantiated.stderr).toBe(0);
    const [guest, host] = instantiated.stdout.trim().split('\n') as [string, string];
    const built = spawnSync('nix', ['--extra-experimental-features', 'nix-command', 'build', '--no-link', '--keep-going', guest, host], { env: NIX_ENV, encoding: 'utf8' });
    expect(built.status).not.toBe(0);
    const causes = await attributeFailures([guest, host], built.stderr, 2);
    expect([...causes.keys()].sort()).toEqual([guest, host].sort());
    for (const toplevel of [guest, host]) {
      expect(causes.get(toplevel)).toMatch(/^error: builder for '\/nix\/store\/[a-z0-9]{32}-nixos-system-guest\.drv' failed with exit code 3;/);
      expect(causes.get(toplevel)).toContain('guest-broken-on-purpose');
    }
  });
});
