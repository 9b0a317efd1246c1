// Running whole processes and timing them: every figure of the benchmark is
// the wall-clock time of a whole process (node start-up included), as a
// person or a timer runs it, and a figure is the median of several runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cli = path.join(repoRoot, 'dist', 'main.js');

/**
 * No substituter (the synthetic derivations exist nowhere) and no sandbox
 * (their builder is the host's /bin/sh): for bento and for raw Nix alike.
 */
export const benchEnv = { ...process.env, NIX_CONFIG: 'substituters =\nsandbox = false\n' };

export function requireBuild() {
  if (!existsSync(cli)) {
    process.stderr.write('dist/main.js is missing: run `npm run build` first (npm run bench does)\n');
    process.exit(1);
  }
}

export function requireRoot(why) {
  if (process.getuid() !== 0) {
    process.stderr.write(`run me as root: ${why}\n`);
    process.exit(1);
  }
}

/** The process running now, stopped by `interrupt`. */
let running;
let interrupted;

/**
 * Stops the process running now with `signal` and makes every later
 * `timed` throw: the benchmark then unwinds through its cleanup.
 */
export function interrupt(signal) {
  interrupted = signal;
  running?.kill(signal);
}

/** Runs `file args` to its end and times it; throws when it fails (unless `allowStatus` lists its exit status). */
export async function timed(file, args, options = {}) {
  const { allowStatus = [0], ...spawnOptions } = options;
  if (interrupted) throw new Error(`interrupted (${interrupted})`);
  const start = process.hrtime.bigint();
  const child = spawn(file, args, { env: benchEnv, stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  running = child;
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const status = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? signal));
  }).finally(() => (running = undefined));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (interrupted) throw new Error(`interrupted (${interrupted})`);
  if (!allowStatus.includes(status)) {
    process.stderr.write(`${stdout}${stderr}`);
    throw new Error(`${file} ${args.join(' ')} failed (exit status ${status})`);
  }
  return { seconds, stdout, stderr, status };
}

/**
 * timed, and the CPU time the process and its children took, user and
 * system, in seconds (GNU time writes them into a file of its own: the
 * command's output is left as it is).
 */
export async function cpuTimed(file, args, options = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-time-'));
  try {
    const times = path.join(dir, 'times');
    const run = await timed('/usr/bin/time', ['-f', '%U %S', '-o', times, file, ...args], options);
    const [user, system] = readFileSync(times, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    if (!Number.isFinite(user) || !Number.isFinite(system)) throw new Error(`/usr/bin/time wrote no times for ${file}`);
    return { ...run, user, system };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `bento ARGS` in the fleet `fleetDir`, as a whole process. */
export function bento(fleetDir, args, options = {}) {
  return timed(process.execPath, [cli, '--dir', fleetDir, ...args], options);
}

/** Starting node and nothing else: the floor of a command that runs no other process. */
export async function nodeStartup() {
  return (await timed(process.execPath, ['-e', ''])).seconds;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Runs `measure` and `floor` alternately, `runs` times (`floorsPerRun`
 * floors after each measure), and returns both medians: on a machine whose
 * load moves, a figure and its floor then see the same moments, and their
 * ratio moves less than either. `before` prepares each run of `measure`
 * (untimed). `secondFloor`, when given, runs once after each run's floors,
 * with its own median.
 */
export async function paired(runs, { measure, floor, before, floorsPerRun = 1, secondFloor }) {
  const figures = [];
  const floors = [];
  const seconds = [];
  for (let i = 0; i < runs; i++) {
    await before?.(i);
    figures.push(await measure(i));
    if (floor) for (let j = 0; j < floorsPerRun; j++) floors.push(await floor(i));
    if (secondFloor) seconds.push(await secondFloor(i));
  }
  return {
    seconds: median(figures),
    samples: figures,
    floor: floor ? median(floors) : undefined,
    floorSamples: floors,
    secondFloor: secondFloor ? median(seconds) : undefined,
    secondFloorSamples: seconds,
  };
}

/** `label … ` on stderr, so that a long run says where it is; the table goes to stdout. */
export function progress(text) {
  process.stderr.write(`bench: ${text}\n`);
}
