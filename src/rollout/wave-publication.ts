/**
 * Staged rollouts over the chroots (docs/protocol.md §10). Deploy stages the
 * new configuration of every changed system in its own chroot (a version
 * directory nobody points to yet) and publishes the first wave; each later
 * wave is published when the one before it reported success. The rollout
 * state (protocol/rollout-file.ts) is written before any chroot changes, and
 * publishing a system that is already published changes nothing, so an
 * advance killed half-way is completed, never repeated, by the next one.
 */
import { rmSync } from 'node:fs';
import type { Assembly } from '../chroot/assemble.js';
import { activeVersion, isActive, publishStagedBatch, sharingByContent, stageVersion, versionDigest, type PublishOptions, type StagedPublication } from '../chroot/publish.js';
import { readStatesFileToDecide, validStates } from '../protocol/states-file.js';
import { readRolloutState, rolloutFilePath, systemsOfWave, writeRolloutState, type RolloutHold, type RolloutState, type RolloutSystem } from '../protocol/rollout-file.js';

export interface WaveOutcome {
  published: string[];
  failed: { name: string; reason: string }[];
}

/** What a system had published before a rollout, for a revert. */
export function previousOf(chrootDir: string, name: string): RolloutSystem['previous'] {
  return { version: activeVersion(chrootDir, name), target: validStates(readStatesFileToDecide(chrootDir)).get(name) };
}

/**
 * Publishes the staged systems of `wave`: records the intent in the state
 * (the wave becomes current, its systems get publishedAt), then publishes
 * each system that is not published yet. A system that fails stays on its
 * previous configuration; the caller decides what that means for the rollout.
 */
export function publishWave(chrootDir: string, state: RolloutState, wave: number, now: Date): WaveOutcome {
  const names = systemsOfWave(state, wave);
  state.current = wave;
  for (const name of names) {
    const system = state.systems[name] as RolloutSystem;
    system.publishedAt ??= now.toISOString();
  }
  writeRolloutState(chrootDir, state);
  return publishSystems(chrootDir, state, names, now);
}

/**
 * Publishes what a killed advance or deploy recorded for the current wave
 * but did not publish: those systems are published now, and the time they
 * have to report (ROLLOUT_WAIT) starts now, not when the intent was
 * recorded. `published` names only the systems published by this call.
 */
export function completeWave(chrootDir: string, state: RolloutState, now: Date): WaveOutcome {
  const missing = systemsOfWave(state, state.current).filter((name) => {
    const system = state.systems[name] as RolloutSystem;
    return !isActive(chrootDir, name, system.version, system.digest);
  });
  if (missing.length === 0) return { published: [], failed: [] };
  for (const name of missing) (state.systems[name] as RolloutSystem).publishedAt = now.toISOString();
  writeRolloutState(chrootDir, state);
  return publishSystems(chrootDir, state, missing, now);
}

/** Publishes each of `names`' staged version, unless it is already the published one; states.txt is written once for all (publishStagedBatch). */
function publishSystems(chrootDir: string, state: RolloutState, names: readonly string[], now: Date): WaveOutcome {
  const batch: StagedPublication[] = [];
  for (const name of names) {
    const system = state.systems[name] as RolloutSystem;
    if (!isActive(chrootDir, name, system.version, system.digest)) batch.push({ system: { name, digest: system.digest }, versionName: system.version, storeBasename: system.exact ? system.target : undefined });
  }
  const outcome = publishStagedBatch(chrootDir, batch, now);
  const failed = new Set(outcome.failed.map((failure) => failure.name));
  return { published: names.filter((name) => !failed.has(name)), failed: outcome.failed };
}

/**
 * Puts back, for the systems of `wave`, the configuration they had before
 * this rollout (`rollout abort --revert`): its version directory is
 * announced again, so the machines download it and switch back.
 */
