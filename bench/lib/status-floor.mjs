// The floors of `bento status --once` (issue 23): whole node processes that
// make only the file system calls status cannot do without, on a synthetic
// chroot of bench/lib/status-fleet.mjs. bench.mjs runs them alternately
// with status (its "calls floor"); bench/status-floor.mjs alone, in detail.
//
// - cold: a `readdir` of every logs/ and an `lstat` of every entry: what a
//   first run (or --no-cache) reads, nothing else. From PARALLEL_FROM
//   systems on, a worker thread takes half the directories, as status does
//   (src/status/read-chroot.ts): a floor on one thread would be no floor for
//   a command on two.
// - cached: the five calls a cached run makes per system (the removed
//   marker, last_change_date, logs/, the latest log, the heartbeat), after
//   parsing a JSON list of each system's latest log name (the least a cache
//   can be: the names have to come from somewhere).
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** From how many systems status shares the cold reads with a worker thread (src/status/read-chroot.ts, PARALLEL_FROM). */
const PARALLEL_FROM = 2000;

const COLD = `
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const [root, threads] = process.argv.slice(1);
const read = (dirs) => {
  let n = 0;
  for (const dir of dirs) for (const entry of fs.readdirSync(dir)) if (fs.lstatSync(dir + '/' + entry, { throwIfNoEntry: false })) n++;
  return n;
};
const dirs = fs.readdirSync(root).filter((name) => name.startsWith('host-')).map((name) => root + '/' + name + '/logs');
if (threads === '2') {
  const half = Math.ceil(dirs.length / 2);
  const worker = new Worker('const { parentPort, workerData } = require("node:worker_threads"); const fs = require("node:fs"); let n = 0; for (const dir of workerData) for (const entry of fs.readdirSync(dir)) if (fs.lstatSync(dir + "/" + entry, { throwIfNoEntry: false })) n++; parentPort.postMessage(n);', { eval: true, workerData: dirs.slice(half) });
  const mine = read(dirs.slice(0, half));
  worker.once('message', (theirs) => { if (mine + theirs === 0) process.exitCode = 1; worker.terminate(); });
} else if (read(dirs) === 0) process.exit(1);
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

/** node's arguments for the cold floor over the chroot `dir`, and how many threads it reads with. */
export function coldFloor(dir) {
  const threads = systemsOf(dir).length >= PARALLEL_FROM ? 2 : 1;
  return { args: ['-e', COLD, dir, String(threads)], threads };
}

function systemsOf(dir) {
  return readdirSync(dir).filter((entry) => entry.startsWith('host-'));
}

/**
 * node's arguments for the cached floor over the chroot `dir`; writes its
 * list of each system's latest log (by mtime) into `listFile` first.
 */
export function cachedFloorArgs(dir, listFile) {
  const latest = {};
  for (const name of systemsOf(dir)) {
    let best;
    for (const entry of readdirSync(path.join(dir, name, 'logs'))) {
      if (!entry.endsWith('.log.gz')) continue;
      const mtimeMs = lstatSync(path.join(dir, name, 'logs', entry)).mtimeMs;
      if (!best || mtimeMs > best.mtimeMs) best = { entry, mtimeMs };
    }
    latest[name] = best?.entry ?? 'none';
  }
  writeFileSync(listFile, JSON.stringify(latest));
  return ['-e', CACHED, dir, listFile];
}
