// `npm run bench`: every figure of the speed goals (issue 23) in one table,
// each beside its goal and its floor measured in the same run — one raw
// batched `nix build` of the same toplevels for the commands that build,
// node's start-up for the commands that run no other process — then a
// comparison of each figure's ratio to its floor with bench/baseline.json.
//
//   npm run bench                      the table and the regression check
//   npm run bench -- --save-baseline   … and the ratios as the new baseline
//   npm run bench -- --scaling         generate, no-op deploy and status at 100–800 systems
//   npm run bench -- --only generate,status   some figures (generate, status, deploy, build, large)
//   --runs N (cheap figures, 5), --heavy-runs N (first deploys and builds, 3), --strict (exit 3 on a slide)
//   BENCH_LARGE=1                      also status at 10,000 systems × 100 logs (minutes to build)
//   BENCH_SHOW_WRITES=1                list what the no-op deploy wrote (stderr)
//
// Deploy and build need root (the accounts of sftp_users, bento's own Nix
// daemon); without it those figures are left out. Every run is a whole
// process; timings assert nothing (see bench/README.md).
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Accounts } from './lib/accounts.mjs';
import { flakesOf, GENERATE_FLEET_CHROOT, makeFleetDir, remove, removeChroot, removeGenerateRecord, renewNonce, systemNames, writeFlakeFleet, writeGenerateFleet } from './lib/fleet.mjs';
import { rawBatchedBuild } from './lib/nix.mjs';
import { bento, cli, interrupt, median, nodeStartup, paired, progress, repoRoot, requireBuild, timed } from './lib/process.mjs';
import { formatTable, movement, readBaseline, saveBaseline, TOLERANCE } from './lib/report.mjs';
import { buildStatusChroot, statusRows } from './lib/status-fleet.mjs';
import { countWrites, describeWrites } from './lib/writes.mjs';
import { writeFloorOf } from './lib/tree-floor.mjs';
import { cachedFloorArgs, coldFloor } from './lib/status-floor.mjs';
import { runScaling } from './lib/scaling.mjs';

const { values: flags } = parseArgs({
  options: {
    'save-baseline': { type: 'boolean', default: false },
    scaling: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string', default: '5' },
    'heavy-runs': { type: 'string', default: '3' },
    baseline: { type: 'string', default: path.join(repoRoot, 'bench', 'baseline.json') },
    strict: { type: 'boolean', default: false },
  },
});
const RUNS = Number(flags.runs);
const HEAVY_RUNS = Number(flags['heavy-runs']);
const LARGE = process.env.BENCH_LARGE === '1';
const GROUPS = ['generate', 'status', 'deploy', 'build', 'large'];
const only = new Set(flags.only ? flags.only.split(',') : GROUPS.filter((group) => group !== 'large' || LARGE));
for (const group of only) if (!GROUPS.includes(group)) throw new Error(`--only: unknown ${group} (${GROUPS.join(', ')})`);
const isRoot = process.getuid() === 0;
requireBuild();

/** The goals of issue 23, in its order. */
const FIGURES = [
  { id: 'deploy-first-one-flake', group: 'deploy', label: 'first `bento deploy`, 200 systems in one flake', goal: { seconds: 3 } },
  { id: 'deploy-first-200-flakes', group: 'deploy', label: 'first `bento deploy`, 200 one-system flakes', goal: { seconds: 3 } },
  { id: 'deploy-noop', group: 'deploy', label: '`bento deploy`, nothing changed, 200 systems (20 flakes × 10)', goal: { seconds: 0.3, writes: 0 } },
  { id: 'generate', group: 'generate', label: '`bento generate`, 1,000 systems, empty generated/', goal: { seconds: 0.5 } },
  { id: 'generate-noop', group: 'generate', label: '`bento generate`, 1,000 systems, nothing changed' },
  { id: 'build', group: 'build', label: '`bento build`, 120 flake systems (one flake)', goal: { ratio: 1.2 } },
  { id: 'status-first', group: 'status', label: '`bento status --once`, 1,000 × 20 logs, first run (no cache)', goal: { seconds: 0.2 } },
  { id: 'status-cached', group: 'status', label: '`bento status --once`, 1,000 × 20 logs, cached', goal: { seconds: 0.2 } },
  { id: 'status-large-first', group: 'large', label: '`bento status --once`, 10,000 × 100 logs, first run', goal: { seconds: 2.5 } },
  { id: 'status-large-cached', group: 'large', label: '`bento status --once`, 10,000 × 100 logs, cached', goal: { seconds: 0.3 } },
  { id: 'node', group: '', label: 'node start-up alone (floor of the pure-node commands)' },
];

