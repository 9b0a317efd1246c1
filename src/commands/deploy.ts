/**
 * `bento deploy`: for each selected system, assemble its files, compare them
 * with what its chroot holds, build what changed (batched, in parallel),
 * record the store paths of flake systems in states.txt, and publish. A
 * system that fails keeps what it had; the others go on, and the command
 * fails at the end naming them.
 *
 * Read → plan → build → publish, each a stage: render/generate brings
 * generated/ up to date, chroot/assemble and chroot/publish say what is
 * published, builds/ builds, chroot/publish writes.
 */
import path from 'node:path';
import { buildSystemsShowingProgress } from '../builds/build-systems.js';
import { bentoAccountProblem, readAccounts } from '../chroot/accounts.js';
import { assembleSystem, HashCache, type Assembly } from '../chroot/assemble.js';
import { publishSystemCache, systemCacheProblems } from '../chroot/binary-cache.js';
import { lockChrootDir, prepareChrootDir } from '../chroot/chroot-dir.js';
import { SFTP_GROUP } from '../chroot/layout.js';
import { announceSystem, ensureSystemDirs, isActive, isPublished, publishedContentProblems, publishStaged, readPublished, removeLeftovers, stageVersion } from '../chroot/publish.js';
import { carriedOver, endRollout, startRollout, stillHeld, waitingInRollout, type RolloutCandidate } from '../chroot/rollout.js';
import { readRolloutState, waveLabel, type RolloutHold, type RolloutState, type RolloutSystem } from '../chroot/rollout-state.js';
import { findDepartures, retireDepartures } from '../chroot/retire.js';
import { UserError } from '../errors.js';
import { releaseFleet, type BrokenHost, type Fleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import { pruneLogs } from '../status/prune-logs.js';
import { reportOf } from '../status/rollout-decision.js';
import { readRolloutLogs } from '../status/rollout-logs.js';
import type { NixBuildOptions } from '../nix/build.js';
import { generateOutput } from '../render/generate.js';
import { authorizedKeysFileOf } from '../render/render-fleet.js';
import { sanitize } from '../util/sanitize.js';
import { reportBrokenHosts } from './generate.js';
import { defineSelectionFlags, selectionOptions, type SelectionFlags } from './shared/flags.js';
import { defineCommand, nowOf, printLine, runsAsRoot, tell, warnLine, type CommandIO } from './io.js';

export interface DeployCommandOptions {
  fleetDir: string;
  /** Restrict to these systems (NAME); empty: all. */
  names: string[];
  jobs: number;
  /** Nix options; evaluateOnly defaults to config.sh's NOLOCALBUILD. */
  nix: NixBuildOptions;
  /** With ROLLOUT_WAVES: publish every changed system at once, ending any rollout. */
  all?: boolean;
}

export interface DeployFailure {
  name: string;
  reason: string;
}

export interface DeployResult {
  published: string[];
  unchanged: string[];
  /** Built and staged for a later wave of the rollout (ROLLOUT_WAVES), or still waiting there. */
  staged: string[];
  /** Held back by an aborted rollout: their configuration is the one the abort held back (docs/protocol.md §10). */
  held: string[];
  failed: DeployFailure[];
  brokenHosts: BrokenHost[];
  /** Files of generated/ that were stale and rewritten first. */
  regenerated: number;
  /** Systems that left the fleet, whose published files this deploy took away. */
  removed: string[];
}

const SERVER_SETUP_HINT = 'apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh as root, then deploy again';

export async function deployCommand(options: DeployCommandOptions, io: CommandIO): Promise<number> {
  const result = await deploy(options, io);
  await reportBrokenHosts(io, result.brokenHosts);
  const staged = result.staged.length > 0 ? `, ${result.staged.length} waiting for a later wave (bento rollout status)` : '';
  const held = result.held.length > 0 ? `, ${result.held.length} held back by an aborted rollout` : '';
  const removed = result.removed.length > 0 ? `, ${result.removed.length} removed from the fleet` : '';
  await tell(io, `deploy: ${result.published.length} published, ${result.unchanged.length} unchanged, ${result.failed.length} failed${staged}${held}${removed}`);
  // One line per failure: Nix's multi-line explanation was shown with the build lines.
  for (const failure of result.failed) await tell(io, `  ${failure.name}: ${sanitize(failure.reason)}`);
  const problems = result.failed.length + result.brokenHosts.length;
  if (problems > 0) {
    throw new UserError(`${problems} problem${problems === 1 ? '' : 's'}: the systems above kept what they had published before`);
  }
  return 0;
}

export async function deploy(options: DeployCommandOptions, io: CommandIO): Promise<DeployResult> {
  if (!runsAsRoot(io)) {
    throw new UserError('bento deploy must run as root: it sets the ownership sshd requires in CHROOT_DIR', 'run it again with sudo (sudo -E keeps BENTO_DIR and NAME)');
  }
  // One snapshot of hosts/: what is evaluated is what is built and published, whatever is edited meanwhile.
  const { fleet, outputDir: generatedDir, summary } = await generateOutput({ fleetDir: options.fleetDir, jobs: options.jobs, snapshot: true });
  try {
    return await deployFleet(fleet, generatedDir, summary.written.length, options, io);
  } finally {
    await releaseFleet(fleet);
  }
}

async function deployFleet(fleet: Fleet, generatedDir: string, regenerated: number, options: DeployCommandOptions, io: CommandIO): Promise<DeployResult> {
  const now = () => nowOf(io);
  const print = (line: string) => printLine(io, line);
  const warn = (message: string) => warnLine(io, message);
  const nix: NixBuildOptions = { ...options.nix, evaluateOnly: options.nix.evaluateOnly ?? fleet.config.noLocalBuild };
  if (regenerated > 0) print(`generated/ was out of date: ${regenerated} file${regenerated === 1 ? '' : 's'} rewritten`);
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);

  const { chrootDir } = fleet.config;
  prepareChrootDir(chrootDir);
  const unlock = await lockChrootDir(chrootDir);
  try {
    removeLeftovers(chrootDir, selected.map((system) => system.name));
    const result: DeployResult = { published: [], unchanged: [], staged: [], held: [], failed: [], brokenHosts: fleet.brokenHosts, regenerated, removed: [] };
    const plan = await planPublication(selected, chrootDir, generatedDir, result, print, warn);
    const publication = { chrootDir, sftpGroupId: plan.sftpGroupId, now, result };
    await reportDepartures(fleet, publication, print, warn);
    for (const name of result.unchanged) print(`  ${name}: no changes`);
    for (const assembly of plan.toAnnounce) {
      if (attempt(assembly.name, result, 'publication failed, its previous files stay published', () => announceSystem(chrootDir, assembly, now()))) {
        result.published.push(assembly.name);
        print(`  ${assembly.name}: published (completing an interrupted deploy)`);
      }
    }
    // Bounded logs, before the builds (as safe: a publication only narrows
    // the logs status needs, those newer than last_change_date).
    await pruneDeployed(chrootDir, fleet.config.logKeep, fleet.config.logSizeLimit, [...plan.assemblies.keys()], print, warn);
    const waves = options.all ? undefined : fleet.config.rolloutWaves;
    const rollout = readRolloutState(chrootDir);
    if (rollout && !waves) {
      // Every changed system is published now, those the rollout kept waiting included.
      endRollout(chrootDir);
      print(`  the rollout in progress ends: ${options.all ? '--all publishes every changed system' : 'ROLLOUT_WAVES is no longer set'}`);
    }
    // An abort holds what it stopped until a new configuration is deployed
    // for it (docs/protocol.md §10): neither built nor published meanwhile.
    const assembled = new Map([...plan.assemblies].map(([name, assembly]) => [name, assembly.digest]));
    const held = waves ? stillHeld(rollout, assembled) : {};
    const toBuild = plan.toBuild.filter((system) => !Object.hasOwn(held, system.name));
    for (const system of plan.toBuild) if (Object.hasOwn(held, system.name)) reportHeld(system.name, held[system.name] as RolloutHold, result, print);
    const digests = new Map(toBuild.map((system) => [system.name, (plan.assemblies.get(system.name) as Assembly).digest]));
    const waiting = waves ? waitingInRollout(rollout, digests) : new Set<string>();
    if (toBuild.every((system) => waiting.has(system.name))) {
      // Nothing new: the rollout in progress stays as it is, holds included.
      for (const name of waiting) {
        result.staged.push(name);
        print(`  ${name}: waits for wave ${(rollout?.systems[name]?.wave ?? 0) + 1} of the rollout in progress`);
      }
      return result;
    }
    // Something new: every changed system is built, and with waves a new
    // rollout (from the first wave) replaces the one in progress.
    const verb = nix.evaluateOnly ? 'evaluating (NOLOCALBUILD)' : 'building';
    print(`${verb} ${toBuild.length} system${toBuild.length === 1 ? '' : 's'}`);
    const builds = await buildSystemsShowingProgress(toBuild, { generatedDir, nix, jobs: options.jobs, print, progress: io.progress });
    const built: RolloutCandidate[] = [];
    for (const build of builds) {
      if (!build.ok || !build.storePath) {
        result.failed.push({ name: build.name, reason: `build failed: ${build.error ?? ''}` });
        continue;
      }
      const system = toBuild.find((candidate) => candidate.name === build.name) as FleetSystem;
      const assembly = plan.assemblies.get(build.name) as Assembly;
      if (!(await publishPrebuiltCache(fleet, assembly, system.prebuilt ? build.storePath : undefined, publication))) continue;
      // A flake, or a prebuilt system (flake or not), runs exactly what was
      // built here: its store path goes into states.txt (docs/protocol.md §3).
      built.push({ assembly, exact: build.kind === 'flake' || Boolean(system.prebuilt), wave: system.wave ?? 0, target: path.basename(build.storePath) });
    }
    if (waves) {
      // The new rollout keeps of the one in progress what must still be
      // awaited or still waits, and the holds of aborts.
      const waveOf = new Map(fleet.systems.map((system) => [system.name, system.wave ?? 0]));
      const awaited = await stillAwaited(chrootDir, rollout, new Set(toBuild.map((system) => system.name)), fleet.config.logSizeLimit);
      const carried = carriedOver(rollout, new Set(selected.map((system) => system.name)), (name) => waveOf.get(name), awaited);
      startWaves(built, toBuild, waves, { carried, held }, publication, print);
    }
    else for (const system of built) publishBuilt(system.assembly, system.exact ? system.target : undefined, publication);
    return result;
  } finally {
    await unlock();
  }
}

