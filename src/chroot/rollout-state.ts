/**
 * The state of a staged rollout (docs/protocol.md §10): CHROOT_DIR/rollout.json,
 * written by deploy and by `bento rollout`, read by status. Replaced
 * atomically, so a reader (or an advance killed half-way) never sees half a
 * file. The one parser of the format: a file that does not parse is an error
 * that names it, never a guess.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { SYSTEM_NAME } from '../fleet/names.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { ROLLOUT_FILE } from './layout.js';
import { storeBasenameProblem } from './store-path.js';

/** One system of a rollout. */
export interface RolloutSystem {
  /** Index of its wave. */
  wave: number;
  /**
   * The machine runs exactly `target` once it succeeded (a flake, or a
   * prebuilt system): states.txt names it, and only a success for it counts.
   * False for a configuration.nix the machine builds with its own channels.
   */
  exact: boolean;
  /** The store path basename the server built (or evaluated) for it. */
  target: string;
  /** The version directory holding its new configuration (staged until its wave is published). */
  version: string;
  /** sha256 of its manifest: what last_change_date announces once published. */
  digest: string;
  /** What it had before this rollout, for `rollout abort --revert`. */
  previous: { version?: string; target?: string };
  /** When its wave was published; absent while it waits. */
  publishedAt?: string;
}

export type RolloutStatus = 'running' | 'halted' | 'done' | 'aborted';

export interface RolloutState {
  version: 1;
  /** When the deploy that started it ran (ISO 8601); identifies the rollout. */
  startedAt: string;
  /** The waves of ROLLOUT_WAVES as given, for people. */
  waves: string[][];
  /** The wave published last (the one being watched while running). */
  current: number;
  status: RolloutStatus;
  /** Why it halted (or was aborted), with the systems at fault. */
  halt?: { at: string; reason: string; systems: string[] };
  systems: Record<string, RolloutSystem>;
}

export function rolloutFilePath(chrootDir: string): string {
  return path.join(chrootDir, ROLLOUT_FILE);
}

/** Parses rollout.json; throws an Error saying what is wrong with it. */
export function parseRolloutState(text: string): RolloutState {
  const state = JSON.parse(text) as RolloutState;
  const problem = rolloutStateProblem(state);
  if (problem) throw new Error(problem);
  return state;
}

function rolloutStateProblem(state: RolloutState): string | undefined {
  if (typeof state !== 'object' || state === null || state.version !== 1) return 'not a bento rollout state (version 1)';
  if (!Array.isArray(state.waves) || !state.waves.every((wave) => Array.isArray(wave) && wave.every((member) => typeof member === 'string'))) return 'waves is not a list of lists';
  if (!Number.isInteger(state.current) || state.current < 0) return 'current is not a wave index';
  if (!['running', 'halted', 'done', 'aborted'].includes(state.status)) return `unknown status ${JSON.stringify(state.status)}`;
  if (typeof state.startedAt !== 'string' || Number.isNaN(Date.parse(state.startedAt))) return 'startedAt is not a time';
  if (typeof state.systems !== 'object' || state.systems === null) return 'systems is missing';
  for (const [name, system] of Object.entries(state.systems)) {
    if (!SYSTEM_NAME.test(name)) return `${JSON.stringify(name)} is not a system name`;
    if (!Number.isInteger(system.wave) || system.wave < 0) return `${name}: wave is not an index`;
    if (typeof system.exact !== 'boolean') return `${name}: exact is not true or false`;
    if (storeBasenameProblem(system.target)) return `${name}: target is not a store path basename`;
    if (!/^\.config-[0-9a-f]{16}(-[0-9a-z]+)?$/.test(system.version)) return `${name}: version is not a version directory name`;
    if (!/^[0-9a-f]{64}$/.test(system.digest)) return `${name}: digest is not a sha256`;
    if (system.publishedAt !== undefined && Number.isNaN(Date.parse(system.publishedAt))) return `${name}: publishedAt is not a time`;
  }
  return undefined;
}

/** The rollout of CHROOT_DIR, or undefined when there is none; a file that cannot be read or parsed is a UserError naming it. */
export function readRolloutState(chrootDir: string): RolloutState | undefined {
  let text: string;
  try {
    text = readFileSync(rolloutFilePath(chrootDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError((error as Error).message);
  }
  try {
    return parseRolloutState(text);
  } catch (error) {
    throw new UserError(`${rolloutFilePath(chrootDir)} is damaged (${(error as Error).message}): remove it to forget the rollout, or deploy again`);
  }
}

/**
 * Records the rollout. Every caller writes it before publishing what it
 * records (or to record an outcome), so a failure (a full CHROOT_DIR) stops
 * the command with a message: what is published stays, nothing more is.
 */
export function writeRolloutState(chrootDir: string, state: RolloutState): void {
  const file = rolloutFilePath(chrootDir);
  try {
    writeFileAtomicallySync(file, `${JSON.stringify(state, null, 2)}\n`);
  } catch (error) {
    throw new UserError(
      `cannot write ${file}: ${(error as Error).message}: the rollout's new state is not recorded; what was published stays published, and nothing more of the rollout is published`,
      'make room in CHROOT_DIR (or fix what the error names), then run bento deploy or bento rollout advance again',
    );
  }
}

/** `wave 2 (web-*,db)`: wave `index` of `waves` as people read it (numbered from 1). */
export function waveLabel(waves: readonly string[][], index: number): string {
  return `wave ${index + 1} (${waves[index]?.join(',') ?? '?'})`;
}

/** The systems of one wave, sorted. */
export function systemsOfWave(state: RolloutState, wave: number): string[] {
  return Object.keys(state.systems)
    .filter((name) => state.systems[name]?.wave === wave)
    .sort();
}

/** The next wave after `wave` that has systems, or undefined. */
export function nextWave(state: RolloutState, wave: number): number | undefined {
  const waves = [...new Set(Object.values(state.systems).map((system) => system.wave))].filter((index) => index > wave).sort((a, b) => a - b);
  return waves[0];
}
