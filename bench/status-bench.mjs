// Times `bento status --once` on a synthetic fleet: 1,000 systems × 20 logs.
// Each run is a whole process (node start-up included), as cron would run it.
// Usage: npm run build && node bench/status-bench.mjs [systems] [logs] [runs]
// Target: median under 0.5 s. Prints figures only; it asserts nothing.
// KEEP=1 keeps the synthetic fleet (its path is printed) for profiling.
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'main.js');
if (!existsSync(cli)) {
  process.stderr.write('dist/main.js is missing: run `npm run build` first\n');
  process.exit(1);
}

const SYSTEMS = Number(process.argv[2] ?? 1000);
const LOGS = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 5);
const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const RESULTS = ['success', 'failure', 'rollback', 'autoupdate'];
/** A small whole log, as a client uploads it: status checks the logs a verdict rests on. */
const LOG = gzipSync('bento update\n'.repeat(200));

/** A deterministic 32-character nix hash for `n`. */
function hashOf(n) {
  let text = '';
  let x = (n + 1) * 2654435761;
  for (let i = 0; i < 32; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    text += NIX32[x % 32];
  }
  return text;
}

async function buildFleet(dir) {
  const now = Date.now() / 1000;
  const states = [];
  for (let s = 0; s < SYSTEMS; s++) {
    const name = `host-${String(s).padStart(4, '0')}`;
    const isFlake = s % 4 !== 0;
    const expected = `${hashOf(s * 1000)}-nixos-system-${name}-24.05`;
    if (isFlake) states.push(`${name}=${expected}`);
    const logs = path.join(dir, name, 'logs');
    await mkdir(logs, { recursive: true });
    await mkdir(path.join(dir, name, 'config'));
    const changed = path.join(dir, name, 'last_change_date');
    await writeFile(changed, '');
    await utimes(changed, now - 3600, now - 3600);
    await Promise.all(
      Array.from({ length: LOGS }, async (_, l) => {
        const age = (LOGS - l) * 7200 - (s % 3) * 3000;
        const day = new Date((now - age) * 1000);
        const stamp = `${day.toISOString().slice(0, 10).replace(/-/g, '')}-${day.toISOString().slice(11, 16).replace(':', '')}`;
        const store = l === LOGS - 1 && isFlake && s % 2 ? expected : `${hashOf(s * 1000 + l + 1)}-nixos-system-${name}-24.05`;
        const file = path.join(logs, `${stamp}_${store}_${RESULTS[(s + l) % 7 === 0 ? (s + l) % 4 : 0]}.log.gz`);
        await writeFile(file, LOG);
        await utimes(file, now - age, now - age);
      }),
    );
  }
  await writeFile(path.join(dir, 'states.txt'), `${states.join('\n')}\n`);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'bento-status-bench-'));
try {
  const started = performance.now();
  await buildFleet(dir);
  // The fleet directory bento reads CHROOT_DIR from.
  const fleet = path.join(dir, '.fleet');
  await mkdir(fleet);
  await writeFile(path.join(fleet, 'config.sh'), `CHROOT_DIR=${dir}\nREMOTE_IP=192.0.2.1\n`);
  process.stdout.write(`fleet: ${SYSTEMS} systems × ${LOGS} logs in ${dir} (built in ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);

  const times = [];
  for (let run = 1; run <= RUNS; run++) {
    const start = performance.now();
    const result = spawnSync(process.execPath, [cli, '--dir', fleet, 'status', '--once'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const seconds = (performance.now() - start) / 1000;
    const rows = result.stdout.split('\n').filter((line) => line.startsWith('host-')).length;
    if (result.error || result.status === 1 || rows !== SYSTEMS) {
      process.stderr.write(`run ${run} failed (exit ${result.status}, ${rows} rows): ${result.error ?? result.stderr}\n`);
      process.exit(1);
    }
    times.push(seconds);
    process.stdout.write(`run ${run}: ${seconds.toFixed(3)} s (exit ${result.status}, ${rows} rows)\n`);
  }
  process.stdout.write(`median: ${median(times).toFixed(3)} s over ${RUNS} runs (target < 0.5 s)\n`);

  // For scale: what starting node alone costs on this machine.
  const bare = [];
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    spawnSync(process.execPath, ['-e', '']);
    bare.push((performance.now() - start) / 1000);
  }
  process.stdout.write(`node start-up alone: median ${median(bare).toFixed(3)} s\n`);
} finally {
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
}
