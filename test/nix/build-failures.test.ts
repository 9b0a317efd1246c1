import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attributeFailures, failedBuilds } from '../../src/nix/build-failures.js';

const NIX_ENV = { ...process.env, NIX_CONFIG: `${process.env.NIX_CONFIG ?? ''}\nsubstituters =\n` };
const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-build-failures-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DRV_A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-dep.drv';
const DRV_B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-b.drv';

/** A Nix expression of a derivation built by `script` (sh), made distinct by `nonce`; `extra` attributes, `system` a Nix expression. */
function derivation(nonce: string, name: string, script: string, extra = '', system = 'builtins.currentSystem'): string {
  return `(builtins.derivation { name = "${name}"; system = ${system}; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = "${nonce}"; ${extra} args = [ "-c" ${JSON.stringify(script)} ]; })`;
}

/** The derivation paths of the list `expression` evaluates to, written as `file` in the scratch directory. */
function instantiate(file: string, expression: string): string[] {
  writeFileSync(path.join(scratch, file), `${expression}\n`);
  const instantiated = spawnSync('nix-instantiate', [path.join(scratch, file)], { env: NIX_ENV, encoding: 'utf8' });
  expect(instantiated.status, instantiated.stderr).toBe(0);
  return instantiated.stdout.trim().split('\n');
}

/** `nix build --keep-going` of `drvs` (with `options`, Nix's): what it printed. */
function buildKeepingOn(drvs: readonly string[], options: readonly string[] = []): { status: number | null; stderr: string } {
  return spawnSync('nix', ['--extra-experimental-features', 'nix-command', 'build', '--no-link', '--keep-going', ...options, ...drvs], { env: NIX_ENV, encoding: 'utf8' });
}

describe('failedBuilds', () => {
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
    const failed = failedBuilds(log);
    expect([...failed.keys()]).toEqual([DRV_A, DRV_B]);
    expect(failed.get(DRV_A)).toBe(
      [`error: builder for '${DRV_A}' failed with exit code 3;`, '       last 1 log lines:', '       > broken-on-purpose', `       For full logs, run 'nix log ${DRV_A}'.`].join('\n'),
    );
    // The next unindented line ends a message.
    expect(failed.get(DRV_B)).toBe(`error: builder for '${DRV_B}' failed with exit code 4;`);
  });

  it('keeps at most 15 lines of one message, and finds nothing in a log without a failed builder', () => {
    const long = [`error: builder for '${DRV_A}' failed with exit code 1;`, ...Array.from({ length: 40 }, (_, index) => `       > line ${index}`)].join('\n');
    expect(failedBuilds(long).get(DRV_A)?.split('\n')).toHaveLength(15);
    expect(failedBuilds("error: some substitutes for the outputs of derivation '/nix/store/x.drv' failed\nerror: builder for 'not-a-store-path.drv' failed").size).toBe(0);
  });
});

describe('attributeFailures', () => {
  it('gives each toplevel that did not build the messages of the failed builders it needs (through the store), and nothing for one none explains', async () => {
    const nonce = randomBytes(8).toString('hex');
    const made = (name: string, script: string, extra = '') => derivation(nonce, name, script, extra);
    const [a, b, c, d] = instantiate(
      'fleet.nix',
      `let
        dep = ${made('dep', 'echo dep-broken-on-purpose >&2; exit 3')};
        other = ${made('other', 'echo other-broken-on-purpose >&2; exit 6')};
        fine = ${made('fine', 'echo > $out')};
      in [
        ${made('nixos-system-a', 'echo > $out', 'inherit dep;')}
        ${made('nixos-system-b', 'echo > $out', 'inherit dep other;')}
        ${made('nixos-system-c', 'echo own-broken-on-purpose >&2; exit 4', 'inherit fine;')}
        ${made('nixos-system-d', 'echo > $out', 'inherit fine;')}
      ]`,
    ) as [string, string, string, string];
    const built = buildKeepingOn([a, b, c, d]);
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
    const made = (name: string, script: string, extra = '', system?: string) => derivation(nonce, name, script, extra, system);
    const [f1, f2, t1, t2, a1, a2] = instantiate(
      'others.nix',
      `let
        fod = ${made('fod', 'echo not-the-hash > $out', 'outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "0000000000000000000000000000000000000000000000000000";')};
        slow = ${made('slow', 'sleep 60; echo > $out')};
        arm = ${made('arm', 'echo > $out', '', '"aarch64-linux"')};
      in [
        ${made('nixos-system-f1', 'echo > $out', 'inherit fod;')}
        ${made('nixos-system-f2', 'echo > $out', 'inherit fod;')}
        ${made('nixos-system-t1', 'echo > $out', 'inherit slow;')}
        ${made('nixos-system-t2', 'echo > $out', 'inherit slow;')}
        ${made('nixos-system-a1', 'echo > $out', 'inherit arm;')}
        ${made('nixos-system-a2', 'echo > $out', 'inherit arm;')}
      ]`,
    ) as [string, string, string, string, string, string];
    const build = (drvs: string[]) => buildKeepingOn(drvs, ['--option', 'timeout', '1']);
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
    const guestExpression = derivation(nonce, 'nixos-system-guest', 'echo guest-broken-on-purpose >&2; exit 3');
    const [guest, host] = instantiate('host-guest.nix', `let guest = ${guestExpression}; in [ guest ${derivation(nonce, 'nixos-system-host', 'echo > $out', 'inherit guest;')} ]`) as [string, string];
    const built = buildKeepingOn([guest, host]);
    expect(built.status).not.toBe(0);
    const causes = await attributeFailures([guest, host], built.stderr, 2);
    expect([...causes.keys()].sort()).toEqual([guest, host].sort());
    for (const toplevel of [guest, host]) {
      expect(causes.get(toplevel)).toMatch(/^error: builder for '\/nix\/store\/[a-z0-9]{32}-nixos-system-guest\.drv' failed with exit code 3;/);
      expect(causes.get(toplevel)).toContain('guest-broken-on-purpose');
    }
  });
});
