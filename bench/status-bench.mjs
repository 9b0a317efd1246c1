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
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli, median, requireBuild } from './lib/process.mjs';
import { buildStatusChroot, pollAll, statusRows, writeStatusFleet } from './lib/status-fleet.mjs';

requireBuild();
const SYSTEMS = Number(process.argv[2] ?? 1000);
const LOGS = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 5);

const dir = process.env.REUSE ?? (await mkdtemp(path.join(os.tmpdir(), 'bento-status-bench-')));
const cacheHome = await mkdtemp(path.join(os.tmpdir(), 'bento-status-bench-cache-'));
try {
  const started = performance.now();
  // The fleet directory bento reads CHROOT_DIR from.
  const fleet = process.env.REUSE ? await writeStatusFleet(dir) : await buildStatusChroot(dir, SYSTEMS, LOGS);
  process.stdout.write(`fleet: ${SYSTEMS} systems × ${LOGS} logs in ${dir} (${process.env.REUSE ? 'reused' : `built in ${((performance.now() - started) / 1000).toFixed(1)} s`})\n`);

  const run = (label, extra) => {
    const start = performance.now();
    const result = spawnSync(process.execPath, [cli, '--dir', fleet, 'status', '--once', ...extra], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, XDG_CACHE_HOME: cacheHome },
    });
    const seconds = (performance.now() - start) / 1000;
    const rows = statusRows(result.stdout);
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
  await pollAll(dir, SYSTEMS);
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
