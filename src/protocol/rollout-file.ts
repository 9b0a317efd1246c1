/**
 * The state of a staged rollout (docs/protocol.md §10): CHROOT_DIR/rollout.json,
 * written by deploy and by `bento rollout`, read by status. Replaced
 * atomically, so a reader (or an advance killed half-way) never sees half a
 * file. The one parser of the format: a file that does not parse is an error
 * that names it, never a guess.
 *
 * Every field is read back as its writer writes it, and the state is built
 * anew from the fields it checked (nothing else of the file is kept): the
 * names in it become paths that root opens (a version directory, a
 * system's chroot), and its texts are printed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { systemNameProblem } from './names.js';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { truncate } from '../util/text.js';
import { ROLLOUT_FILE } from './layout.js';
import { storeBasenameProblem } from './store-path.js';

/** A wave member (ROLLOUT_WAVES, and the waves of rollout.json): a system name, or a shell glob of them (`*`, `?`, `[...]`). */
export const WAVE_PATTERN = /^[a-z0-9_*?[\]!-]{1,64}$/;

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

/**
 * A system an abort holds back (docs/protocol.md §10): deploy publishes
 * nothing of it while the fleet still gives it the configuration `digest`,
 * whatever other rollouts come and go.
 */
export interface RolloutHold {
  /** sha256 of the manifest of the configuration held back. */
  digest: string;
  /** When the abort happened (ISO 8601). */
  at: string;
  /** `aborted`: it waited for its wave; `reverted`: its wave was published, then reverted (`abort --revert`). */
  why: 'aborted' | 'reverted';
}

export type RolloutStatus = 'running' | 'halted' | 'done' | 'aborted';
const STATUSES: readonly RolloutStatus[] = ['running', 'halted', 'done', 'aborted'];
const HOLD_REASONS: readonly RolloutHold['why'][] = ['aborted', 'reverted'];

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
  /** Systems held back by an abort, until the fleet gives them another configuration. */
  held?: Record<string, RolloutHold>;
}

export function rolloutFilePath(chrootDir: string): string {
  return path.join(chrootDir, ROLLOUT_FILE);
}

/** A version directory's name, as chroot/publish.ts makes it. */
export const VERSION_DIR = /^\.config-[0-9a-f]{16}(-[0-9a-z]+)?$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** Date.toISOString(), the only way bento writes a time here. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** bento's own texts (a halt's reason): printable ASCII, one line. */
const REASON = /^[\x20-\x7e]{1,500}$/;

/** A field that is not as bento writes it: `where` is its path in the file. */
class FieldError extends Error {
  constructor(where: string, what: string, value: unknown) {
    super(`${where} is not ${what} (found ${describe(value)})`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON escapes control characters: the message is printed.
  return truncate(JSON.stringify(value) ?? String(value), 80);
}

/** Parses rollout.json; throws an Error saying which field is wrong and how. */
export function parseRolloutState(text: string): RolloutState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  return readState(value);
}

function readState(value: unknown): RolloutState {
  const file = readObject(value, 'the file', ['version', 'startedAt', 'waves', 'current', 'status', 'halt', 'systems', 'held']);
  if (file.version !== 1) throw new FieldError('version', 'the version of bento rollout state (1)', file.version);
  const waves = readList(file.waves, 'waves', (wave, where) => {
    const members = readList(wave, where, (member, at) => readString(member, at, WAVE_PATTERN, 'a wave member of ROLLOUT_WAVES'));
    if (members.length === 0) throw new FieldError(where, 'a wave with members', wave);
    return members;
  });
  if (waves.length === 0) throw new FieldError('waves', 'a list of waves', file.waves);
  const waveIndex = (index: unknown, where: string): number => {
    if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= waves.length) throw new FieldError(where, `a wave index below ${waves.length}`, index);
    return index as number;
  };
  const state: RolloutState = {
    version: 1,
    startedAt: readTime(file.startedAt, 'startedAt'),
    waves,
    current: waveIndex(file.current, 'current'),
    status: readChoice(file.status, 'status', STATUSES),
    systems: readRecord(file.systems, 'systems', (system, where) => readSystem(system, where, waveIndex)),
  };
  if (file.halt !== undefined) {
    const halt = readObject(file.halt, 'halt', ['at', 'reason', 'systems']);
    state.halt = {
      at: readTime(halt.at, 'halt.at'),
      reason: readString(halt.reason, 'halt.reason', REASON, 'a line of text'),
      systems: readList(halt.systems, 'halt.systems', readSystemName),
    };
  }
  if (file.held !== undefined) state.held = readRecord(file.held, 'held', readHold);
  return state;
}