const results = {};
const nodeSamples = [];
/**
 * A figure whose floor is node's start-up, the two measured alternately;
 * `second`, when given, is a second floor measured in the same runs: the
 * disk's for generate ({ kind: 'write' }: see benchGenerate), the file
 * system calls' for status ({ kind: 'calls' }: see benchStatus).
 */
async function againstNode(id, runs, measure, before, second) {
  // Node's start-up is short and jitters under load: three samples a run.
  const pair = await paired(runs, { measure, floor: nodeStartup, before, floorsPerRun: 3, secondFloor: second?.measure });
  nodeSamples.push(...pair.floorSamples);
  // The ratio (what the regression check compares) is to the second floor when there is one: it holds what node's start-up does not, the disk's moods (generate), the kernel's calls (status).
  const ratio = pair.seconds / (second ? pair.secondFloor : pair.floor);
  results[id] = { seconds: pair.seconds, runs, floor: pair.floor, floorKind: 'node', ratio, ...(second ? { secondFloor: pair.secondFloor, secondFloorKind: second.kind } : {}) };
  showSamples(id, pair, second?.kind);
  return results[id];
}

function showSamples(id, pair, secondKind) {
  const list = (values) => values.map((v) => v.toFixed(3)).join(' ');
  const second = pair.secondFloorSamples?.length > 0 ? `; ${secondKind} floor ${list(pair.secondFloorSamples)} s` : '';
  progress(`${id}: ${list(pair.samples)} s; floor ${list(pair.floorSamples)} s${second}`);
}

/** A figure whose floor is one raw batched `nix build` of the same toplevels, each on fresh derivations. */
async function againstNix(id, runs, measure, floor, before) {
  const pair = await paired(runs, { measure, floor, before });
  results[id] = { seconds: pair.seconds, runs, floor: pair.floor, floorKind: 'nix', ratio: pair.seconds / pair.floor };
  showSamples(id, pair);
  return results[id];
}

const cleanups = [];
function cleanUp() {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      cleanup();
    } catch (error) {
      process.stderr.write(`bench: cleaning up: ${error.message}\n`);
    }
  }
}
// A signal stops the process running now; the run then unwinds through its cleanup.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    process.exitCode = 130;
    interrupt(signal);
  });
}

async function benchGenerate() {
  const fleet = makeFleetDir('generate');
  const floorRoot = makeFleetDir('generate-floor');
  cleanups.push(() => remove(fleet), () => remove(floorRoot), () => removeGenerateRecord(GENERATE_FLEET_CHROOT));
  const names = writeGenerateFleet(fleet, 1000);
  const generated = path.join(fleet, 'generated');
  // The disk's floor: a plain node process writing the tree bento writes (the
  // same files, bytes and modes) into an empty directory on the same file
  // system, alternately with bento (bench/lib/write-tree.mjs). Checked once.
  await bento(fleet, ['generate']);
  const writeFloor = await writeFloorOf(generated, floorRoot);
  progress(`generate: ${names.length} systems, ${RUNS} runs`);
  await againstNode(
    'generate',
    RUNS,
    async () => (await bento(fleet, ['generate'])).seconds,
    () => remove(generated),
    { kind: 'write', measure: writeFloor },
  );
  // Not a goal of its own: what a deploy's generate costs when nothing changed.
  // Two runs first: the one after a run that wrote renders and records what it
  // found (src/render/generate-record.ts); from then on, nothing is rendered.
  await bento(fleet, ['generate']);
  await bento(fleet, ['generate']);
  await againstNode('generate-noop', RUNS, async () => (await bento(fleet, ['generate'])).seconds);
  remove(fleet);
  remove(floorRoot);
}

