/**
 * What a deploy does with staged rollouts (ROLLOUT_WAVES, docs/protocol.md
 * §10), decided here so that the command only wires the stages: which
 * changed systems an abort still holds back, whether everything changed
 * only waits in the rollout in progress (then nothing new starts), what a
 * new rollout keeps of the one in progress, and the start of the new one
 * (its first wave published, the others staged). Nothing is printed here:
 * what deploy says comes back as lines, in order.
 */
import type { FleetSystem } from '../fleet/fleet.js';
import type { Assembly } from '../chroot/assemble.js';
import { isActive } from '../chroot/publish.js';
import { waveLabel, type RolloutHold, type RolloutState, type RolloutSystem } from '../protocol/rollout-file.js';
import { reportOf } from './decision.js';
import { readRolloutLogs } from './reported-logs.js';
import { carriedOver, startRollout, stillHeld, waitingInRollout, type RolloutCandidate } from './wave-publication.js';

/** Which of the changed systems a deploy with waves builds. */
export interface RolloutBuilds {
  /** Held back by an abort until a new configuration is deployed for them: neither built nor published. */
  held: Record<string, RolloutHold>;
  /** The changed systems to build: all but the held ones. */
  toBuild: FleetSystem[];
  /** Of those, the ones that wait in the rollout in progress with exactly this configuration. */
  waiting: Set<string>;
  /** Every system to build only waits in the rollout in progress: it stays as it is, nothing is built. */
  nothingNew: boolean;
}

/**
 * Sorts the `changed` systems (those whose files differ from what is
 * published) by the rollout in progress, `rollout`, when the deploy has
 * `waves`; without waves every changed system is built. `assemblies` holds
 * what was assembled for every system this deploy handles.
 */
export function planRolloutBuilds(rollout: RolloutState | undefined, waves: string[][] | undefined, changed: readonly FleetSystem[], assemblies: ReadonlyMap<string, Assembly>): RolloutBuilds {
  // An abort holds what it stopped until a new configuration is deployed
  // for it (docs/protocol.md §10): neither built nor published meanwhile.
  const assembled = new Map([...assemblies].map(([name, assembly]) => [name, assembly.digest]));
  const held = waves ? stillHeld(rollout, assembled) : {};
  const toBuild = changed.filter((system) => !Object.hasOwn(held, system.name));
  const digests = new Map(toBuild.map((system) => [system.name, (assemblies.get(system.name) as Assembly).digest]));
  const waiting = waves ? waitingInRollout(rollout, digests) : new Set<string>();
  return { held, toBuild, waiting, nothingNew: toBuild.every((system) => waiting.has(system.name)) };
}

/**
 * Whether a system of the rollout in progress must still be awaited by the
 * next one (wave-publication.ts, carriedOver): it gets nothing new now
 * (`building`), its chroot still publishes the configuration that rollout
 * gave it, and no success log for exactly that configuration came
 * (decision.ts).
 */
export async function stillAwaited(chrootDir: string, rollout: RolloutState | undefined, building: ReadonlySet<string>, logSizeLimit: number): Promise<(name: string) => boolean> {
  if (!rollout || rollout.status === 'done') return () => false;
  const logs = await readRolloutLogs(chrootDir, rollout, logSizeLimit);
  return (name) => {
    const system = rollout.systems[name];
    if (!system || building.has(name) || !isActive(chrootDir, name, system.version, system.digest)) return false;
    return reportOf(rollout, name, logs(name)).outcome !== 'succeeded';
  };
}

/** Where and when a new rollout is published. */
export interface RolloutPublication {
  chrootDir: string;
  sftpGroupId: number;
  now: () => Date;
}

/** What starting a rollout did. */
export interface DeployRolloutOutcome {
  /** Published now (the first wave), the systems kept from the rollout in progress left out. */
  published: string[];
  /** Staged for a later wave. */
  staged: string[];
  failed: { name: string; reason: string }[];
  /** What deploy says, in order. */
  lines: string[];
}

/**
 * Starts a rollout with the `built` systems: what the new rollout keeps of
 * the one in progress (`rollout`: the systems still awaited or still
 * waiting, and the holds of aborts, `held`) is decided first; then the
 * first wave with a changed system, or with a carried one still awaited,
 * is published, the others staged. `changed` are all the systems whose
 * configuration changed (built, or whose build failed; not those whose
 * build is the system already published, which stay out of the rollout),
 * so that a first-wave system whose build failed halts the rollout instead
 * of letting the next wave go first. `fleet` gives each
 * system's wave today, `selected` the systems this deploy handles.
 */
export async function startDeployRollout(
  built: readonly RolloutCandidate[],
  changed: readonly FleetSystem[],
  waves: string[][],
  context: { rollout: RolloutState | undefined; held: Readonly<Record<string, RolloutHold>>; fleet: readonly FleetSystem[]; selected: readonly FleetSystem[]; logSizeLimit: number },
  publication: RolloutPublication,
): Promise<DeployRolloutOutcome> {
  const { rollout, held } = context;
  // The new rollout keeps of the one in progress what must still be
  // awaited or still waits, and the holds of aborts.
  const waveOf = new Map(context.fleet.map((system) => [system.name, system.wave ?? 0]));
  const awaited = await stillAwaited(publication.chrootDir, rollout, new Set(changed.map((system) => system.name)), context.logSizeLimit);
  const carried: Record<string, RolloutSystem> = carriedOver(rollout, new Set(context.selected.map((system) => system.name)), (name) => waveOf.get(name), awaited);

  const outcome: DeployRolloutOutcome = { published: [], staged: [], failed: [], lines: [] };
  const firstWave = Math.min(...changed.map((system) => system.wave ?? 0), ...Object.values(carried).map((system) => system.wave));
  const builtNames = new Set(built.map((candidate) => candidate.assembly.name));
  const failedToBuild = changed.filter((system) => (system.wave ?? 0) === firstWave && !builtNames.has(system.name)).map((system) => system.name);
  const started = startRollout(publication.chrootDir, waves, built, { sftpGroupId: publication.sftpGroupId, now: publication.now(), firstWave, failedToBuild, carried, held });
  outcome.failed.push(...started.failed, ...started.first.failed);
  outcome.published.push(...started.first.published.filter((name) => !Object.hasOwn(carried, name)));
  for (const [name, system] of Object.entries(started.state.systems)) {
    if (Object.hasOwn(carried, name)) {
      outcome.lines.push(`  ${name}: kept from the rollout in progress (${system.publishedAt ? 'published, its report awaited' : `waits for ${waveLabel(waves, system.wave)}`})`);
      continue;
    }
    if (system.wave === firstWave) continue;
    outcome.staged.push(name);
    outcome.lines.push(`  ${name}: staged for ${waveLabel(waves, system.wave)}; \`bento rollout advance\` publishes it once ${waveLabel(waves, firstWave)} succeeded`);
  }
  outcome.lines.push(`rollout started: ${waveLabel(waves, firstWave)} published to ${started.first.published.join(', ') || 'no system'}`);
  if (started.state.status === 'halted') outcome.lines.push(`rollout halted at once: ${started.state.halt?.systems.join(', ')} ${started.state.halt?.reason}`);
  return outcome;
}
