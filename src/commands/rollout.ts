/**
 * `bento rollout status|advance|resume|abort`: the staged rollout that
 * `bento deploy` started with ROLLOUT_WAVES (docs/protocol.md §10).
 *
 * - status: the waves, each system's target, whether it reported success
 *   for that exact target and since when (--json for machines);
 * - advance: when every system of the current wave succeeded, publish the
 *   next wave; when one failed or rolled back, or the wave did not report
 *   within ROLLOUT_WAIT, halt and exit 1 naming the systems at fault.
 *   Idempotent and safe from a timer: it takes the deploy lock, and a wave
 *   is recorded before it is published, so a second run (or one after a
 *   kill) finishes what the first began and never publishes twice;
 * - resume: after a halt, go on with the next wave;
 * - abort [--revert]: stop; with --revert the current wave's systems get
 *   their previous configuration back. What an abort stops (the waiting
 *   systems, and the reverted ones) is held back until a new configuration
 *   is deployed for it (docs/protocol.md §10).
 */
import { lockChrootDir } from '../chroot/chroot-dir.js';
import { readRolloutState, systemsOfWave, waveLabel, writeRolloutState, nextWave, type RolloutState } from '../protocol/rollout-file.js';
import { completeWave, haltRollout, holdAborted, publishWave, revertWave, type WaveOutcome } from '../rollout/wave-publication.js';
import { loadConfig, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { formatElapsed } from '../status/elapsed.js';
import { decideAdvance, reportOf } from '../rollout/decision.js';
import { readRolloutLogs } from '../rollout/reported-logs.js';
import { writeText } from '../util/write-stream.js';
import { defineCommand, nowOf, runsAsRoot, tell, warnUser, type CommandIO } from './io.js';

export const ROLLOUT_ACTIONS = ['status', 'advance', 'resume', 'abort'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

export interface RolloutCommandOptions {
  fleetDir: string;
  /** The action word as given. */
  action: string;
  json?: boolean;
  /** abort: give the current wave's systems their previous configuration back. */
  revert?: boolean;
}

export async function rolloutCommand(options: RolloutCommandOptions, io: CommandIO): Promise<number> {
  const action = parseRolloutAction(options.action);
  const now = () => nowOf(io);
  const { config, warnings } = await loadConfig(options.fleetDir, { askSystemd: false });
  for (const message of warnings) await warnUser(io, message);
  if (action === 'status') return showStatus(config, options, io, now());
  if (!runsAsRoot(io)) throw new UserError(`bento rollout ${action} must run as root: it publishes into CHROOT_DIR`, 'run it again with sudo');
  const unlock = await lockChrootDir(config.chrootDir);
  try {
    const state = readRolloutState(config.chrootDir);
    if (!state) {
      await tell(io, 'no rollout in progress (bento deploy starts one when config.sh sets ROLLOUT_WAVES)');
      return action === 'advance' ? 0 : 1;
    }
    if (action === 'advance') return await advance(config, state, io, now());
    if (action === 'resume') return await resume(config, state, io, now());
    return await abort(config, state, Boolean(options.revert), io, now());
  } finally {
    await unlock();
  }
}

export function parseRolloutAction(word: string): RolloutAction {
  if ((ROLLOUT_ACTIONS as readonly string[]).includes(word)) return word as RolloutAction;
  throw new UserError(`unknown rollout action ${JSON.stringify(word)}: use ${ROLLOUT_ACTIONS.join(', ')}`);
}

async function advance(config: Config, state: RolloutState, io: CommandIO, now: Date): Promise<number> {
  if (state.status === 'done') {
    await tell(io, `the rollout started ${state.startedAt} is done: every wave succeeded`);
    return 0;
  }
  if (state.status === 'aborted') {
    await tell(io, `the rollout started ${state.startedAt} was aborted`);
    return 0;
  }
  if (state.status === 'halted') return reportHalt(state, io);
  // An advance or deploy killed between recording a wave and publishing it
  // left systems the state calls published: publish them before deciding.
  const completed = completeWave(config.chrootDir, state, now);
  if (completed.published.length > 0 || completed.failed.length > 0) {
    await reportWaveOutcome(io, `${waveLabel(state.waves, state.current)} published (an earlier advance or deploy stopped before it)`, completed);
  }
  if (completed.failed.length > 0) {
    haltRollout(config.chrootDir, state, 'could not be published', completed.failed.map((failure) => failure.name), now);
    return reportHalt(state, io);
  }
  const decision = decideAdvance(state, await readRolloutLogs(config.chrootDir, state, config.logSizeLimit), now.getTime(), config.rolloutWait);
  if (decision.kind === 'wait') {
    await tell(io, `${waveLabel(state.waves, state.current)}: waiting for ${decision.waiting.join(', ')}`);
    return 0;
  }
  if (decision.kind === 'halt') {
    haltRollout(config.chrootDir, state, decision.reason, decision.systems, now);
    return reportHalt(state, io);
  }
  await tell(io, `${waveLabel(state.waves, state.current)} succeeded: ${systemsOfWave(state, state.current).join(', ')}`);
  return publishNext(config, state, decision.next, io, now);
}

/** Publishes wave `next` (none: the rollout is done); a publication that fails halts the rollout. */
async function publishNext(config: Config, state: RolloutState, next: number | undefined, io: CommandIO, now: Date): Promise<number> {
  if (next === undefined) {
    state.status = 'done';
    writeRolloutState(config.chrootDir, state);
    await tell(io, 'rollout done: every wave succeeded');
    return 0;
  }
  const outcome = publishWave(config.chrootDir, state, next, now);
  await reportWaveOutcome(io, `${waveLabel(state.waves, next)} published`, outcome);
  if (outcome.failed.length > 0) {
    haltRollout(config.chrootDir, state, 'could not be published', outcome.failed.map((failure) => failure.name), now);
    return reportHalt(state, io);
  }
  return 0;
}

async function reportWaveOutcome(io: CommandIO, what: string, outcome: WaveOutcome): Promise<void> {
  await tell(io, `${what}: ${outcome.published.join(', ') || 'no system'}`);
  for (const failure of outcome.failed) await tell(io, `  ${failure.name}: ${failure.reason}`);
}

async function reportHalt(state: RolloutState, io: CommandIO): Promise<number> {
  const halt = state.halt;
  await tell(io, `rollout halted at ${waveLabel(state.waves, state.current)}: ${halt?.systems.join(', ') ?? '?'} ${halt?.reason ?? ''}`);
  await tell(io, 'fix the configuration and deploy again (a new rollout), or `bento rollout resume` to go on anyway, or `bento rollout abort [--revert]`');
  return 1;
}

async function resume(config: Config, state: RolloutState, io: CommandIO, now: Date): Promise<number> {
  if (state.status !== 'halted') throw new UserError(`the rollout is ${state.status}, not halted: nothing to resume`);
  await tell(io, `resuming after ${waveLabel(state.waves, state.current)} halted (${state.halt?.systems.join(', ') ?? ''} ${state.halt?.reason ?? ''})`);
  state.status = 'running';
  delete state.halt;
  return publishNext(config, state, nextWave(state, state.current), io, now);
}

/**
 * Stops the rollout. The holds (what the abort stops: the systems still
 * waiting, and with --revert the current wave's) are recorded before
 * anything is reverted, so a revert killed half-way is never undone by the
 * next deploy. An aborted rollout may still be reverted once.
 */
async function abort(config: Config, state: RolloutState, revert: boolean, io: CommandIO, now: Date): Promise<number> {
  const reverted = state.halt?.reason === REVERTED;
  if (state.status === 'done' || (state.status === 'aborted' && (!revert || reverted))) {
    throw new UserError(`the rollout is ${state.status}${reverted ? ' and its current wave reverted' : ''}: nothing to abort`);
  }
  const waiting = Object.entries(state.systems).filter(([, system]) => !system.publishedAt).map(([name]) => name).sort();
  const wasAborted = state.status === 'aborted';
  state.status = 'aborted';
  state.halt = { at: now.toISOString(), reason: revert ? REVERTED : 'aborted', systems: [] };
  holdAborted(state, revert, now);
  writeRolloutState(config.chrootDir, state);
  if (!wasAborted) {
    const kept = waiting.length > 0 ? `${waiting.join(', ')} keep their current configuration until a new one is deployed for them` : 'no system was waiting';
    await tell(io, `rollout aborted at ${waveLabel(state.waves, state.current)}; ${kept}`);
  }
  if (!revert) return 0;
  const outcome = revertWave(config.chrootDir, state, state.current, now);
  await reportWaveOutcome(io, `${waveLabel(state.waves, state.current)} reverted to the previous configuration (held there until a new configuration is deployed for them)`, outcome);
  return outcome.failed.length > 0 ? 1 : 0;
}

/** The halt reason of an abort with --revert. */
const REVERTED = 'aborted, the current wave reverted';

/** One system of the status, as --json prints it. */
interface SystemLine {
  name: string;
  wave: number;
  target: string;
  published: boolean;
  publishedAt: string | null;
  report: 'succeeded' | 'failed' | 'waiting' | 'pending';
  reportedAt: string | null;
  /** Why a success log since the publication does not count, if one came. */
  note: string | null;
}

/** A system an abort holds back, as --json prints it. */
interface HeldLine {
  name: string;
  digest: string;
  at: string;
  why: 'aborted' | 'reverted';
}

async function showStatus(config: Config, options: RolloutCommandOptions, io: CommandIO, now: Date): Promise<number> {
  const state = readRolloutState(config.chrootDir);
  if (!state) {
    await writeText(io.stdout, options.json ? 'null\n' : 'no rollout in progress\n');
    return 0;
  }
  const logs = await readRolloutLogs(config.chrootDir, state, config.logSizeLimit);
  const systems: SystemLine[] = Object.keys(state.systems)
    .sort()
    .map((name) => {
      const system = state.systems[name] as RolloutState['systems'][string];
      const report = reportOf(state, name, logs(name));
      return {
        name,
        wave: system.wave + 1,
        target: system.target,
        published: system.publishedAt !== undefined,
        publishedAt: system.publishedAt ?? null,
        report: system.publishedAt === undefined ? 'pending' : report.outcome,
        reportedAt: report.atMs === undefined ? null : new Date(report.atMs).toISOString(),
        note: system.publishedAt === undefined ? null : (report.note ?? null),
      };
    });
  const held: HeldLine[] = Object.entries(state.held ?? {})
    .map(([name, hold]) => ({ name, ...hold }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (options.json) {
    const json = { startedAt: state.startedAt, status: state.status, currentWave: state.current + 1, waves: state.waves, halt: state.halt ?? null, systems, held };
    await writeText(io.stdout, `${JSON.stringify(json, null, 2)}\n`);
    return state.status === 'halted' ? 2 : 0;
  }
  const lines = [`rollout started ${state.startedAt}: ${state.status}, at ${waveLabel(state.waves, state.current)} of ${state.waves.length}`];
  if (state.halt && state.status === 'halted') lines.push(`halted: ${state.halt.systems.join(', ')} ${state.halt.reason}`);
  const width = Math.max(...systems.map((system) => system.name.length), 4);
  for (const wave of [...new Set(systems.map((system) => system.wave))].sort((a, b) => a - b)) {
    lines.push(`${waveLabel(state.waves, wave - 1)}:`);
    for (const system of systems.filter((line) => line.wave === wave)) {
      const since = system.reportedAt ? ` ${formatElapsed(Math.max(0, (now.getTime() - Date.parse(system.reportedAt)) / 1000))} ago` : '';
      const what = system.report === 'pending' ? 'waiting for its wave' : system.report === 'waiting' ? 'published, no report yet' : `${system.report}${since}`;
      lines.push(`  ${system.name.padEnd(width)}  ${system.target.slice(0, 8)}  ${what}${system.note ? ` (${system.note})` : ''}`);
    }
  }
  if (held.length > 0) {
    lines.push('held back by an abort until a new configuration is deployed for them (bento deploy --all publishes them now):');
    for (const hold of held) lines.push(`  ${hold.name.padEnd(width)}  since ${hold.at}${hold.why === 'reverted' ? ', reverted to its previous configuration' : ''}`);
  }
  await writeText(io.stdout, `${lines.join('\n')}\n`);
  return state.status === 'halted' ? 2 : 0;
}

export const command = defineCommand<{ json?: boolean; revert?: boolean }, RolloutCommandOptions>({
  define(command) {
    command
      .argument('<action>', 'status, advance, resume or abort')
      .option('--json', 'status: print JSON')
      .option('--revert', 'abort: give the current wave its previous configuration back')
      .addHelpText(
        'after',
        `
advance publishes the next wave once every system of the current one
reported success for its new configuration; it halts (exit 1) when one
reported a failure or rollback, or the wave did not report within
ROLLOUT_WAIT. It is safe to run from a timer.`,
      );
  },
  options: ({ args, flags }, world) => ({ fleetDir: world.fleetDir, action: args[0] as string, json: flags.json, revert: flags.revert }),
  run: rolloutCommand,
});