async function benchStatus(systems, logs, ids, runs) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-status-'));
  const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-status-cache-'));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-status-floor-'));
  cleanups.push(() => remove(dir), () => remove(cacheHome), () => remove(scratch));
  progress(`status: building a chroot of ${systems} systems × ${logs} logs`);
  const fleet = await buildStatusChroot(dir, systems, logs);
  const status = async () => {
    // Exit status 2: a machine needs attention (the synthetic fleet has failures).
    const run = await bento(fleet, ['status', '--once'], { allowStatus: [0, 2], env: { ...process.env, XDG_CACHE_HOME: cacheHome } });
    if (statusRows(run.stdout) !== systems) throw new Error(`status printed ${statusRows(run.stdout)} rows, not ${systems}`);
    return run.seconds;
  };
  // The calls floors: node processes making only the file system calls a
  // first run, and a cached one, cannot do without (bench/lib/status-floor.mjs).
  const calls = (args) => ({ kind: 'calls', measure: async () => (await timed(process.execPath, args)).seconds });
  progress(`status: ${runs} runs without a cache, then ${runs} with it`);
  await againstNode(
    ids.first,
    runs,
    status,
    () => {
      remove(cacheHome);
      mkdirSync(cacheHome);
    },
    calls(coldFloor(dir).args),
  );
  await status(); // fills the cache
  await againstNode(ids.cached, runs, status, undefined, calls(cachedFloorArgs(dir, path.join(scratch, 'latest.json'))));
  remove(dir);
  remove(scratch);
}

async function benchDeployAndBuild() {
  const prefix = `bb${randomBytes(2).toString('hex')}`;
  const chrootDir = `/srv/bento-bench-${prefix}`;
  const names = systemNames(prefix, 200);
  const accounts = new Accounts(chrootDir);
  cleanups.push(() => removeChroot(chrootDir), () => accounts.removeAll());
  if (only.has('deploy')) {
    progress(`deploy: ${names.length} accounts`);
    accounts.add(names);
    const first = async (id, flakes) => {
      const fleet = makeFleetDir(id);
      cleanups.push(() => remove(fleet));
      writeFlakeFleet(fleet, chrootDir, flakes);
      progress(`${id}: ${HEAVY_RUNS} first deploys, each against a raw nix build`);
      await againstNix(
        id,
        HEAVY_RUNS,
        async () => {
          const run = await bento(fleet, ['deploy']);
          if (!run.stderr.includes(`${names.length} published`)) throw new Error(`deploy did not publish every system: ${run.stderr.slice(-500)}`);
          return run.seconds;
        },
        () => {
          renewNonce(fleet, flakes);
          return rawBatchedBuild(fleet, flakes);
        },
        () => {
          // A first deploy: no chroots, no generated/, derivations never built.
          remove(chrootDir);
          remove(path.join(fleet, 'generated'));
          renewNonce(fleet, flakes);
        },
      );
      remove(fleet);
    };
    await first('deploy-first-one-flake', { fleet200: names });
    await first('deploy-first-200-flakes', Object.fromEntries(names.map((name) => [name, [name]])));

    const fleet = makeFleetDir('deploy-noop');
    cleanups.push(() => remove(fleet));
    const flakes = flakesOf(names, 10);
    writeFlakeFleet(fleet, chrootDir, flakes);
    remove(chrootDir);
    progress(`deploy-noop: a first deploy, then ${RUNS} with nothing changed`);
    await bento(fleet, ['deploy']);
    await againstNode('deploy-noop', RUNS, async () => {
      const run = await bento(fleet, ['deploy']);
      if (!run.stderr.includes(`0 published, ${names.length} unchanged`) || /building/.test(run.stdout)) throw new Error(`a deploy with nothing changed did something: ${run.stderr.slice(-500)}`);
      return run.seconds;
    });
    const writes = countWrites(process.execPath, [cli, '--dir', fleet, 'deploy'], { fleet, chroot: chrootDir, tmp: os.tmpdir(), nix: '/nix' });
    results['deploy-noop'].writes = writes.total;
    results['deploy-noop'].note = describeWrites(writes);
    if (process.env.BENCH_SHOW_WRITES === '1') process.stderr.write(`${writes.calls.join('\n')}\n`);
    remove(fleet);
    remove(chrootDir);
  }
  if (only.has('build')) {
    const fleet = makeFleetDir('build');
    cleanups.push(() => remove(fleet), () => removeGenerateRecord('/srv/bento-bench-unused'));
    const flakes = { fleet120: names.slice(0, 120) };
    writeFlakeFleet(fleet, '/srv/bento-bench-unused', flakes);
    await bento(fleet, ['generate']);
    progress(`build: ${HEAVY_RUNS} runs of bento build, each against a raw nix build`);
    await againstNix(
      'build',
      HEAVY_RUNS,
      async () => (await bento(fleet, ['build'])).seconds,
      () => {
        renewNonce(fleet, flakes);
        return rawBatchedBuild(fleet, flakes);
      },
      () => renewNonce(fleet, flakes),
    );
    remove(fleet);
  }
}

