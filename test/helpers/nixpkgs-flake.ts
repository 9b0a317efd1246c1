/**
 * The stand-in nixpkgs flake (test/fixtures/nixos/nixpkgs-flake/), for
 * fleets written as for real machines: assembled in a directory of its own
 * with the real nixpkgs lib (BENTO_NIXPKGS_LIB, which vitest's global setup
 * finds) and the option declarations and package stand-ins of
 * test/fixtures/nixos/. A fleet's flake takes it as its `nixpkgs` input,
 * `path:<dir>` (useNixpkgsFlake). Everyone may read it: bento evaluates
 * fleet code as an unprivileged user when it runs as root.
 */
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'nixos');

/** Assembles the stand-in in `dir` (made if missing); returns `dir`. */
export function makeNixpkgsFlake(dir: string): string {
  const lib = process.env.BENTO_NIXPKGS_LIB;
  if (!lib) throw new Error('BENTO_NIXPKGS_LIB is not set: vitest\'s global setup (test/helpers/global-setup.ts) sets it for the run');
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(FIXTURES, 'nixpkgs-flake'), dir, { recursive: true });
  cpSync(lib, path.join(dir, 'lib'), { recursive: true, dereference: true });
  for (const file of ['options.nix', 'stub-pkgs.nix']) cpSync(path.join(FIXTURES, file), path.join(dir, file));
  makeReadable(dir);
  return dir;
}

/** Points the `nixpkgs` input of the flake in `flakeFile` at the stand-in in `dir`. */
export function useNixpkgsFlake(flakeFile: string, dir: string): void {
  const text = readFileSync(flakeFile, 'utf8');
  const replaced = text.replace(/inputs\.nixpkgs\.url = "[^"]*";/, `inputs.nixpkgs.url = "path:${dir}";`);
  if (replaced === text) throw new Error(`${flakeFile} has no inputs.nixpkgs.url line to point at the stand-in`);
  writeFileSync(flakeFile, replaced);
}

function makeReadable(file: string): void {
  const stats = statSync(file);
  chmodSync(file, stats.isDirectory() ? 0o755 : 0o644);
  if (stats.isDirectory()) for (const entry of readdirSync(file)) makeReadable(path.join(file, entry));
}
