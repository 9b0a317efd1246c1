// Synthetic fleets for the benchmarks: flakes whose systems are tiny
// derivations (fresh ones on demand: each reads a nonce file), non-flake
// directories, and a distinct key per machine (bento refuses one key for two
// machines).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function sshKey(name) {
  const type = Buffer.from('ssh-ed25519');
  const point = createHash('sha256').update(name).digest();
  const u32 = (n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(32), point]).toString('base64')} root@${name}`;
}

export const newNonce = () => randomBytes(8).toString('hex');

/** A flake whose toplevels are derivations that read ./nonce: a new nonce, new derivations to build. */
export function flakeNix(names) {
  const entries = names.map(
    (name) =>
      `"${name}" = { config.system.build.toplevel = builtins.derivation { name = "nixos-system-${name}-24.05"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = builtins.readFile ./nonce; args = [ "-c" "mkdir -p $out && echo ${name} > $out/name" ]; }; };`,
  );
  return `{ outputs = { self }: { nixosConfigurations = { ${entries.join(' ')} }; }; }\n`;
}

/** `count` system names `${prefix}0000`…, the same for every fleet of the run (and its accounts). */
export function systemNames(prefix, count) {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
}

/** Splits `names` into flakes of `perFlake` systems: { flake000: [...], ... }. */
export function flakesOf(names, perFlake) {
  const flakes = {};
  for (let i = 0; i < names.length; i += perFlake) flakes[`flake${String(i / perFlake).padStart(3, '0')}`] = names.slice(i, i + perFlake);
  return flakes;
}

export function makeFleetDir(label) {
  return mkdtempSync(path.join(os.tmpdir(), `bento-bench-${label}-`));
}

function writeConfig(dir, chrootDir) {
  writeFileSync(path.join(dir, 'config.sh'), `CHROOT_DIR=${chrootDir}\nREMOTE_IP=192.0.2.1\n`);
  mkdirSync(path.join(dir, 'keys'), { recursive: true });
}

/**
 * Adds flakes to the fleet `dir` (made with its config.sh when it has none):
 * `flakes` maps a host directory to its systems' names.
 */
export function writeFlakeFleet(dir, chrootDir, flakes, nonce = newNonce()) {
  writeConfig(dir, chrootDir);
  for (const [hostDir, names] of Object.entries(flakes)) {
    mkdirSync(path.join(dir, 'hosts', hostDir), { recursive: true });
    writeFileSync(path.join(dir, 'hosts', hostDir, 'flake.nix'), flakeNix(names));
    writeFileSync(path.join(dir, 'hosts', hostDir, 'nonce'), nonce);
    for (const name of names) writeFileSync(path.join(dir, 'keys', `${name}.pub`), `${sshKey(name)}\n`);
  }
  return dir;
}

/** A new nonce in every flake of `flakes`: every toplevel is a new derivation. */
export function renewNonce(dir, flakes, nonce = newNonce()) {
  for (const hostDir of Object.keys(flakes)) writeFileSync(path.join(dir, 'hosts', hostDir, 'nonce'), nonce);
  return nonce;
}

/**
 * The fleet `bento generate` is measured on: half non-flake directories,
 * half flakes of 50 configurations (1,000 systems: 500 and 10 × 50), no
 * builds (generate evaluates nothing it need not).
 */
export function writeGenerateFleet(dir, systems) {
  writeConfig(dir, GENERATE_FLEET_CHROOT);
  const names = [];
  const plain = Math.ceil(systems / 2);
  for (let i = 0; i < plain; i++) {
    const name = `machine${String(i).padStart(5, '0')}`;
    mkdirSync(path.join(dir, 'hosts', name), { recursive: true });
    writeFileSync(path.join(dir, 'hosts', name, 'configuration.nix'), '{ ... }: { }\n');
    names.push(name);
  }
  for (let f = 0; f * 50 < systems - plain; f++) {
    const count = Math.min(50, systems - plain - f * 50);
    const configs = Array.from({ length: count }, (_, i) => `flake${f}-node${String(i).padStart(2, '0')}`);
    mkdirSync(path.join(dir, 'hosts', `flake${f}`), { recursive: true });
    writeFileSync(path.join(dir, 'hosts', `flake${f}`, 'flake.nix'), `{ outputs = { self }: { nixosConfigurations = { ${configs.map((c) => `"${c}" = { };`).join(' ')} }; }; }\n`);
    names.push(...configs);
  }
  for (const name of names) writeFileSync(path.join(dir, 'keys', `${name}.pub`), `${sshKey(name)}\n`);
  return names;
}

/** The CHROOT_DIR of writeGenerateFleet's config.sh: never made, it only names generate's record. */
export const GENERATE_FLEET_CHROOT = '/srv/chroot';

/**
 * The record `bento generate` as root keeps of a fleet of `chrootDir`
 * (src/commands/shared/generate-record-store.ts), and the flakes' names it
 * shares with deploy (src/chroot/flake-names-cache.ts).
 */
export function removeGenerateRecord(chrootDir) {
  const digest = createHash('sha256').update(path.resolve(chrootDir)).digest('hex').slice(0, 16);
  for (const kind of ['flake-names', 'generated']) rmSync(path.join('/var/cache/bento', `${kind}-${digest}.json`), { force: true });
}

/**
 * The lock file a deploy as root leaves in /run for `chrootDir`, and its caches in /var/cache/bento
 * (src/chroot/chroot-dir.ts): a run removes it with the chroot.
 */
export function removeChroot(chrootDir) {
  remove(chrootDir);
  const digest = createHash('sha256').update(path.resolve(chrootDir)).digest('hex').slice(0, 16);
  rmSync(path.join('/run', `bento-deploy-${digest}.lock`), { force: true });
  // Deploy's names cache and record of published files (src/chroot/flake-names-cache.ts, published-stats.ts),
  // generate's record (src/commands/shared/generate-record-store.ts).
  for (const kind of ['flake-names', 'published-stats', 'generated']) rmSync(path.join('/var/cache/bento', `${kind}-${digest}.json`), { force: true });
}

export function remove(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