/**
 * Whether a system of the rollout in progress must still be awaited by the
 * next one (chroot/rollout.ts, carriedOver): it gets nothing new now
 * (`building`), its chroot still publishes the configuration that rollout
 * gave it, and no success log for exactly that configuration came
 * (status/rollout-decision.ts).
 */
async function stillAwaited(chrootDir: string, rollout: RolloutState | undefined, building: ReadonlySet<string>, logSizeLimit: number): Promise<(name: string) => boolean> {
  if (!rollout || rollout.status === 'done') return () => false;
  const logs = await readRolloutLogs(chrootDir, rollout, logSizeLimit);
  return (name) => {
    const system = rollout.systems[name];
    if (!system || building.has(name) || !isActive(chrootDir, name, system.version, system.digest)) return false;
    return reportOf(rollout, name, logs(name)).outcome !== 'succeeded';
  };
}

function reportHeld(name: string, hold: RolloutHold, result: DeployResult, print: (line: string) => void): void {
  result.held.push(name);
  const what = hold.why === 'reverted' ? 'its previous configuration, which the abort --revert gave back' : 'its current configuration';
  print(`  ${name}: held back by the rollout aborted ${hold.at}: it keeps ${what} until a new configuration is deployed for it (bento deploy --all publishes it now)`);
}

