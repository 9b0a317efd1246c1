// The floors of `bento status --once` (issue 23): whole node processes that
// make only the file system calls status cannot do without, on a synthetic
// chroot of bench/lib/status-fleet.mjs. bench.mjs runs them alternately
// with status (its "calls floor"); bench/status-floor.mjs alone, in detail.
//
// - cold: what a first run (or --no-cache) cannot do without, nothing
//   else: per system the removed marker's and last_change_date's look, a
//   `readdir` of its logs/ and an `lstat` of every entry, then the reads
//   docs/protocol.md §7 rests on — the ends of every log newer than
//   last_change_date and of the latest (a log counts only as a whole gzip
//   file: 10 bytes at its head, 4 at its tail) and the heartbeat's text
//   (src/status/read-logs.ts). From PARALLEL_FROM systems on, a worker
//   thread takes half the systems, as status does
//   (src/status/read-chroot.ts): a floor on one thread would be no floor
//   for a command on two.
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
const read = (systems) => {
  const head = Buffer.alloc(10), tail = Buffer.alloc(4), text = Buffer.alloc(4096);
  const ends = (file, size) => {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    let n = fs.readSync(fd, head, 0, 10, 0);
    if (size >= 4) n += fs.readSync(fd, tail, 0, 4, size - 4);
    fs.closeSync(fd);
    return n;
  };
  let n = 0;
  for (const base of systems) {
    fs.existsSync(base + 'removed');
    const lastChangeMs = fs.lstatSync(base + 'last_change_date', { throwIfNoEntry: false })?.mtimeMs ?? null;
    const dir = base + 'logs/';
    let latest, heartbeat;
    const newer = [];
    for (const entry of fs.readdirSync(dir)) {
      const stats = fs.lstatSync(dir + entry, { throwIfNoEntry: false });
      if (!stats) continue;
      if (entry === 'heartbeat') heartbeat = stats;
      else if (entry.endsWith('.log.gz')) {
        const log = { file: dir + entry, size: stats.size, received: Math.min(stats.mtimeMs, stats.ctimeMs) };
        if (lastChangeMs !== null && log.received > lastChangeMs) newer.push(log);
        if (!latest || log.received > latest.received) latest = log;
      }
    }
    for (const log of newer) n += ends(log.file, log.size);
    if (latest && !newer.includes(latest)) n += ends(latest.file, latest.size);
    if (heartbeat) {
      const fd = fs.openSync(dir + 'heartbeat', fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      n += fs.readSync(fd, text, 0, 4096, 0);
      fs.closeSync(fd);
    }
  }
  return n;
};
const systems = fs.readdirSync(root).filter((name) => name.startsWith('host-')).map((name) => root + '/' + name + '/');
if (threads === '2') {
  const half = Math.ceil(systems.length / 2);
  const worker = new Worker('const { parentPort, workerData } = require("node:worker_threads"); const fs = require("node:fs"); parentPort.postMessage((' + read.toString() + ')(workerData));', { eval: true, workerData: systems.slice(half) });
  const mine = read(systems.slice(0, half));
  worker.once('message', (theirs) => { if (mine + theirs === 0) process.exitCode = 1; worker.terminate(); });
} else if (read(systems) === 0) process.exit(1);
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
