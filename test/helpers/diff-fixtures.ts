/**
 * Real Nix fixtures for `bento diff`: a flake whose systems are tiny
 * derivations with a versioned dependency (so `nix store diff-closures` has
 * something to say), built in two versions, and a fake CHROOT_DIR saying
 * what each machine runs and should run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** flake.nix text: each system's toplevel depends on `hello-<version>` whose size grows with the version. */
export function versionedFlakeText(names: string[], version: string): string {
  const size = Math.round(Number(version) * 20000);
  const configs = names
    .map(
      (name) => `    ${JSON.stringify(name)} = { config.system.build.toplevel = builtins.derivation {
      name = "nixos-system-${name}-${version}";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out && ln -s \${hello} $out/sw && echo ${name} > $out/name" ];
    }; };`,
    )
    .join('\n');
  return `{
  outputs = { self }: let
    hello = builtins.derivation {
      name = "hello-${version}";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out && echo ${version} > $out/version && head -c ${size} /dev/zero > $out/data" ];
    };
  in {
    nixosConfigurations = {
${configs}
    };
  };
}
`;
}

const NIX = ['--extra-experimental-features', 'nix-command flakes'];

/** Builds the toplevels of `names` from the flake in `flakeDir` in one call; returns store path basenames by name. */
export function buildToplevels(flakeDir: string, names: string[]): Record<string, string> {
  const installables = names.map((name) => `path:${flakeDir}#nixosConfigurations.${name}.config.system.build.toplevel`);
  const result = spawnSync('nix', [...NIX, 'build', '--json', '--no-link', ...installables], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`nix build failed:\n${result.stderr}`);
  const built = JSON.parse(result.stdout) as { outputs: { out: string } }[];
  return Object.fromEntries(names.map((name, index) => [name, path.basename(built[index]?.outputs.out ?? '')]));
}

export interface ChrootSpec {
  /** states.txt lines, name → store path basename; undefined: no states.txt. */
  states?: Record<string, string>;
  /** Systems with a directory; each log is [store path basename, result], oldest first. */
  systems: Record<string, { logs?: [string, string][] }>;
}

/** Writes a CHROOT_DIR as `bento deploy` and the clients would leave it. */
export function writeChroot(dir: string, spec: ChrootSpec): void {
  mkdirSync(dir, { recursive: true });
  if (spec.states) {
    writeFileSync(
      path.join(dir, 'states.txt'),
      Object.entries(spec.states)
        .map(([name, basename]) => `${name}=${basename}\n`)
        .join(''),
    );
  }
  const base = Date.now() / 1000 - 3600;
  for (const [name, system] of Object.entries(spec.systems)) {
    mkdirSync(path.join(dir, name, 'logs'), { recursive: true });
    writeFileSync(path.join(dir, name, 'last_change_date'), '');
    utimesSync(path.join(dir, name, 'last_change_date'), base, base);
    (system.logs ?? []).forEach(([basename, result], index) => {
      const file = path.join(dir, name, 'logs', `20240101-12${String(10 + index)}_${basename}_${result}.log.gz`);
      writeFileSync(file, gzipSync(`log of ${name}\n`));
      // Later in the list = received later (the latest log is chosen by mtime).
      utimesSync(file, base + 60 * (index + 1), base + 60 * (index + 1));
    });
  }
}

/** Removes ANSI colour sequences (diff-closures colours sizes even into a pipe). */
export function plain(text: string): string {
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}