/**
 * Starts a rollout with the built systems: the first wave with a changed
 * system, or with a carried one still awaited, is published, the others
 * staged. `changed` are all the systems that were to be built, so that a
 * first-wave system whose build failed halts the rollout instead of letting
 * the next wave go first.
 */
function startWaves(
  built: readonly RolloutCandidate[],
  changed: readonly FleetSystem[],
  waves: string[][],
  kept: { carried: Readonly<Record<string, RolloutSystem>>; held: Readonly<Record<string, RolloutHold>> },
  publication: Publication,
  print: (line: string) => void,
): void {
  const { result } = publication;
  const { carried, held } = kept;
  const firstWave = Math.min(...changed.map((system) => system.wave ?? 0), ...Object.values(carried).map((system) => system.wave));
  const builtNames = new Set(built.map((candidate) => candidate.assembly.name));
  const failedToBuild = changed.filter((system) => (system.wave ?? 0) === firstWave && !builtNames.has(system.name)).map((system) => system.name);
  const started = startRollout(publication.chrootDir, waves, built, { sftpGroupId: publication.sftpGroupId, now: publication.now(), firstWave, failedToBuild, carried, held });
  result.failed.push(...started.failed, ...started.first.failed);
  result.published.push(...started.first.published.filter((name) => !Object.hasOwn(carried, name)));
  for (const [name, system] of Object.entries(started.state.systems)) {
    if (Object.hasOwn(carried, name)) {
      print(`  ${name}: kept from the rollout in progress (${system.publishedAt ? 'published, its report awaited' : `waits for ${waveLabel(waves, system.wave)}`})`);
      continue;
    }
    if (system.wave === firstWave) continue;
    result.staged.push(name);
    print(`  ${name}: staged for ${waveLabel(waves, system.wave)}; \`bento rollout advance\` publishes it once ${waveLabel(waves, firstWave)} succeeded`);
  }
  print(`rollout started: ${waveLabel(waves, firstWave)} published to ${started.first.published.join(', ') || 'no system'}`);
  if (started.state.status === 'halted') print(`rollout halted at once: ${started.state.halt?.systems.join(', ')} ${started.state.halt?.reason}`);
}

