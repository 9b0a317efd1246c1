// `npm run bench -- --scaling`: generate, deploy with nothing changed, and
// status at 100, 200, 400 and 800 systems; per system cost, and whether
// anything grows faster than linearly. Node's start-up (measured alongside)
// is subtracted first: it is paid once whatever the fleet. Generate is
// judged by its own work, the user CPU time of its process (node's
// start-up's subtracted): on this machine the kernel's time to create a
// tree grows faster than the tree (a `cp -r` of generated/ took 76× as long
// at 800 systems as at 100; generate's system time 10–15×, its user time
// 3.5×), which is not bento's, and varies too much from one process to the
// next to be subtracted (its system time beyond its write floor's, tried,
// moved 0.2–0.9 s at 400 systems). A system call costs node user time too
// (its arguments, its result's objects), so calls that grew with the square
// of the fleet would still show. Its wall time and its write floor (a plain
// node process writing the same tree, as bench.mjs's generate figure) get
// rows of their own, shown, not judged.
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { randomBytes } from 'node:crypto';
import { Accounts } from './accounts.mjs';
import { flakesOf, GENERATE_FLEET_CHROOT, makeFleetDir, remove, removeChroot, removeGenerateRecord, systemNames, writeFlakeFleet, writeGenerateFleet } from './fleet.mjs';
import { bento, cli, cpuTimed, median, nodeStartup, paired, progress, timed } from './process.mjs';
import { buildStatusChroot, statusRows } from './status-fleet.mjs';
import { writeFloorOf } from './tree-floor.mjs';

export const SIZES = [100, 200, 400, 800];
/** t(800)/t(100) may exceed 8× by this much (noise) before it is called faster than linear. */
const GROWTH_TOLERANCE = 1.25;
/** Nor may the cost of a system added from 400 to 800 exceed that of one added from 100 to 400 by more than this… */
const MARGINAL_TOLERANCE = 1.5;
/**
 * …by more seconds in all than this: a command whose systems cost tenths of
 * a millisecond each (a deploy with nothing changed) adds 0.1–0.2 s from 400
 * to 800 systems, and its runs' jitter alone moves that by a few hundredths.
 */
const MARGINAL_NOISE_SECONDS = 0.05;

/**
 * { seconds, floor } at each size: `prepare(size)` makes the fleet, its
 * `measure` is paired with node's start-up; with a `secondFloor` (measured
 * alternately too), its median is the point's `secondFloor`; with `cpu`,
 * what it returns after the runs is the point's `cpu`.
 */
async function series(sizes, runs, prepare) {
  const points = [];
  for (const size of sizes) {
    const { measure, before, secondFloor, cpu, done } = await prepare(size);
    const pair = await paired(runs, { measure, floor: nodeStartup, before, floorsPerRun: 3, secondFloor });
    points.push({ size, seconds: pair.seconds, floor: pair.floor, ...(secondFloor ? { secondFloor: pair.secondFloor } : {}), ...(cpu ? { cpu: cpu() } : {}) });
    done?.();
  }
  return points;
}

function verdict(points) {
  const net = points.map((p) => Math.max(p.seconds - p.floor, 1e-6));
  const first = points[0];
  const last = points[points.length - 1];
  const growth = net[net.length - 1] / net[0];
  const linear = last.size / first.size;
  const [t100, , t400, t800] = net;
  const marginal = (t800 - t400) / 400 / ((t400 - t100) / 300);
  // What the last 400 systems cost beyond MARGINAL_TOLERANCE times the rate of those before.
  const excess = t800 - t400 - (MARGINAL_TOLERANCE * (t400 - t100) * 400) / 300;
  const faster = growth > linear * GROWTH_TOLERANCE || (marginal > MARGINAL_TOLERANCE && excess > MARGINAL_NOISE_SECONDS);
  return { net, growth, linear, marginal, faster };
}

