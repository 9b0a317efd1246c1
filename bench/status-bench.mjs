// Times `bento status --once` on a synthetic fleet: 1,000 systems × 20 logs
// by default; `node bench/status-bench.mjs 10000 100` for the largest fleet
// LOG_KEEP=100 allows. Each run is a whole process (node start-up included),
// as cron would run it: first reading every log (--no-cache, what every run
// cost before status remembered its reads), then a run that fills the cache
// and runs that use it (the logs/ directories unchanged since), then a run
// after every machine polled (each heartbeat renamed into its logs/ anew:
// every logs/ directory changed, no log did). Three systems in four send
// heartbeats (docs/protocol.md §5a), the fourth is an older client.
// Usage: npm run build && node bench/status-bench.mjs [systems] [logs] [runs]
// Prints figures only; it asserts nothing. KEEP=1 keeps the synthetic fleet
// (its path is printed), REUSE=DIR runs on a fleet kept before.
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
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
  if (process.env.REUSE) return;
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
    if (s % 4 !== 3) await writeHeartbeat(logs, name, expected, now - 60 - (s % 500));
    // The last log arrived a while ago (a directory changed in the last
    // seconds is read again on every run: status/log-cache.ts).
    await utimes(logs, now - 600, now - 600);
  }
  await writeFile(path.join(dir, 'states.txt'), `${states.join('\n')}\n`);
}

/** The client's heartbeat (docs/protocol.md §5a): written under a temporary name, renamed into logs/. */
async function writeHeartbeat(logs, name, running, time) {
  const temporary = path.join(logs, '.heartbeat.tmp-1');
  await writeFile(temporary, `bento heartbeat of ${name} on x\nprotocol: 2\nrunning: ${running}\nbooted: ${running}\nreboot-pending: no\n\n`);
  if (time !== undefined) await utimes(temporary, time, time);
  await rename(temporary, path.join(logs, 'heartbeat'));
}

/** Every machine with a heartbeat polls once more: its heartbeat renamed into place now. */
async function pollAll(dir) {
  for (let s = 0; s < SYSTEMS; s++) {
    if (s % 4 === 3) continue;
    const name = `host-${String(s).padStart(4, '0')}`;
    await writeHeartbeat(path.join(dir, name, 'logs'), name, `${hashOf(s * 1000)}-nixos-system-${name}-24.05`);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const dir = process.env.REUSE ?? (await mkdtemp(path.join(os.tmpdir(), 'bento-status-bench-')));
const cacheHome = await mkdtemp(path.join(os.tmpdir(), 'bento-status-bench-cache-'));
try {
  const started = performance.now();
  await buildFleet(dir);
  // The fleet directory bento reads CHROOT_DIR from.
  const fleet = path.join(dir, '.fleet');
  await mkdir(fleet, { recursive: true });
  await writeFile(path.join(fleet, 'config.sh'), `CHROOT_DIR=${dir}\nREMOTE_IP=192.0.2.1\n`);
  process.stdout.write(`fleet: ${SYSTEMS} systems × ${LOGS} logs in ${dir} (${process.env.REUSE ? 'reused' : `built in ${((performance.now() - started) / 1000).toFixed(1)} s`})\n`);

  const run = (label, extra) => {
    const start = performance.now();
    const result = spawnSync(process.execPath, [cli, '--dir', fleet, 'status', '--once', ...extra], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, XDG_CACHE_HOME: cacheHome },
    });
    const seconds = (performance.now() - start) / 1000;
    const rows = result.stdout.split('\n').filter((line) => line.startsWith('host-')).length;
    if (result.error || result.status === 1 || rows !== SYSTEMS) {
      process.stderr.write(`${label} failed (exit ${result.status}, ${rows} rows): ${result.error ?? result.stderr}\n`);
      process.exit(1);
    }
    process.stdout.write(`${label}: ${seconds.toFixed(3)} s (exit ${result.status}, ${rows} rows)\n`);
    return { seconds };
  };

  const cold = [];
  for (let i = 1; i <= RUNS; i++) cold.push(run(`every log read (--no-cache), run ${i}`, ['--no-cache']));
  const filling = run('first run with the cache (reads every log, remembers)', []);
  const warm = [];
  for (let i = 1; i <= RUNS; i++) warm.push(run(`with the cache, run ${i}`, []));
  // The same answer, cached or not (JSON: the table's elapsed times move with the clock).
  const json = (extra) => spawnSync(process.execPath, [cli, '--dir', fleet, 'status', '--json', ...extra], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: { ...process.env, XDG_CACHE_HOME: cacheHome } }).stdout;
  if (json(['--no-cache']) !== json([])) {
    process.stderr.write('with the cache, status --json printed something else than without it\n');
    process.exit(1);
  }
  await pollAll(dir);
  // Past RACY_MS, as a status timer finds them: the directories changed 2 s ago at least.
  await sleep(2100);
  const afterPolls = run('with the cache, after every machine polled (each logs/ changed by its heartbeat)', []);
  const settled = [];
  for (let i = 1; i <= RUNS; i++) settled.push(run(`with the cache, after those polls, run ${i}`, []));
  process.stdout.write(`median, every log read: ${median(cold.map((r) => r.seconds)).toFixed(3)} s over ${RUNS} runs\n`);
  process.stdout.write(`first run with the cache: ${filling.seconds.toFixed(3)} s\n`);
  process.stdout.write(`median, with the cache: ${median(warm.map((r) => r.seconds)).toFixed(3)} s over ${RUNS} runs (target < 1 s at 10,000 × 100)\n`);
  process.stdout.write(`with the cache, after every machine polled: ${afterPolls.seconds.toFixed(3)} s; then median ${median(settled.map((r) => r.seconds)).toFixed(3)} s over ${RUNS} runs\n`);

  // For scale: what starting node alone costs on this machine.
  const bare = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    spawnSync(process.execPath, ['-e', '']);
    bare.push((performance.now() - start) / 1000);
  }
  process.stdout.write(`node start-up alone: median ${median(bare).toFixed(3)} s\n`);
} finally {
  await rm(cacheHome, { recursive: true, force: true });
  if (!process.env.KEEP && !process.env.REUSE) await rm(dir, { recursive: true, force: true });
}