function readSystem(value: unknown, where: string, waveIndex: (index: unknown, where: string) => number): RolloutSystem {
  const fields = readObject(value, where, ['wave', 'exact', 'target', 'version', 'digest', 'previous', 'publishedAt']);
  if (typeof fields.exact !== 'boolean') throw new FieldError(`${where}.exact`, 'true or false', fields.exact);
  const previousFields = readObject(fields.previous, `${where}.previous`, ['version', 'target']);
  const previous: RolloutSystem['previous'] = {};
  if (previousFields.version !== undefined) previous.version = readString(previousFields.version, `${where}.previous.version`, VERSION_DIR, 'a version directory name (.config-<16 hex digits>)');
  if (previousFields.target !== undefined) previous.target = readStoreBasename(previousFields.target, `${where}.previous.target`);
  const system: RolloutSystem = {
    wave: waveIndex(fields.wave, `${where}.wave`),
    exact: fields.exact,
    target: readStoreBasename(fields.target, `${where}.target`),
    version: readString(fields.version, `${where}.version`, VERSION_DIR, 'a version directory name (.config-<16 hex digits>)'),
    digest: readString(fields.digest, `${where}.digest`, SHA256, 'a sha256 (64 hex digits)'),
    previous,
  };
  if (fields.publishedAt !== undefined) system.publishedAt = readTime(fields.publishedAt, `${where}.publishedAt`);
  return system;
}

function readHold(value: unknown, where: string): RolloutHold {
  const fields = readObject(value, where, ['digest', 'at', 'why']);
  return {
    digest: readString(fields.digest, `${where}.digest`, SHA256, 'a sha256 (64 hex digits)'),
    at: readTime(fields.at, `${where}.at`),
    why: readChoice(fields.why, `${where}.why`, HOLD_REASONS),
  };
}

/** A JSON object with only `keys` (any of them may be absent). */
function readObject(value: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FieldError(where, 'an object', value);
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown !== undefined) throw new Error(`${where} has a field bento does not write: ${describe(unknown)}`);
  return value as Record<string, unknown>;
}

/** An object keyed by system names, each value read by `read`. */
function readRecord<T>(value: unknown, where: string, read: (value: unknown, where: string) => T): Record<string, T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FieldError(where, 'an object', value);
  // fromEntries defines each key as a property (a key "__proto__" sets no prototype).
  return Object.fromEntries(Object.entries(value).map(([name, entry]) => [readSystemName(name, `a name in ${where}`), read(entry, `${where}.${name}`)]));
}

function readList<T>(value: unknown, where: string, read: (value: unknown, where: string) => T): T[] {
  if (!Array.isArray(value)) throw new FieldError(where, 'a list', value);
  return value.map((entry, index) => read(entry, `${where}[${index}]`));
}

function readString(value: unknown, where: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new FieldError(where, what, value);
  return value;
}

function readChoice<T extends string>(value: unknown, where: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw new FieldError(where, `one of ${choices.join(', ')}`, value);
  return value as T;
}

function readTime(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value)) || new Date(value).toISOString() !== value) {
    throw new FieldError(where, 'a time as bento writes it (2026-11-26T10:00:00.000Z)', value);
  }
  return value;
}

function readSystemName(value: unknown, where: string): string {
  if (typeof value !== 'string' || systemNameProblem(value) !== undefined) throw new FieldError(where, 'a system name', value);
  return value;
}

function readStoreBasename(value: unknown, where: string): string {
  if (typeof value !== 'string' || storeBasenameProblem(value) !== undefined) throw new FieldError(where, 'a store path basename (<32-character hash>-<name>)', value);
  return value;
}

/** The rollout of CHROOT_DIR, or undefined when there is none; a file that cannot be read or parsed is a UserError naming it. */
export function readRolloutState(chrootDir: string): RolloutState | undefined {
  let text: string;
  try {
    text = readFileSync(rolloutFilePath(chrootDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Named: EISDIR's message (a directory in its place) says nothing of where.
    throw new UserError(`cannot read ${rolloutFilePath(chrootDir)}: ${(error as Error).message}`);
  }
  try {
    return parseRolloutState(text);
  } catch (error) {
    // deploy and `bento rollout` both refuse a damaged file: the way out is to remove it.
    throw new UserError(
      `${rolloutFilePath(chrootDir)} is damaged: ${(error as Error).message}`,
      'remove it to forget that rollout (what it staged, held back or still awaited is forgotten with it; what is published stays); the next bento deploy then starts a new rollout',
    );
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

/** The systems whose new configuration the rollout still holds back. */
export function waitingForWave(state: RolloutState | undefined): Set<string> {
  if (!state) return new Set();
  return new Set(Object.entries(state.systems).filter(([, system]) => !system.publishedAt).map(([name]) => name));
}
