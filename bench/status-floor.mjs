// The floors of `bento status --once` (issue 23): whole node processes that
// make only the file system calls status cannot do without, run alternately
// with bento itself on the same synthetic fleet (bench/lib/status-fleet.mjs).
//
// - cold: a `readdir` of every logs/ and an `lstat` of every entry, on one
//   thread: what a first run (or --no-cache) reads, nothing else.
// - cached: the five calls a cached run makes per system (the removed
//   marker, last_change_date, logs/, the latest log, the heartbeat), after
//   parsing a JSON list of each system's latest log name (the least a cache
//   can be: the names have to come from somewhere).
// - node: start-up alone.
//
// Usage: npm run build && node bench/status-floor.mjs [systems] [logs] [runs]
// (REUSE=DIR: a fleet kept by status-bench.mjs or this script; KEEP=1 keeps
// the one built). Prints figures only; it asserts nothing.
import process from 'node:process';
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cli, median, requireBuild } from './lib/process.mjs';
import { buildStatusChroot, writeStatusFleet } from './lib/status-fleet.mjs';

requireBuild();
const SYSTEMS = Number(process.argv[2] ?? 1000);
const LOGS = Number(process.argv[3] ?? 20);
const RUNS = Number(process.argv[4] ?? 5);

const COLD = `
const fs = require('node:fs');
const root = process.argv[1];
let n = 0;
for (const name of fs.readdirSync(root)) {
  if (!name.startsWith('host-')) continue;
  const dir = root + '/' + name + '/logs';
  for (const entry of fs.readdirSync(dir)) if (fs.lstatSync(dir + '/' + entry, { throwIfNoEntry: false })) n++;
}
if (n === 0) process.exit(1);
`;

const CACHED = `
const fs = require('node:fs');
const [root, list] = process.argv.slice(1);
const latest = JSON.parse(fs.readFileSync(list).toString('utf8'));
let n = 0;
for (const name of fs.readdirSync(root)) {
  if (!name.startsWith('host-')) continue;
  const base = root + '/' + name + '/';
  fs.existsSync(base + 'removed');
  if (fs.lstatSync(base + 'last_change_date', { throwIfNoEntry: false })) n++;
  fs.statSync(base + 'logs');
  if (fs.lstatSync(base + 'logs/' + latest[name], { throwIfNoEntry: false })) n++;
  fs.lstatSync(base + 'logs/heartbeat', { throwIfNoEntry: false });
}
if (n === 0) process.exit(1);
`;

const dir = process.env.REUSE ?? (await mkdtemp(path.join(os.tmpdir(), 'bento-status-floor-')));
const scratch = await mkdtemp(path.join(os.tmpdir(), 'bento-status-floor-cache-'));
try {
  const fleet = process.env.REUSE ? await writeStatusFleet(dir) : await buildStatusChroot(dir, SYSTEMS, LOGS);
  process.stdout.write(`fleet: ${dir}${process.env.REUSE ? ' (reused)' : ''}\n`);
  // Each system's latest log by mtime, as the cached floor's list (not timed).
  const latest = {};
  for (const name of readdirSync(dir).filter((entry) => entry.startsWith('host-'))) {
    let best;
    for (const entry of readdirSync(path.join(dir, name, 'logs'))) {
      if (!entry.endsWith('.log.gz')) continue;
      const mtimeMs = lstatSync(path.join(dir, name, 'logs', entry)).mtimeMs;
      if (!best || mtimeMs > best.mtimeMs) best = { entry, mtimeMs };
    }
    latest[name] = best?.entry ?? 'none';
  }
  const list = path.join(scratch, 'latest.json');
  writeFileSync(list, JSON.stringify(latest));
  const env = { ...process.env, XDG_CACHE_HOME: scratch };
  const time = (args) => {
    const start = performance.now();
    const result = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    if (result.error || (result.status !== 0 && result.status !== 2)) throw new Error(`${args.join(' ')} failed: ${result.error ?? result.stderr}`);
    return (performance.now() - start) / 1000;
  };
  const cases = {
    'bento status --once --no-cache': [cli, '--dir', fleet, 'status', '--once', '--no-cache'],
    'floor, cold: readdir + lstat of every entry, one thread': ['-e', COLD, dir],
    'bento status --once, cached': [cli, '--dir', fleet, 'status', '--once'],
    'floor, cached: the 5 calls per system, after parsing the latest log names': ['-e', CACHED, dir, list],
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
