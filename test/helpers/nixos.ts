/**
 * NixOS modules evaluated as NixOS would: the real nixpkgs lib.evalModules
 * with the NixOS options bento sets declared as nixpkgs declares them
 * (test/fixtures/nixos/eval.nix).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nixString } from '../../src/util/quote.js';

const EVAL = path.join(import.meta.dirname, '..', 'fixtures', 'nixos', 'eval.nix');

/** The JSON value of `attribute` of the configuration made of these module files. */
export function evalNixos<T>(moduleFiles: string[], attribute: string, pkgsDir?: string): T {
  const modules = `[ ${moduleFiles.map((file) => nixString(file)).join(' ')} ]`;
  const packages = pkgsDir === undefined ? [] : ['--argstr', 'pkgsDir', pkgsDir];
  const json = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', EVAL, '--arg', 'modules', modules, ...packages, '-A', attribute], {
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

/**
 * The Debian packages that hold the tools of each nixpkgs package a unit
 * names in its `path` (or that systemd adds: coreutils, findutils, gnugrep,
 * gnused, systemd). A unit run with a PATH made of these has what it would
 * have on NixOS, and a tool its `path` lacks is missing here too.
 */
const DEBIAN_PACKAGES: Record<string, string> = {
  bash: 'bash',
  coreutils: 'coreutils',
  diffutils: 'diffutils',
  findutils: 'findutils',
  getent: 'libc-bin',
  git: 'git',
  gnugrep: 'grep',
  gnused: 'sed',
  gzip: 'gzip',
  jq: 'jq',
  nix: 'nix-bin',
  openssh: 'openssh-client',
  systemd: 'systemd',
  'util-linux': 'util-linux',
};

/**
 * Fills `pkgsDir/<attribute>/{bin,sbin}` (the stand-ins for pkgs.* of eval.nix, stub-pkgs.nix)
 * with links to the executables of the Debian package of each attribute.
 * nixpkgs' bash also has bin/sh (pkgs/shells/bash/5.nix: `ln -s bash
 * "$out/bin/sh"`), Debian's does not (its sh is dash): added.
 */
export function linkPackages(pkgsDir: string, attributes: readonly string[] = Object.keys(DEBIAN_PACKAGES)): void {
  for (const attribute of attributes) {
    const debian = DEBIAN_PACKAGES[attribute];
    if (!debian) throw new Error(`no Debian package is known for pkgs.${attribute}`);
    const files = execFileSync('dpkg', ['-L', debian], { encoding: 'utf8' }).split('\n');
    for (const kind of ['bin', 'sbin']) mkdirSync(path.join(pkgsDir, attribute, kind), { recursive: true });
    for (const file of files) {
      const match = /^(?:\/usr)?\/(s?bin)\/([^/]+)$/.exec(file);
      if (!match || !isExecutable(file)) continue;
      const link = path.join(pkgsDir, attribute, match[1] as string, match[2] as string);
      rmSync(link, { force: true });
      symlinkSync(file, link);
    }
    if (attribute === 'bash') {
      rmSync(path.join(pkgsDir, 'bash', 'bin', 'sh'), { force: true });
      symlinkSync('/bin/bash', path.join(pkgsDir, 'bash', 'bin', 'sh'));
    }
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Runs a service's `script` as NixOS runs it: written after `set -e` into a
 * script run by the runtime shell (bash; makeJobScript in
 * nixos/lib/systemd-lib.nix), with only the environment systemd gives the
 * unit (eval.nix's `environments.<service>`: its Environment= and the PATH
 * of its `path`), in `cwd` (systemd's default WorkingDirectory is /).
 */
export function runUnitScript(script: string, environment: Record<string, string>, options: { dir: string; cwd?: string; input?: string }) {
  const file = path.join(options.dir, `unit-script-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `#!/bin/bash\nset -e\n${script}\n`, { mode: 0o755 });
  return spawnSync(file, [], { encoding: 'utf8', env: environment, cwd: options.cwd ?? '/', input: options.input ?? '' });
}