export function revertWave(chrootDir: string, state: RolloutState, wave: number, now: Date): WaveOutcome {
  const reasons = new Map<string, string>();
  const batch: StagedPublication[] = [];
  const names = systemsOfWave(state, wave);
  for (const name of names) {
    const system = state.systems[name] as RolloutSystem;
    const { version, target } = system.previous;
    if (!version) {
      reasons.set(name, 'it had no configuration before this rollout: nothing to go back to');
      continue;
    }
    try {
      // last_change_date announces the old manifest again: the machines see a
      // change and download it. Published as a staged version is (its
      // states.txt line with it, put back if the activation fails).
      batch.push({ system: { name, digest: versionDigest(chrootDir, name, version) }, versionName: version, storeBasename: system.exact ? target : undefined });
    } catch (error) {
      reasons.set(name, (error as Error).message);
    }
  }
  for (const failure of publishStagedBatch(chrootDir, batch, now).failed) reasons.set(failure.name, failure.reason);
  return {
    published: names.filter((name) => !reasons.has(name)),
    failed: names.filter((name) => reasons.has(name)).map((name) => ({ name, reason: reasons.get(name) as string })),
  };
}

/** A built system ready to enter a rollout. */
export interface RolloutCandidate {
  assembly: Assembly;
  /** The machine runs exactly `target` once it succeeded (see RolloutSystem.exact). */
  exact: boolean;
  wave: number;
  /** Store path basename of what the server built (or evaluated). */
  target: string;
}

/**
 * The systems of a rollout in progress (running or halted) that wait for
 * their wave with exactly `digests`' configuration: deploying them again
 * changes nothing, so they stay in that rollout instead of starting a new
 * one (running `bento deploy` twice must not skip the canaries).
 */
export function waitingInRollout(state: RolloutState | undefined, digests: ReadonlyMap<string, string>): Set<string> {
  const waiting = new Set<string>();
  if (!state || (state.status !== 'running' && state.status !== 'halted')) return waiting;
  for (const [name, digest] of digests) {
    const system = state.systems[name];
    if (system && !system.publishedAt && system.digest === digest) waiting.add(name);
  }
  return waiting;
}

/**
 * What a new rollout keeps of the one in progress (running, halted or
 * aborted), docs/protocol.md §10:
 * - the systems of the wave being watched whose configuration is still the
 *   one that wave gave them and has not passed (`awaited`), with their
 *   publication time: a wave is passed only by success logs for the exact
 *   configuration it was given, so no later wave goes ahead of them,
 *   whatever else this deploy changes;
 * - the systems a deploy of some systems only (`bento deploy NAME…`) does
 *   not handle that still wait for their wave, with their staged
 *   configuration (without them, the new rollout would forget what the old
 *   one staged). Not after an abort: it holds them (`stillHeld`).
 * A system an abort holds back is never carried. `waveOf` gives each
 * system's wave under today's ROLLOUT_WAVES (undefined: no longer in the
 * fleet).
 */
export function carriedOver(
  state: RolloutState | undefined,
  selected: ReadonlySet<string>,
  waveOf: (name: string) => number | undefined,
  awaited: (name: string) => boolean,
): Record<string, RolloutSystem> {
  if (!state || state.status === 'done') return {};
  const carried: [string, RolloutSystem][] = [];
  for (const [name, system] of Object.entries(state.systems)) {
    const wave = waveOf(name);
    if (wave === undefined || isHeld(state, name)) continue;
    const watched = system.publishedAt !== undefined && system.wave === state.current && awaited(name);
    const waiting = system.publishedAt === undefined && !selected.has(name) && state.status !== 'aborted';
    if (watched || waiting) carried.push([name, { ...system, wave }]);
  }
  return Object.fromEntries(carried);
}

function isHeld(state: RolloutState, name: string): boolean {
  return state.held !== undefined && Object.hasOwn(state.held, name);
}

/**
 * The holds of aborts that still hold (docs/protocol.md §10): an abort or a
 * revert holds a system back until a new configuration is deployed for it.
 * `digests` is the configuration this deploy assembled for each system it
 * handles: a system given another one than the one held back is released;
 * the holds of the systems it does not handle stay.
 */
export function stillHeld(state: RolloutState | undefined, digests: ReadonlyMap<string, string>): Record<string, RolloutHold> {
  return Object.fromEntries(
    Object.entries(state?.held ?? {}).filter(([name, hold]) => {
      const digest = digests.get(name);
      return digest === undefined || digest === hold.digest;
    }),
  );
}

/**
 * Holds back what an abort stops (`bento rollout abort`): the systems still
 * waiting for their wave, and with `revert` the current wave's, which get
 * their previous configuration back. Recorded in the state, which the caller
 * writes before it reverts anything.
 */
