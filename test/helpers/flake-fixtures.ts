/**
 * Fleets for `bento flake-update`: host flakes whose inputs are local
 * flakes (`path:/abs/dir`), so that Nix can lock and update them offline.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes (or rewrites) a dependency flake whose content, hence narHash, depends on `value`. */
export function writeDep(dir: string, value: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'flake.nix'), `{\n  outputs = { self }: { value = ${JSON.stringify(value)}; };\n}\n`);
}

/** flake.nix of a host with these inputs (name → absolute directory). */
export function hostFlakeText(inputs: Record<string, string>): string {
  const lines = Object.entries(inputs).map(([name, dir]) => `  inputs.${name}.url = ${JSON.stringify(`path:${dir}`)};\n`);
  return `{\n${lines.join('')}  outputs = { self, ... }: { };\n}\n`;
}

export function writeHost(fleetDir: string, relative: string, text: string): string {
  const dir = path.join(fleetDir, relative);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'flake.nix'), text);
  return dir;
}

/** The fleet's usual shared directory and the host's link to it (which must not be followed). */
export function addUtilsLink(fleetDir: string, relative: string): void {
  mkdirSync(path.join(fleetDir, 'utils'), { recursive: true });
  writeFileSync(path.join(fleetDir, 'utils', 'flake.nix'), '{ outputs = { self }: { }; }\n');
  symlinkSync('../../utils', path.join(fleetDir, relative, 'utils'));
}

/** The locked narHash of a root input, or undefined. */
export function lockedHash(flakeDir: string, input: string): string | undefined {
  const lock = JSON.parse(readFileSync(path.join(flakeDir, 'flake.lock'), 'utf8')) as {
    nodes: Record<string, { inputs?: Record<string, string>; locked?: { narHash?: string } }>;
    root: string;
  };
  const key = lock.nodes[lock.root]?.inputs?.[input];
  return key === undefined ? undefined : lock.nodes[key]?.locked?.narHash;
}

/** The 7-character short form bento prints for a narHash: hexadecimal, computed here independently. */
export function short(narHash: string | undefined): string {
  return Buffer.from((narHash ?? '').replace(/^sha256-/, ''), 'base64').toString('hex').slice(0, 7);
}

export function git(cwd: string, ...args: string[]): string {
  const result = spawnSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.org', ...args], { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}