/** What deploy decided for the systems it could assemble. */
interface PublicationPlan {
  /** Their files differ from what is published (or what is published is damaged): build, then publish. */
  toBuild: FleetSystem[];
  /** Published whole, but a deploy was stopped before announcing it: announce only. */
  toAnnounce: Assembly[];
  assemblies: Map<string, Assembly>;
  sftpGroupId: number;
}

/**
 * Checks each system's account, prepares its chroot directories and
 * compares its assembled files with what is published (the manifest, and
 * then the published files themselves). Systems that cannot be prepared
 * are recorded as failed; unchanged ones as unchanged.
 */
async function planPublication(
  selected: readonly FleetSystem[],
  chrootDir: string,
  generatedDir: string,
  result: DeployResult,
  print: (line: string) => void,
  warn: (message: string) => void,
): Promise<PublicationPlan> {
  const accounts = await readAccounts(selected.map((system) => system.name), SFTP_GROUP);
  if (accounts.sftpGroupId === undefined) throw new UserError(`the group ${SFTP_GROUP} does not exist on this server`, SERVER_SETUP_HINT);
  const sftpGroupId = accounts.sftpGroupId;
  const cache = new HashCache();
  const plan: PublicationPlan = { toBuild: [], toAnnounce: [], assemblies: new Map(), sftpGroupId };
  for (const system of selected) {
    const account = accounts.users.get(system.name);
    if (!account) {
      result.failed.push({ name: system.name, reason: `no Unix user ${system.name} on this server: ${SERVER_SETUP_HINT}` });
      continue;
    }
    const notOurs = bentoAccountProblem(account, chrootDir, sftpGroupId);
    if (notOurs) {
      result.failed.push({ name: system.name, reason: notOurs });
      continue;
    }
    if (!attempt(system.name, result, 'cannot prepare its chroot', () => ensureSystemDirs(chrootDir, system.name, account.uid, sftpGroupId))) continue;
    const assembly = assembleSystem(system, generatedDir, cache);
    plan.assemblies.set(system.name, assembly);
    for (const file of assembly.shadowed) {
      warn(`hosts/${system.hostDirName}/${file} is replaced by bento's own ${file} in ${system.name}'s configuration; rename it`);
    }
    const published = readPublished(chrootDir, system.name);
    if (published.manifest !== assembly.manifest) {
      plan.toBuild.push(system);
      continue;
    }
    const damaged = [...publishedContentProblems(chrootDir, assembly), ...(system.prebuilt ? systemCacheProblems(chrootDir, system.name, assembly.digest) : [])];
    if (damaged.length > 0) {
      print(`  ${system.name}: its published files do not match their manifest (${damaged.slice(0, 3).join(', ')}${damaged.length > 3 ? ', …' : ''}): publishing it again`);
      plan.toBuild.push(system);
    } else if (isPublished(published, assembly)) {
      result.unchanged.push(system.name);
    } else {
      plan.toAnnounce.push(assembly);
    }
  }
  return plan;
}

interface Publication {
  chrootDir: string;
  sftpGroupId: number;
  now: () => Date;
  result: DeployResult;
}

/**
 * Publishes a built system: its version directory is written, then
 * published with its store path recorded (chroot/publish.ts, publishStaged).
 * Any failure (a full disk, a read-only directory) is that system's alone.
 */
function publishBuilt(assembly: Assembly, storeBasename: string | undefined, publication: Publication): void {
  const { chrootDir, result } = publication;
  let version = '';
  const staged = attempt(assembly.name, result, 'publication failed, its previous files stay published', () => {
    version = stageVersion(chrootDir, assembly, { sftpGroupId: publication.sftpGroupId, now: publication.now() });
  });
  if (!staged) return;
  if (attempt(assembly.name, result, '', () => publishStaged(chrootDir, assembly, version, storeBasename, publication.now()))) result.published.push(assembly.name);
}

/**
 * Prebuilt systems (docs/protocol.md §11): the signed binary cache of the
 * system built for `assembly` goes into its chroot before the
 * configuration, and caches the chroot no longer keeps are removed (for a
 * system that is no longer prebuilt too: `storePath` undefined). A failure
 * is that system's alone, and nothing of it is published.
 */
