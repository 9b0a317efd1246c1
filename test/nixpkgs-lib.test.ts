/**
 * Where the NixOS module tests find the nixpkgs lib
 * (test/fixtures/nixos/nixpkgs-lib.nix): BENTO_NIXPKGS_LIB, else
 * ../shared/nixpkgs-lib next to the checkout, else the pinned fetch. The
 * fetch of the real pin needs a network, which these machines lack: it is
 * checked here with a tarball of the same lib served from a file:// URL,
 * which goes through the same builtins.fetchTarball and hash check.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nixString } from '../src/util/quote.js';

const LOCATOR = path.join(import.meta.dirname, 'fixtures', 'nixos', 'nixpkgs-lib.nix');
const LIB = process.env.BENTO_NIXPKGS_LIB as string;

let dir: string;
const storePaths: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bento-nixpkgs-lib-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  // What the fetch put into the store (nothing else refers to it).
  for (const storePath of storePaths) spawnSync('nix-store', ['--delete', storePath], { stdio: 'ignore' });
});

/** The locator copied to `<root>/checkout/test/fixtures/nixos/`, so that its ../shared is `<root>/shared`. */
function checkoutIn(root: string): string {
  const fixtures = path.join(root, 'checkout', 'test', 'fixtures', 'nixos');
  mkdirSync(fixtures, { recursive: true });
  copyFileSync(LOCATOR, path.join(fixtures, 'nixpkgs-lib.nix'));
  return path.join(fixtures, 'nixpkgs-lib.nix');
}

function locate(locator: string, env: NodeJS.ProcessEnv, pin?: string) {
  const environment = { ...process.env, ...env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete environment[key];
  const args = ['--eval', '--strict', '--json', '--expr', `import ${locator} ${pin ? `{ pin = ${pin}; }` : '{ }'}`];
  const run = spawnSync('nix-instantiate', args, { encoding: 'utf8', env: environment });
  return { status: run.status, stderr: run.stderr, located: run.status === 0 ? (JSON.parse(run.stdout) as { source: string; dir: string }) : undefined };
}

describe('the nixpkgs lib of the NixOS module tests', () => {
  it('this run has one (vitest\'s global setup found it and passed it on as BENTO_NIXPKGS_LIB)', () => {
    expect(LIB).toBeTruthy();
    expect(existsSync(path.join(LIB, 'default.nix'))).toBe(true);
  });

  it('BENTO_NIXPKGS_LIB comes first; one that is not a lib/ is refused by name', () => {
    const locator = checkoutIn(path.join(dir, 'env'));
    expect(locate(locator, { BENTO_NIXPKGS_LIB: LIB }).located).toEqual({ source: 'BENTO_NIXPKGS_LIB', dir: LIB });
    const wrong = locate(locator, { BENTO_NIXPKGS_LIB: dir });
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain(`BENTO_NIXPKGS_LIB=${dir} is not a nixpkgs lib/ directory`);
  });

  it('then ../shared/nixpkgs-lib/lib next to the checkout', () => {
    const root = path.join(dir, 'shared');
    const locator = checkoutIn(root);
    mkdirSync(path.join(root, 'shared', 'nixpkgs-lib'), { recursive: true });
    symlinkSync(LIB, path.join(root, 'shared', 'nixpkgs-lib', 'lib'));
    expect(locate(locator, { BENTO_NIXPKGS_LIB: undefined }).located).toEqual({
      source: '../shared/nixpkgs-lib next to the checkout',
      dir: path.join(root, 'shared', 'nixpkgs-lib', 'lib'),
    });
  });

  it('then the pinned fetch: a fixed revision and its hash, and a tarball that does not match the hash is refused', () => {
    // The pin names one revision and its NAR hash, never a branch.
    const text = readFileSync(LOCATOR, 'utf8');
    expect(text).toMatch(/url = "https:\/\/github\.com\/nix-community\/nixpkgs\.lib\/archive\/[0-9a-f]{40}\.tar\.gz";/);
    expect(text).toMatch(/sha256 = "sha256-[A-Za-z0-9+/]{43}=";/);

    const root = path.join(dir, 'fetch');
    const locator = checkoutIn(root);
    // A tarball as GitHub serves one: a single top directory holding lib/.
    const source = path.join(root, 'nixpkgs.lib-0123abc');
    mkdirSync(source);
    execFileSync('cp', ['-R', '--dereference', LIB, path.join(source, 'lib')]);
    const tarball = path.join(root, 'lib.tar.gz');
    execFileSync('tar', ['-czf', tarball, '-C', root, 'nixpkgs.lib-0123abc']);
    const hash = execFileSync('nix-hash', ['--type', 'sha256', '--base32', path.join(source)], { encoding: 'utf8' }).trim();

    const pin = (sha256: string) => `{ url = ${nixString(`file://${tarball}`)}; sha256 = ${nixString(sha256)}; what = "a test tarball"; }`;
    const fetched = locate(locator, { BENTO_NIXPKGS_LIB: undefined }, pin(hash));
    expect(fetched.stderr).toBe('');
    expect(fetched.located?.source).toBe('the pinned fetch (a test tarball)');
    const fetchedDir = fetched.located?.dir as string;
    storePaths.push(path.dirname(fetchedDir));
    expect(fetchedDir).toMatch(/^\/nix\/store\/[a-z0-9]{32}-source\/lib$/);
    // It is a lib the module system runs on.
    const version = execFileSync('nix-instantiate', ['--eval', '--expr', `(import ${fetchedDir}).trivial.release`], { encoding: 'utf8' });
    expect(version.trim()).toMatch(/^"[0-9]{2}\.[0-9]{2}"$/);

    const wrongHash = locate(locator, { BENTO_NIXPKGS_LIB: undefined }, pin('sha256-cBEymOf4/o3FD5AZnzC3J9hLbiZ+QDT/KDuyHXVJOpM='));
    expect(wrongHash.status).not.toBe(0);
    expect(wrongHash.stderr).toContain('hash mismatch');
  });
});
