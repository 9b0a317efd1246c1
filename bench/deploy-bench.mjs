// Prints two figures (run as root, after `npm run build`):
//  (a) `bento deploy` with nothing changed on 200 systems (20 flakes x 10):
//      whole-process time, target under 3 s, and zero builds;
//  (b) building 40 flake systems: one batched `bento build` against one
//      `nix build` per system one after another, on fresh derivations.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'main.js');
const env = { ...process.env, NIX_CONFIG: 'substituters =\nsandbox = false\n' };
if (process.getuid() !== 0) {
  console.error('deploy-bench: run me as root (deploy sets ownership; the benchmark creates system users)');
  process.exit(1);
}

function key(name) {
  const type = Buffer.from('ssh-ed25519');
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(32), createHash('sha256').update(name).digest()]).toString('base64')} root@${name}`;
}

function flake(names, nonce) {
  const entries = names.map((name) => `"${name}" = { config.system.build.toplevel = builtins.derivation { name = "nixos-system-${name}-24.05"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; nonce = builtins.readFile ./nonce; args = [ "-c" "mkdir -p $out && echo ${name} > $out/name" ]; }; };`);
  return { 'flake.nix': `{ outputs = { self }: { nixosConfigurations = { ${entries.join(' ')} }; }; }\n`, nonce };
}

function makeFleet(chrootDir, flakes, nonce) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-deploy-'));
  writeFileSync(path.join(dir, 'config.sh'), `CHROOT_DIR=${chrootDir}\nREMOTE_IP=192.0.2.1\n`);
  mkdirSync(path.join(dir, 'keys'));
  for (const [flakeName, names] of Object.entries(flakes)) {
    mkdirSync(path.join(dir, 'hosts', flakeName), { recursive: true });
    for (const [file, content] of Object.entries(flake(names, nonce))) writeFileSync(path.join(dir, 'hosts', flakeName, file), content);
    for (const name of names) writeFileSync(path.join(dir, 'keys', `${name}.pub`), `${key(name)}\n`);
  }
  return dir;
}

function timed(file, args, options = {}) {
  const start = process.hrtime.bigint();
  const run = spawnSync(file, args, { env, encoding: 'utf8', ...options });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.status !== 0) {
    console.error(run.stdout, run.stderr);
    throw new Error(`${file} ${args.join(' ')} failed`);
  }
  return { seconds, stdout: run.stdout, stderr: run.stderr };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// (a) deploy, nothing changed, 200 systems
const prefix = `bb${randomBytes(2).toString('hex')}`;
const chrootDir = `/srv/bento-bench-${prefix}`;
const flakes = Object.fromEntries(Array.from({ length: 20 }, (_, f) => [`flake${f}`, Array.from({ length: 10 }, (_, i) => `${prefix}f${f}n${i}`)]));
const names = Object.values(flakes).flat();
const createdGroup = spawnSync('getent', ['group', 'sftp_users']).status !== 0;
if (createdGroup) execFileSync('groupadd', ['--system', 'sftp_users']);
const fleetA = makeFleet(chrootDir, flakes, randomBytes(8).toString('hex'));
try {
  for (const name of names) execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', path.join(chrootDir, name), '--gid', 'sftp_users', '--shell', '/usr/sbin/nologin', name]);
  const first = timed(process.execPath, [cli, '--dir', fleetA, 'deploy']);
  console.log(`(a) bento deploy, ${names.length} systems, first run (builds):   ${first.seconds.toFixed(3)} s  (${first.stderr.trim().split('\n').pop()})`);
  const runs = [1, 2, 3, 4, 5].map(() => timed(process.execPath, [cli, '--dir', fleetA, 'deploy']));
  const builds = runs.filter((run) => run.stdout.includes('building')).length;
  console.log(`(a) bento deploy, ${names.length} systems, nothing changed: median ${median(runs.map((r) => r.seconds)).toFixed(3)} s of ${runs.map((r) => r.seconds.toFixed(3)).join(', ')} (target < 3 s); runs that built anything: ${builds}`);
} finally {
  for (const name of names) spawnSync('userdel', [name]);
  if (createdGroup) spawnSync('groupdel', ['sftp_users']);
  rmSync(chrootDir, { recursive: true, force: true });
  rmSync(fleetA, { recursive: true, force: true });
}

// (b) 40 flake systems: batched against one nix build each
const forty = Array.from({ length: 40 }, (_, i) => `sys${String(i).padStart(2, '0')}`);
const fleetB = makeFleet('/srv/unused', { fleet40: forty }, randomBytes(8).toString('hex'));
try {
  timed(process.execPath, [cli, '--dir', fleetB, 'generate']);
  const batched = timed(process.execPath, [cli, '--dir', fleetB, 'build']);
  writeFileSync(path.join(fleetB, 'hosts', 'fleet40', 'nonce'), randomBytes(8).toString('hex'));
  const start = process.hrtime.bigint();
  for (const name of forty) {
    timed('nix', ['--extra-experimental-features', 'nix-command flakes', 'build', '--no-link', `path:${path.join(fleetB, 'hosts', 'fleet40')}#nixosConfigurations.${name}.config.system.build.toplevel`]);
  }
  const sequential = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`(b) 40 flake systems: bento build (batched, whole process) ${batched.seconds.toFixed(3)} s; one nix build per system ${sequential.toFixed(3)} s; ratio ${(sequential / batched.seconds).toFixed(1)}x`);
} finally {
  rmSync(fleetB, { recursive: true, force: true });
}
