// The benchmark's table and its regression check. A figure is compared with
// the baseline as its ratio to its floor measured in the same run (raw Nix,
// or node's start-up), never as an absolute time: the ratio holds from one
// machine, and one load, to the next far better than seconds do.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** A move beyond this factor, either way, is reported. */
export const TOLERANCE = 1.25;

const s = (seconds) => (seconds === undefined ? '' : `${seconds.toFixed(3)} s`);
const x = (ratio) => (ratio === undefined ? '' : `${ratio.toFixed(2)}×`);

export function goalText(goal) {
  if (!goal) return '';
  const parts = [];
  if (goal.seconds !== undefined) parts.push(`≤ ${goal.seconds} s`);
  if (goal.ratio !== undefined) parts.push(`≤ ${goal.ratio}× the floor`);
  if (goal.writes !== undefined) parts.push(`${goal.writes} writes`);
  return parts.join(', ');
}

/** 'yes', 'no', or 'no: below the floor' when no command could meet it here. */
export function goalMet(goal, result) {
  if (!goal) return '';
  const misses = [];
  // The goal is below a floor when the floor alone takes longer: raw Nix, or the second floor (the disk's, the calls').
  const belowFloor = (result.floorKind === 'nix' && result.floor > goal.seconds) || (result.secondFloor !== undefined && result.secondFloor > goal.seconds);
  if (goal.seconds !== undefined && result.seconds > goal.seconds) misses.push(belowFloor ? 'no (goal below the floor)' : 'no');
  if (goal.ratio !== undefined && result.ratio > goal.ratio) misses.push('no');
  if (goal.writes !== undefined && result.writes !== undefined && result.writes > goal.writes) misses.push('no (writes)');
  return misses.length === 0 ? 'yes' : misses[0];
}

/** How the figure's ratio to its floor moved since the baseline: '' within TOLERANCE. */
export function movement(result, base) {
  if (!base || result.ratio === undefined || base.ratio === undefined) return undefined;
  const factor = result.ratio / base.ratio;
  if (factor > TOLERANCE) return { slower: true, text: `${x(base.ratio)} → ${x(result.ratio)} (+${Math.round((factor - 1) * 100)}%)` };
  if (factor < 1 / TOLERANCE) return { slower: false, text: `${x(base.ratio)} → ${x(result.ratio)} (−${Math.round((1 - factor) * 100)}%)` };
  return undefined;
}

/** What each second floor is (bench.mjs, againstNode). */
const SECOND_FLOORS = {
  write: { floor: 'node writing the same tree', note: 'the write floor' },
  calls: { floor: "node making only status's file system calls", note: 'the calls floor' },
};

/** The floor, and the second floor beside it when there is one (generate into an empty generated/: the disk's; status: its calls'). */
function floorText(result) {
  if (result.floor === undefined) return '';
  const floor = `${s(result.floor)} (${result.floorKind === 'nix' ? 'raw nix build' : 'node'})`;
  return result.secondFloor === undefined ? floor : `${floor}; ${s(result.secondFloor)} (${SECOND_FLOORS[result.secondFloorKind].floor})`;
}

/** A Markdown table (the README's figures are pasted from it). */
export function formatTable(figures, results, baseline) {
  const header = ['figure', 'median', 'runs', 'goal', 'floor', 'ratio to floor', 'goal met', 'baseline ratio', 'notes'];
  const rows = [];
  for (const figure of figures) {
    const result = results[figure.id];
    if (!result) continue;
    const base = baseline?.figures?.[figure.id];
    rows.push([
      figure.label,
      s(result.seconds),
      String(result.runs),
      goalText(figure.goal),
      floorText(result),
      x(result.ratio),
      goalMet(figure.goal, result),
      base?.ratio === undefined ? '' : x(base.ratio),
      [result.note, result.secondFloor === undefined ? undefined : `ratio to ${SECOND_FLOORS[result.secondFloorKind].note}; ${x(result.seconds / result.floor)} node's start-up`].filter(Boolean).join('; '),
    ]);
  }
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function readBaseline(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

/** Writes the ratios of this run into `file`, keeping the figures this run did not measure (BENCH_LARGE's). */
export function saveBaseline(file, results, about) {
  const previous = readBaseline(file)?.figures ?? {};
  const figures = { ...previous };
  for (const [id, result] of Object.entries(results)) {
    figures[id] = {
      ratio: round(result.ratio),
      seconds: round(result.seconds),
      floor: round(result.floor),
      runs: result.runs,
      ...(result.writes === undefined ? {} : { writes: result.writes }),
      ...(result.secondFloor === undefined ? {} : { secondFloor: round(result.secondFloor), secondFloorKind: result.secondFloorKind }),
      measured: about.measured,
      commit: about.commit,
    };
  }
  writeFileSync(file, `${JSON.stringify({ ...about, figures: Object.fromEntries(Object.entries(figures).sort()) }, null, 2)}\n`);
}

function round(value) {
  return value === undefined ? undefined : Math.round(value * 1000) / 1000;
}
