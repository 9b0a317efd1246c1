/**
 * NixOS modules evaluated as NixOS would: the real nixpkgs lib.evalModules
 * with the NixOS options bento sets declared as nixpkgs declares them
 * (test/fixtures/nixos/eval.nix).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { nixString } from '../../src/util/quote.js';

const EVAL = path.join(import.meta.dirname, '..', 'fixtures', 'nixos', 'eval.nix');

/** The JSON value of `attribute` of the configuration made of these module files. */
export function evalNixos<T>(moduleFiles: string[], attribute: string): T {
  const modules = `[ ${moduleFiles.map((file) => nixString(file)).join(' ')} ]`;
  const json = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', EVAL, '--arg', 'modules', modules, '-A', attribute], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(json) as T;
}

/** Writes a NixOS module `<name>.nix` into `dir`; returns its path, for evalNixos. */
export function writeModule(dir: string, name: string, text: string): string {
  const file = path.join(dir, `${name}.nix`);
  writeFileSync(file, text);
  return file;
}