export async function runScaling({ cleanups, runs, isRoot }) {
  const rows = [];

  progress(`scaling: generate at ${SIZES.join(', ')} systems, empty generated/, against its write floor`);
  const generatePoints = await series(SIZES, runs, async (size) => {
    const fleet = makeFleetDir('scaling-generate');
    const floorRoot = makeFleetDir('scaling-generate-floor');
    cleanups.push(() => remove(fleet), () => remove(floorRoot), () => removeGenerateRecord(GENERATE_FLEET_CHROOT));
    writeGenerateFleet(fleet, size);
    const generated = path.join(fleet, 'generated');
    await bento(fleet, ['generate']);
    const writeFloor = await writeFloorOf(generated, floorRoot);
    // By run: generate's user time, and node's start-up's.
    const users = [];
    const startUsers = [];
    return {
      measure: async () => {
        const run = await cpuTimed(process.execPath, [cli, '--dir', fleet, 'generate']);
        users.push(run.user);
        startUsers.push((await cpuTimed(process.execPath, ['-e', ''])).user);
        return run.seconds;
      },
      cpu: () => ({ own: median(users), start: median(startUsers) }),
      before: () => remove(generated),
      secondFloor: writeFloor,
      done: () => {
        remove(fleet);
        remove(floorRoot);
      },
    };
  });
  rows.push({ label: '`bento generate`, empty generated/: its user CPU time', points: generatePoints.map((p) => ({ size: p.size, seconds: p.cpu.own, floor: p.cpu.start })) });
  // The wall time and the disk's share, shown beside it.
  rows.push({ label: '… its wall time', points: generatePoints.map((p) => ({ size: p.size, seconds: p.seconds, floor: p.floor })), shownOnly: true });
  rows.push({ label: '… its write floor (a node process writing the same tree)', points: generatePoints.map((p) => ({ size: p.size, seconds: p.secondFloor, floor: p.floor })), shownOnly: true });

  if (isRoot) {
    const prefix = `bb${randomBytes(2).toString('hex')}`;
    const chrootDir = `/srv/bento-bench-${prefix}`;
    const names = systemNames(prefix, SIZES[SIZES.length - 1]);
    const accounts = new Accounts(chrootDir);
    const fleet = makeFleetDir('scaling-deploy');
    cleanups.push(() => removeChroot(chrootDir), () => accounts.removeAll(), () => remove(fleet));
    progress(`scaling: ${names.length} accounts; deploy with nothing changed at ${SIZES.join(', ')} systems (flakes of 10)`);
    accounts.add(names);
    // The fleet grows: each size adds flakes, its first deploy builds only those.
    const allFlakes = Object.entries(flakesOf(names, 10));
    rows.push({
      label: '`bento deploy`, nothing changed (flakes of 10)',
      points: await series(SIZES, runs, async (size) => {
        writeFlakeFleet(fleet, chrootDir, Object.fromEntries(allFlakes.slice(0, size / 10)));
        await bento(fleet, ['deploy']);
        // What that deploy published (hundreds of chroots, flushed) is then
        // written back by the kernel for seconds: written out first, so that
        // the runs measure a deploy with nothing to do, not the writeback
        // (at 800 systems it made them 0.5 s instead of 0.37 s).
        await timed('sync', []);
        return {
          measure: async () => {
            const run = await bento(fleet, ['deploy']);
            if (!run.stderr.includes(`0 published, ${size} unchanged`)) throw new Error(`a deploy with nothing changed did something: ${run.stderr.slice(-500)}`);
            return run.seconds;
          },
        };
      }),
    });
    remove(fleet);
    remove(chrootDir);
    accounts.removeAll();
  } else {
    progress('scaling: deploy left out (needs root)');
  }

  for (const cached of [false, true]) {
    progress(`scaling: status${cached ? ', cached' : ', first run'} at ${SIZES.join(', ')} systems × 20 logs`);
    rows.push({
      label: `\`bento status --once\`, 20 logs, ${cached ? 'cached' : 'first run'}`,
      points: await series(SIZES, runs, async (size) => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-status-'));
        const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'bento-bench-status-cache-'));
        cleanups.push(() => remove(dir), () => remove(cacheHome));
        const fleet = await buildStatusChroot(dir, size, 20);
        const status = async () => {
          const run = await bento(fleet, ['status', '--once'], { allowStatus: [0, 2], env: { ...process.env, XDG_CACHE_HOME: cacheHome } });
          if (statusRows(run.stdout) !== size) throw new Error(`status printed ${statusRows(run.stdout)} rows, not ${size}`);
          return run.seconds;
        };
        if (cached) await status();
        return {
          measure: status,
          before: cached
            ? undefined
            : () => {
                remove(cacheHome);
                mkdirSync(cacheHome);
              },
          done: () => {
            remove(dir);
            remove(cacheHome);
          },
        };
      }),
    });
  }

  const header = ['command', ...SIZES.map((size) => `t(${size})`), 'ms a system, start-up subtracted', 'ms an added system, 100→200 / 200→400 / 400→800', `t(${SIZES[SIZES.length - 1]})/t(${SIZES[0]}), the same subtracted`, 'verdict'];
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const table = [line(header), line(header.map(() => '---'))];
  let anyFaster = false;
  for (const row of rows) {
    const v = verdict(row.points);
    if (!row.shownOnly) anyFaster ||= v.faster;
    const added = row.points.slice(1).map((p, i) => (((v.net[i + 1] - v.net[i]) / (p.size - row.points[i].size)) * 1000).toFixed(2));
    table.push(
      line([
        row.label,
        ...row.points.map((p) => `${p.seconds.toFixed(3)} s`),
        row.points.map((p, i) => ((v.net[i] / p.size) * 1000).toFixed(2)).join(' / '),
        added.join(' / '),
        `${v.growth.toFixed(1)}× (linear: ${v.linear}×)`,
        (v.faster ? `FASTER THAN LINEAR (${v.growth.toFixed(1)}×; an added system 400→800 costs ${v.marginal.toFixed(1)}× one 100→400)` : 'linear') + (row.shownOnly ? ' (not judged)' : ''),
      ]),
    );
  }
  const floors = rows.flatMap((row) => row.points.map((p) => p.floor)).sort((a, b) => a - b);
  process.stdout.write(`\n${table.join('\n')}\n\n`);
  process.stdout.write(
    `${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; medians of ${runs} runs, each a whole process; node start-up ${floors[Math.floor(floors.length / 2)].toFixed(3)} s (median), subtracted at each point (from generate's user CPU time, node's start-up's).\n` +
      `Faster than linear: t(800)/t(100) beyond 8× by more than ${Math.round((GROWTH_TOLERANCE - 1) * 100)}%, or a system added from 400 to 800 costing more than ${MARGINAL_TOLERANCE}× one added from 100 to 400 (by more than ${MARGINAL_NOISE_SECONDS} s in all).\n` +
      (anyFaster ? 'Something grows faster than linearly.\n' : 'Nothing grows faster than linearly.\n'),
  );
  return anyFaster;
}
