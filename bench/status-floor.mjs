// The floors of `bento status --once` (issue 23): whole node processes that
// make only the file system calls status cannot do without, run alternately
// with bento itself on the same synthetic fleet (bench/lib/status-fleet.mjs).
//
// The floors are bench/lib/status-floor.mjs's (cold: every logs/ listed,
// every entry lstat'ed and the files a verdict rests on read, on two
// threads from 2,000 systems as status does; cached: the five calls per
// system); and node's start-up alone.
//
// Usage: npm run build && node bench/status-floor.mjs [systems] [logs] [runs]
// (REUSE=DIR: a fleet kept by status-bench.mjs or this script; KEEP=1 keeps
// the one built). Prints figures only; it asserts nothing.
import process from 'node:process';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cli, median, requireBuild } from './lib/process.mjs';
import { buildStatusChroot, writeStatusFleet } from './lib/status-fleet.mjs';
import { cachedFloorArgs, coldFloor } from './lib/status-floor.mjs';

requireBuild();
const SYSTEMS = Number(process.argv[2] ?? 1000);
const LOGS = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 5);

const dir = process.env.REUSE ?? (await mkdtemp(path.join(os.tmpdir(), 'bento-status-floor-')));
const scratch = await mkdtemp(path.join(os.tmpdir(), 'bento-status-floor-cache-'));
try {
  const fleet = process.env.REUSE ? await writeStatusFleet(dir) : await buildStatusChroot(dir, SYSTEMS, LOGS);
  process.stdout.write(`fleet: ${dir}${process.env.REUSE ? ' (reused)' : ''}\n`);
  const cachedFloor = cachedFloorArgs(dir, path.join(scratch, 'latest.json'));
  const cold = coldFloor(dir);
  const env = { ...process.env, XDG_CACHE_HOME: scratch };
  const time = (args) => {
    const start = performance.now();
    const result = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    if (result.error || (result.status !== 0 && result.status !== 2)) throw new Error(`${args.join(' ')} failed: ${result.error ?? result.stderr}`);
    return (performance.now() - start) / 1000;
  };
  const cases = {
    'bento status --once --no-cache': [cli, '--dir', fleet, 'status', '--once', '--no-cache'],
    [`floor, cold: readdir + lstat of every entry, the logs' ends and heartbeats read, ${cold.threads === 2 ? 'two threads' : 'one thread'}`]: cold.args,
    'bento status --once, cached': [cli, '--dir', fleet, 'status', '--once'],
    'floor, cached: the 5 calls per system, after parsing the latest log names': cachedFloor,
    'node start-up alone': ['-e', ''],
  };
  // Fills the cache, and warms the kernel's caches for every case alike.
  time(cases['bento status --once, cached']);
  const seconds = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(cases)) seconds[name].push(time(args));
  for (const [name, runs] of Object.entries(seconds)) process.stdout.write(`${name}: median ${median(runs).toFixed(3)} s, best ${Math.min(...runs).toFixed(3)} s over ${RUNS} runs\n`);
} finally {
  await rm(scratch, { recursive: true, force: true });
  if (!process.env.KEEP && !process.env.REUSE) await rm(dir, { recursive: true, force: true });
}
