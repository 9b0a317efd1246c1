// The floor of a build: one raw batched `nix build` of the same toplevels,
// as root, each flake named by a `path:` reference (Nix reads the directory
// as it is, no git), on fresh derivations (a new nonce first).
import path from 'node:path';
import { timed } from './process.mjs';

const NIX = ['--extra-experimental-features', 'nix-command flakes'];

export function toplevelRef(flakeDir, name) {
  return `path:${flakeDir}#nixosConfigurations.${name}.config.system.build.toplevel`;
}

/** Times one `nix build --no-link` of every system of `flakes` (host directory → names) in the fleet `dir`. */
export async function rawBatchedBuild(dir, flakes) {
  const installables = Object.entries(flakes).flatMap(([hostDir, names]) => names.map((name) => toplevelRef(path.join(dir, 'hosts', hostDir), name)));
  return (await timed('nix', [...NIX, 'build', '--no-link', ...installables])).seconds;
}