async function publishPrebuiltCache(fleet: Fleet, assembly: Assembly, storePath: string | undefined, publication: Publication): Promise<boolean> {
  try {
    await publishSystemCache(
      { name: assembly.name, digest: assembly.digest, storePath },
      { chrootDir: publication.chrootDir, sftpGroupId: publication.sftpGroupId, signingKey: fleet.signingKey, cacheStore: fleet.config.cacheStore },
    );
    return true;
  } catch (error) {
    publication.result.failed.push({ name: assembly.name, reason: `cannot publish its prebuilt system, nothing was published: ${errorText(error)}` });
    return false;
  }
}

/**
 * Systems of CHROOT_DIR no longer in the fleet (chroot/retire.ts): what was
 * published for them goes, their logs stay, and deploy says so. Not when a
 * host directory failed to evaluate: its systems would look departed.
 */
async function reportDepartures(fleet: Fleet, publication: Publication, print: (line: string) => void, warn: (message: string) => void): Promise<void> {
  if (fleet.brokenHosts.length > 0) return;
  // None of this fleet's systems published here yet: a first deploy into a
  // CHROOT_DIR another fleet uses, or a deploy of the wrong fleet (--dir),
  // must not take that fleet's machines away. The next deploy, once this
  // fleet is published here, retires what is not in it.
  if (!fleet.systems.some((system) => readPublished(publication.chrootDir, system.name).manifest !== undefined)) {
    const departed = findDepartures(publication.chrootDir, new Set(fleet.systems.map((system) => system.name)), publication.sftpGroupId).toRetire;
    if (departed.length > 0) {
      warn(`CHROOT_DIR holds systems of which none is in this fleet (${departed.slice(0, 5).join(', ')}${departed.length > 5 ? ', …' : ''}) and none of this fleet's is published there yet: they are left as they are (is this the fleet you meant, --dir?); the next deploy removes those not in this fleet`);
    }
    return;
  }
  const apply = 'apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh as root, which remove its key and lock its account';
  const { retired, failed, stillAuthorized, leftRollout } = await retireDepartures({ ...publication, fleetNames: new Set(fleet.systems.map((system) => system.name)), authorizedKeysFileOf });
  for (const { name, logs, keyFile } of retired) {
    const login = keyFile ? `its key ${keyFile} still lets it log in: ${apply}` : `to be sure it can no longer log in, ${apply}`;
    print(`  ${name}: left the fleet (no system of hosts/ has this name): its published configuration and states.txt line are removed, its logs kept in ${logs}; ${login}`);
  }
  for (const { name, keyFile } of stillAuthorized) warn(`${name} left the fleet, but its key ${keyFile} still lets it log in: ${apply}`);
  for (const name of leftRollout ?? []) print(`  ${name}: no longer part of the rollout in progress (it left the fleet)`);
  publication.result.removed.push(...retired.map((system) => system.name));
  publication.result.failed.push(...failed.map(({ name, reason }) => ({ name, reason: `left the fleet, but what was published for it could not all be removed: ${reason}` })));
}

/**
 * Bounded logs (status/prune-logs.ts): the systems deploy handled keep at
 * most LOG_KEEP logs. A log that cannot be removed is a warning, never a
 * failed deploy.
 */
async function pruneDeployed(chrootDir: string, keep: number, sizeLimit: number, names: string[], print: (line: string) => void, warn: (message: string) => void): Promise<void> {
  const results = await pruneLogs({ chrootDir, keep, names, sizeLimit });
  const removed = results.reduce((sum, system) => sum + system.removed.length, 0);
  if (removed > 0) print(`pruned ${removed} old log${removed === 1 ? '' : 's'} (LOG_KEEP=${keep})`);
  for (const problem of results.flatMap((system) => system.problems)) warn(problem);
}

/** Runs one step for one system; a failure is recorded as that system's (`what: why`, or `why` alone), and false returned. */
function attempt(name: string, result: DeployResult, what: string, step: () => unknown): boolean {
  try {
    step();
    return true;
  } catch (error) {
    result.failed.push({ name, reason: what ? `${what}: ${errorText(error)}` : errorText(error) });
    return false;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const command = defineCommand<SelectionFlags & { all?: boolean }, DeployCommandOptions>({
  define(command) {
    defineSelectionFlags(command).option('--all', 'with ROLLOUT_WAVES: publish every changed system at once, ending the rollout in progress');
  },
  options: ({ flags }, world) => ({ fleetDir: world.fleetDir, ...selectionOptions(flags, world), all: Boolean(flags.all) }),
  run: deployCommand,
});
