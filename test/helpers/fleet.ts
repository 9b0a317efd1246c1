/**
 * Builds throw-away fleets for tests: config.sh, hosts/ with flakes whose
 * toplevels are tiny real derivations (Nix evaluates and builds them offline
 * in milliseconds), non-flake hosts, utils/ and keys/.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A syntactically valid ed25519 public key line, deterministic per name. */
export function testKey(name: string): string {
  const type = Buffer.from('ssh-ed25519');
  const point = createHash('sha256').update(name).digest();
  const blob = Buffer.concat([u32(type.length), type, u32(point.length), point]);
  return `ssh-ed25519 ${blob.toString('base64')} root@${name}`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** flake.nix text defining `names`, each a derivation that depends on `<name>.nix` when present. */
export function flakeText(names: string[], extra = ''): string {
  const configs = names
    .map(
      (name) => `    ${JSON.stringify(name)} = { config.system.build.toplevel = builtins.derivation {
      name = "nixos-system-${name}-24.05";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out && echo ${name} > $out/name && echo k > $out/kernel && echo i > $out/initrd && mkdir $out/kernel-modules" ];
      content = if builtins.pathExists ./${name}.nix then builtins.readFile ./${name}.nix else "";
    }; };`,
    )
    .join('\n');
  return `{\n  outputs = { self }: {\n${extra}    nixosConfigurations = {\n${configs}\n    };\n  };\n}\n`;
}

export interface HostSpec {
  /** A flake with these nixosConfigurations. */
  flake?: string[];
  /** Raw flake.nix text (e.g. a broken one). */
  flakeText?: string;
  /** A non-flake host (configuration.nix). */
  nonFlake?: boolean;
  /** Extra files, relative to the host directory. */
  files?: Record<string, string>;
  /** Add the usual utils -> ../../utils symlink. */
  utils?: boolean;
}

export interface FleetSpec {
  config?: string;
  hosts: Record<string, HostSpec>;
  /** Systems that get keys/<name>.pub (default: every name in the hosts). */
  keys?: string[];
}

export interface TestFleet {
  root: string;
  cleanup(): void;
}

export const DEFAULT_CONFIG = 'CHROOT_DIR=/srv/bento-test\nREMOTE_IP=127.0.0.1\nREMOTE_PORT=2222\n';

export function makeFleet(spec: FleetSpec, parent = os.tmpdir()): TestFleet {
  const root = mkdtempSync(path.join(parent, 'bento-fleet-'));
  writeFileSync(path.join(root, 'config.sh'), spec.config ?? DEFAULT_CONFIG);
  mkdirSync(path.join(root, 'hosts'));
  mkdirSync(path.join(root, 'keys'));
  mkdirSync(path.join(root, 'utils'));
  writeFileSync(path.join(root, 'utils', 'common.nix'), '{ }\n');
  const names: string[] = [];
  for (const [dir, host] of Object.entries(spec.hosts)) {
    const hostDir = path.join(root, 'hosts', dir);
    mkdirSync(hostDir, { recursive: true });
    if (host.flake) {
      writeFileSync(path.join(hostDir, 'flake.nix'), flakeText(host.flake));
      names.push(...host.flake);
    }
    if (host.flakeText) writeFileSync(path.join(hostDir, 'flake.nix'), host.flakeText);
    if (host.nonFlake) {
      writeFileSync(path.join(hostDir, 'configuration.nix'), `{ ... }: { networking.hostName = ${JSON.stringify(dir)}; }\n`);
      names.push(dir);
    }
    for (const [file, content] of Object.entries(host.files ?? {})) {
      mkdirSync(path.dirname(path.join(hostDir, file)), { recursive: true });
      writeFileSync(path.join(hostDir, file), content);
    }
    if (host.utils) symlinkSync('../../utils', path.join(hostDir, 'utils'));
  }
  for (const name of spec.keys ?? names) writeFileSync(path.join(root, 'keys', `${name}.pub`), `${testKey(name)}\n`);
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
