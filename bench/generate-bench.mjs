// Times `bento generate` as a whole process on a synthetic fleet of 1,000
// systems (500 non-flake directories and 10 flakes of 50 configurations),
// first into an empty generated/, then with nothing to change.
// Target: under 1.5 s on a 2-core machine. Run with `npm run bench`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'main.js');
const fleet = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-generate-'));
const env = { ...process.env, NIX_CONFIG: 'substituters =\n' };

function key(name) {
  const type = Buffer.from('ssh-ed25519');
  // A distinct key per machine: bento refuses one key for two machines.
  const point = createHash('sha256').update(name).digest();
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(32), point]).toString('base64')} root@${name}`;
}

writeFileSync(path.join(fleet, 'config.sh'), 'CHROOT_DIR=/srv/chroot\nREMOTE_IP=192.0.2.1\n');
mkdirSync(path.join(fleet, 'keys'));
const names = [];
for (let i = 0; i < 500; i++) {
  const name = `machine${String(i).padStart(4, '0')}`;
  mkdirSync(path.join(fleet, 'hosts', name), { recursive: true });
  writeFileSync(path.join(fleet, 'hosts', name, 'configuration.nix'), '{ ... }: { }\n');
  names.push(name);
}
for (let f = 0; f < 10; f++) {
  const configs = Array.from({ length: 50 }, (_, i) => `flake${f}-node${String(i).padStart(2, '0')}`);
  mkdirSync(path.join(fleet, 'hosts', `flake${f}`), { recursive: true });
  writeFileSync(
    path.join(fleet, 'hosts', `flake${f}`, 'flake.nix'),
    `{ outputs = { self }: { nixosConfigurations = { ${configs.map((c) => `"${c}" = { };`).join(' ')} }; }; }\n`,
  );
  names.push(...configs);
}
for (const name of names) writeFileSync(path.join(fleet, 'keys', `${name}.pub`), `${key(name)}\n`);

function time(label) {
  const start = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [cli, '--dir', fleet, 'generate'], { env, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.status !== 0) {
    console.error(run.stderr);
    process.exit(1);
  }
  console.log(`${label.padEnd(34)} ${seconds.toFixed(3)} s   (${run.stderr.trim().split('\n').pop()})`);
  return seconds;
}

console.log(`bento generate, ${names.length} systems (500 non-flake, 10 flakes x 50), ${os.cpus().length} cores`);
time('first run (empty generated/)');
const warm = [1, 2, 3, 4, 5].map((i) => time(`nothing changed, run ${i}`)).sort((a, b) => a - b);
console.log(`median with nothing changed: ${warm[2].toFixed(3)} s (target < 1.5 s)`);
if (!process.env.KEEP) rmSync(fleet, { recursive: true, force: true });