function gitDescription() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'templates'], { cwd: repoRoot, encoding: 'utf8' }).trim() ? ' (src changed)' : '';
    return `${commit}${dirty}`;
  } catch {
    return 'unknown';
  }
}

const started = process.hrtime.bigint();
try {
  if (flags.scaling) {
    const faster = await runScaling({ cleanups, runs: RUNS, isRoot });
    if (flags.strict && faster) process.exitCode = 3;
  } else {
    if (only.has('generate')) await benchGenerate();
    if (only.has('status')) await benchStatus(1000, 20, { first: 'status-first', cached: 'status-cached' }, RUNS);
    if (only.has('deploy') || only.has('build')) {
      if (isRoot) await benchDeployAndBuild();
      else progress('deploy and build left out: they need root');
    }
    if (only.has('large')) await benchStatus(10000, 100, { first: 'status-large-first', cached: 'status-large-cached' }, 3);
    if (nodeSamples.length > 0) results.node = { seconds: median(nodeSamples), runs: nodeSamples.length };

    const baseline = readBaseline(flags.baseline);
    const shown = FIGURES.filter((figure) => results[figure.id]);
    process.stdout.write(`\n${formatTable(shown, results, baseline)}\n\n`);
    process.stdout.write(`${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}, commit ${gitDescription()}; medians of ${RUNS} runs (first deploys and builds: ${HEAVY_RUNS}), each a whole process.\n`);

    if (baseline) {
      const moved = shown.map((figure) => [figure, movement(results[figure.id], baseline.figures?.[figure.id])]).filter(([, move]) => move);
      const writesMoved = results['deploy-noop'] && baseline.figures?.['deploy-noop']?.writes !== undefined && results['deploy-noop'].writes > baseline.figures['deploy-noop'].writes;
      const shownPath = path.relative(process.cwd(), flags.baseline).startsWith('..') ? flags.baseline : path.relative(process.cwd(), flags.baseline);
      process.stdout.write(`Against the baseline (${shownPath}, ${baseline.measured} at ${baseline.commit}), ratios to the floor moved by more than ${Math.round((TOLERANCE - 1) * 100)}%:\n`);
      if (moved.length === 0 && !writesMoved) process.stdout.write('  none\n');
      for (const [figure, move] of moved) process.stdout.write(`  ${move.slower ? 'SLOWER' : 'faster'}  ${figure.label}: ${move.text}\n`);
      if (writesMoved) process.stdout.write(`  MORE WRITES  deploy, nothing changed: ${baseline.figures['deploy-noop'].writes} → ${results['deploy-noop'].writes}\n`);
      if (flags.strict && (moved.some(([, move]) => move.slower) || writesMoved)) process.exitCode = 3;
    } else {
      process.stdout.write(`No baseline at ${flags.baseline}: save one with npm run bench -- --save-baseline\n`);
    }
    if (flags['save-baseline']) {
      saveBaseline(flags.baseline, results, { measured: new Date().toISOString().slice(0, 10), commit: gitDescription(), cores: os.cpus().length, runs: RUNS, heavyRuns: HEAVY_RUNS });
      process.stdout.write(`Baseline saved: ${flags.baseline}\n`);
    }
  }
} catch (error) {
  if (process.exitCode !== 130) throw error;
  progress('interrupted: cleaning up');
} finally {
  cleanUp();
  process.stderr.write(`bench: done in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s\n`);
}