export function holdAborted(state: RolloutState, revert: boolean, now: Date): void {
  const at = now.toISOString();
  const held = Object.entries(state.systems).flatMap(([name, system]): [string, RolloutHold][] => {
    if (system.publishedAt === undefined) return [[name, { digest: system.digest, at, why: 'aborted' }]];
    if (revert && system.wave === state.current && system.previous.version !== undefined) return [[name, { digest: system.digest, at, why: 'reverted' }]];
    return [];
  });
  // A hold already recorded keeps its time (an abort, then an abort --revert).
  state.held = Object.fromEntries([...held, ...Object.entries(state.held ?? {})]);
}

export interface StartedRollout {
  state: RolloutState;
  /** Systems whose version directory could not be written: not in the rollout. */
  failed: { name: string; reason: string }[];
  first: WaveOutcome;
}

/**
 * Starts a rollout (replacing any other): stages every candidate's version
 * directory in its chroot, records the rollout, and publishes `firstWave`
 * (the first wave with a changed system). Later waves see nothing until
 * `bento rollout advance` publishes them. A system of the first wave that
 * could not be built (`failedToBuild`) halts the rollout at once: the later
 * waves must not go ahead of it.
 */
export function startRollout(
  chrootDir: string,
  waves: string[][],
  candidates: readonly RolloutCandidate[],
  options: PublishOptions & {
    firstWave: number;
    failedToBuild: readonly string[];
    carried?: Readonly<Record<string, RolloutSystem>>;
    /** The holds of earlier aborts that still hold (stillHeld): the new rollout keeps them. */
    held?: Readonly<Record<string, RolloutHold>>;
  },
): StartedRollout {
  const state: RolloutState = { version: 1, startedAt: options.now.toISOString(), waves, current: options.firstWave, status: 'running', systems: { ...options.carried } };
  if (options.held && Object.keys(options.held).length > 0) state.held = { ...options.held };
  const failed: StartedRollout['failed'] = [];
  // The waves' versions share their identical files, as a deploy's do (chroot/publish.ts).
  const sharing = sharingByContent();
  for (const candidate of candidates) {
    const { name, digest } = candidate.assembly;
    try {
      const previous = previousOf(chrootDir, name);
      const version = stageVersion(chrootDir, candidate.assembly, options, sharing);
      state.systems[name] = { wave: candidate.wave, exact: candidate.exact, target: candidate.target, version, digest, previous };
    } catch (error) {
      failed.push({ name, reason: `publication failed, its previous files stay published: ${(error as Error).message}` });
    }
  }
  const first = publishWave(chrootDir, state, options.firstWave, options.now);
  const atFault = [...options.failedToBuild, ...first.failed.map((failure) => failure.name), ...failed.map((failure) => failure.name).filter((name) => candidates.find((c) => c.assembly.name === name)?.wave === options.firstWave)];
  if (atFault.length > 0) haltRollout(chrootDir, state, 'could not be built or published on the server', atFault, options.now);
  return { state, failed, first };
}

/** Marks the rollout halted, saying why and naming the systems at fault. */
export function haltRollout(chrootDir: string, state: RolloutState, reason: string, systems: string[], now: Date): void {
  state.status = 'halted';
  state.halt = { at: now.toISOString(), reason, systems };
  writeRolloutState(chrootDir, state);
}

/**
 * Systems that left the fleet (chroot/retire.ts) leave the rollout too: a
 * wave neither waits for them nor publishes them again (advance would
 * announce a version directory the retirement removed), and no hold or
 * halt names them. A rollout left with no system ends.
 */
export function forgetInRollout(chrootDir: string, names: readonly string[]): string[] {
  const state = readRolloutState(chrootDir);
  if (!state) return [];
  const gone = names.filter((name) => Object.hasOwn(state.systems, name) || (state.held !== undefined && Object.hasOwn(state.held, name)));
  if (gone.length === 0) return [];
  for (const name of gone) {
    delete state.systems[name];
    if (state.held) delete state.held[name];
  }
  if (state.held && Object.keys(state.held).length === 0) delete state.held;
  if (state.halt) state.halt.systems = state.halt.systems.filter((name) => !gone.includes(name));
  if (Object.keys(state.systems).length === 0 && !state.held) endRollout(chrootDir);
  else writeRolloutState(chrootDir, state);
  return gone;
}

/** Forgets the rollout (a deploy that publishes everything at once ends it). */
export function endRollout(chrootDir: string): void {
  rmSync(rolloutFilePath(chrootDir), { force: true });
}
