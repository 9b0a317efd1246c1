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
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { rebootsFilePath } from '../protocol/reboot-slots.js';
import { handOutSlots } from './reboots.js';
import { buildSystemsShowingProgress } from '../builds/build-systems.js';
import { assembleSystem, HashCache, RenderedFiles, type Assembly } from '../chroot/assemble.js';
import { readFlakeNamesCache, saveFlakeNamesCache } from '../chroot/flake-names-cache.js';
import { planPublication, sameSystemAsPublished, type PublicationPlan } from '../chroot/plan-publication.js';
import { publishSystemCache } from '../chroot/prebuilt-cache.js';
import { lockChrootDir, prepareChrootDir } from '../chroot/chroot-dir.js';
import { announceSystem, checkPublication, discardVersionsAhead, publishStagedBatchTogether, readPublished, recordSystemDir, removeLeftovers, stageWrittenVersions, writeVersionsAhead, type SharedFileChecks, type StagedPublication, type WrittenVersion } from '../chroot/publish.js';
import type { StepsOutcome } from '../util/durable.js';
import { readPublishedStats, savePublishedStats, SETTLE_MS, statTimeNow, type RecordedLogs, type SameSystem, type SystemStats } from '../chroot/published-stats.js';
import { endRollout, forgetInRollout, type RolloutCandidate } from '../rollout/wave-publication.js';
import { planRolloutBuilds, startDeployRollout } from '../rollout/plan-deploy.js';
import { readRolloutState, type RolloutHold, type RolloutState } from '../protocol/rollout-file.js';
import { departuresLeftAlone, retireDepartures } from '../chroot/retire.js';
import { UserError } from '../errors.js';
import { requireOnPath } from '../exec.js';
import { releaseFleet, takeSnapshot, type BrokenHost, type Fleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import { pruneLogs, type PruneOptions } from '../status/prune-logs.js';
import type { NixBuildOptions } from '../nix/build.js';
import { nixErrorHeadline } from '../nix/nix.js';
import { generateOutput } from '../render/generate.js';
import { authorizedKeysFileOf } from '../render/render-fleet.js';
import { reportBrokenHosts, reportSkippedHostDirs } from './generate.js';
import { rootGenerateRecord } from './shared/generate-record-store.js';
import { defineSelectionFlags, selectionOptions, type SelectionFlags } from './shared/flags.js';
import { tempDirsRemoved } from '../util/temp-dir.js';
import { defineCommand, nowOf, printLine, runsAsRoot, tell, warnLine, warnUser, type CommandIO } from './io.js';

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

export async function deployCommand(options: DeployCommandOptions, io: CommandIO): Promise<number> {
  const result = await deploy(options, io);
  await reportBrokenHosts(io, result.brokenHosts);
  const staged = result.staged.length > 0 ? `, ${result.staged.length} waiting for a later wave (bento rollout status)` : '';
  const held = result.held.length > 0 ? `, ${result.held.length} held back by an aborted rollout` : '';
  const removed = result.removed.length > 0 ? `, ${result.removed.length} removed from the fleet` : '';
  await tell(io, `deploy: ${result.published.length} published, ${result.unchanged.length} unchanged, ${result.failed.length} failed${staged}${held}${removed}`);
  // One line per failure (a build's is Nix's error line: its whole explanation was shown with the build lines).
  for (const failure of result.failed) await tell(io, `  ${failure.name}: ${failure.reason}`);
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
  // What is evaluated is what is built and published, whatever is edited
  // meanwhile: one snapshot of hosts/. A fleet whose flakes' names are known
  // (chroot/flake-names-cache.ts) is read from hosts/ itself, and its
  // snapshot taken only when something must be built; if hosts/ then
  // changed, the deploy starts again, with a snapshot from the start.
  // Nix is needed to build, and a deploy that finds the names in its cache runs none before it would build: said first, as when it evaluates.
  requireOnPath('nix');
  let regenerated = 0;
  let skippedReported: string | undefined;
  for (const namesCache of [(config: Config) => readFlakeNamesCache(config.chrootDir), undefined]) {
    const { fleet, outputDir: generatedDir, summary, files, digests } = await generateOutput({
      fleetDir: options.fleetDir,
      jobs: options.jobs,
      snapshot: true,
      namesCache: namesCache ?? (() => new Map()),
      record: (config) => rootGenerateRecord(config),
    });
    regenerated += summary.written.length;
    try {
      if (skippedReported !== fleet.skippedHostDirs.join('/')) await reportSkippedHostDirs(io, fleet);
      skippedReported = fleet.skippedHostDirs.join('/');
      const result = await deployFleet(fleet, { dir: generatedDir, rendered: new RenderedFiles(files, digests) }, regenerated, options, io);
      if (result !== 'hosts changed') {
        await handOutRebootSlots(fleet.config, io);
        return result;
      }
    } finally {
      // The build's staging copies were being removed meanwhile (builds/build-systems.ts).
      await Promise.all([releaseFleet(fleet), tempDirsRemoved()]);
    }
  }
  throw new Error('the fleet loaded with a snapshot changed while it was deployed');
}

/**
 * What `bento reboots` does, after the publication (docs/reboots.md): a
 * machine that reported a reboot since the last run frees its slot for the
 * next one now. Only with REBOOT_MAX, or slots to withdraw: without them a
 * deploy leaves CHROOT_DIR as before. Its failure is a warning: what was
 * published stays, and the timer runs it again.
 */
async function handOutRebootSlots(config: Config, io: CommandIO): Promise<void> {
  if (config.rebootMax === 0 && !existsSync(rebootsFilePath(config.chrootDir))) return;
  try {
    await handOutSlots(config, io);
  } catch (error) {
    await warnUser(io, `reboot slots were not handed out: ${(error as Error).message} (the bento reboots timer tries again)`);
  }
}

/** generated/, and what generate just brought it to hold (its files' digests, taken from what was rendered). */
interface Generated {
  dir: string;
  rendered: RenderedFiles;
}

/** Deploys the loaded fleet; 'hosts changed' when its deferred snapshot is not what was loaded (nothing was published then). */
async function deployFleet(fleet: Fleet, generated: Generated, regenerated: number, options: DeployCommandOptions, io: CommandIO): Promise<DeployResult | 'hosts changed'> {
  const generatedDir = generated.dir;
  const now = () => nowOf(io);
  const print = (line: string) => printLine(io, line);
  const warn = (message: string) => warnLine(io, message);
  const nix: NixBuildOptions = { ...options.nix, evaluateOnly: options.nix.evaluateOnly ?? fleet.config.noLocalBuild };
  if (regenerated > 0) print(`generated/ was out of date: ${regenerated} file${regenerated === 1 ? '' : 's'} rewritten`);
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);

  const { chrootDir } = fleet.config;
  prepareChrootDir(chrootDir);
  const locking = lockChrootDir(chrootDir);
  // Read once, while the lock's helper process starts: the systems'
  // directories, published files and logs/. Any record deploy ever wrote is
  // safe to read: an entry is used only where its lstat still matches.
  const record = readPublishedStats(chrootDir);
  const unlock = await locking;
  let planned: Planned | undefined;
  // Version directories being written during the build, until publishBuilt takes them.
  let ahead: Promise<Map<string, StepsOutcome<WrittenVersion>>> | undefined;
  try {
    removeLeftovers(chrootDir, selected.map((system) => system.name), record);
    if (fleet.flakeNames) saveFlakeNamesCache(chrootDir, fleet.flakeNames);
    const result: DeployResult = { published: [], unchanged: [], staged: [], held: [], failed: [], brokenHosts: fleet.brokenHosts, regenerated, removed: [] };
    const plan = await planPublication(selected, chrootDir, generatedDir, fleet.uids, generated.rendered, record);
    // Without leftovers now (removeLeftovers, under the lock): the next deploy need not list them while they stay so.
    for (const [name, stats] of plan.publishedStats) {
      const dir = recordSystemDir(chrootDir, name, record.get(name)?.dir);
      if (dir) stats.dir = dir;
    }
    const sameSystems = new Map<string, SameSystem>();
    planned = { plan, result, logs: new Map(), sameSystems };
    // Something to build: from a snapshot, which must be what was planned.
    if (plan.toBuild.length > 0 && !(await snapshotPlan(fleet, plan, generated))) return 'hosts changed';
    result.failed.push(...plan.failed);
    result.unchanged.push(...plan.unchanged);
    for (const message of plan.messages) {
      if (message.warning) warn(message.text);
      else print(`  ${message.text}`);
    }
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
    await pruneDeployed({ chrootDir, keep: fleet.config.logKeep, sizeLimit: fleet.config.logSizeLimit, names: [...plan.assemblies.keys()], accounts: plan.accounts, prepared: true,
      recordedLogs: (name) => record.get(name)?.logs,
      onLogsRecorded: (name, logs) => planned?.logs.set(name, logs),
    }, print, warn);
    const waves = options.all ? undefined : fleet.config.rolloutWaves;
    let rollout = readRolloutState(chrootDir);
    if (rollout && !waves) {
      // Every changed system is published now, those the rollout kept waiting included.
      endRollout(chrootDir);
      print(`  the rollout in progress ends: ${options.all ? '--all publishes every changed system' : 'ROLLOUT_WAVES is no longer set'}`);
    }
    if (rollout && waves) {
      // Their files are the published ones again, or build the published system (remembered, plan-publication.ts): what the rollout staged for them is not theirs any more.
      const left = forgetWaiting(chrootDir, rollout, plan.unchanged);
      for (const name of left) print(`  ${name}: no longer waits in the rollout in progress: its system is the one published`);
      if (left.length > 0) rollout = readRolloutState(chrootDir);
    }
    const { held, toBuild, waiting, nothingNew } = planRolloutBuilds(rollout, waves, plan.toBuild, plan.assemblies);
    for (const system of plan.toBuild) if (Object.hasOwn(held, system.name)) reportHeld(system.name, held[system.name] as RolloutHold, result, print);
    if (nothingNew) {
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
    // Without waves, what is published does not depend on the build: the
    // version directories are written while Nix builds (node is idle then),
    // into a staging area of CHROOT_DIR: those of the systems not published
    // after all go with it, their directories untouched. A prebuilt
    // system's, and rollouts, keep their order: staged after the build.
    ahead = waves ? undefined : writeVersionsAhead(chrootDir, toBuild.filter((system) => !system.prebuilt).map((system) => ({ assembly: plan.assemblies.get(system.name) as Assembly, options: { sftpGroupId: plan.sftpGroupId, now: now() } })));
    const builds = await buildSystemsShowingProgress(toBuild, { generatedDir, nix, jobs: options.jobs, print, progress: io.progress, clientFiles: (file) => generated.rendered.lookup(file) });
    const built: RolloutCandidate[] = [];
    for (const build of builds) {
      if (!build.ok || !build.storePath) {
        result.failed.push({ name: build.name, reason: `build failed: ${nixErrorHeadline(build.error ?? '')}` });
        continue;
      }
      const system = toBuild.find((candidate) => candidate.name === build.name) as FleetSystem;
      const assembly = plan.assemblies.get(build.name) as Assembly;
      // Its flake's files changed, for another system of the flake: its own system did not (docs/protocol.md §4).
      const same = sameSystemAsPublished(chrootDir, system, assembly, path.basename(build.storePath));
      if (same) {
        sameSystems.set(build.name, same);
        result.unchanged.push(build.name);
        print(`  ${build.name}: no changes: its system is still ${path.basename(build.storePath)} (what changed in hosts/${system.hostDirName} goes into other systems)`);
        continue;
      }
      if (!(await publishPrebuiltCache(fleet, assembly, system.prebuilt ? build.storePath : undefined, publication))) continue;
      // A flake, or a prebuilt system (flake or not), runs exactly what was
      // built here: its store path goes into states.txt (docs/protocol.md §3).
      built.push({ assembly, exact: build.kind === 'flake' || Boolean(system.prebuilt), wave: system.wave ?? 0, target: path.basename(build.storePath) });
    }
    const changed = toBuild.filter((system) => !sameSystems.has(system.name));
    if (waves && changed.length === 0) {
      // Nothing new after all: the rollout in progress stays, without what it staged for these (their system is the published one).
      for (const name of forgetWaiting(chrootDir, rollout, [...sameSystems.keys()])) print(`  ${name}: no longer waits in the rollout in progress: its system is the one published`);
      return result;
    }
    if (waves) {
      const started = await startDeployRollout(built, changed, waves, { rollout, held, fleet: fleet.systems, selected, logSizeLimit: fleet.config.logSizeLimit }, publication);
      result.failed.push(...started.failed);
      result.published.push(...started.published);
      result.staged.push(...started.staged);
      for (const line of started.lines) print(line);
    }
    else {
      const written = ahead ? keepWritten(await ahead, new Set(built.map(({ assembly }) => assembly.name))) : new Map<string, WrittenVersion>();
      try {
        await publishBuilt(built, publication, written);
      } finally {
        if (ahead) discardVersionsAhead(chrootDir);
        ahead = undefined;
      }
    }
    return result;
  } finally {
    // Nothing is written into the chroot once the lock is released: what was written ahead and not taken goes.
    if (ahead) {
      await ahead;
      discardVersionsAhead(chrootDir);
    }
    if (planned) savePublished(chrootDir, planned, new Set(fleet.systems.map((system) => system.name)));
    await unlock();
  }
}

/** What a deploy planned and did, for its record (savePublished). */
interface Planned {
  plan: PublicationPlan;
  result: DeployResult;
  logs: Map<string, RecordedLogs>;
  /** Systems built and found to be what their chroots publish (plan-publication.ts, sameSystemAsPublished). */
  sameSystems: Map<string, SameSystem>;
}

/**
 * After a deploy that published something: the record of the published
 * files (chroot/published-stats.ts) with what was just published, each
 * file read once more to date its lstat, and what the plan found whole;
 * for the fleet's systems only, and the systems built and found to be what
 * is published (not built again). A deploy that did neither writes
 * nothing. Best effort: without a record, the next deploy hashes.
 */
function savePublished(chrootDir: string, planned: Planned, fleetNames: ReadonlySet<string>): void {
  const { plan, result } = planned;
  if (result.published.length === 0 && planned.sameSystems.size === 0) return;
  try {
    // What was just written is racy (published-stats.ts) until the margin has passed: recorded then, the next deploys trust it.
    settle();
    const entries = new Map<string, SystemStats>();
    for (const [name, stats] of readPublishedStats(chrootDir)) if (fleetNames.has(name)) entries.set(name, stats);
    for (const [name, stats] of plan.publishedStats) entries.set(name, stats);
    const sharedChecks: SharedFileChecks = new Map();
    for (const name of result.published) {
      entries.delete(name);
      const assembly = plan.assemblies.get(name);
      const checked = assembly ? checkPublication(chrootDir, assembly, undefined, sharedChecks) : undefined;
      if (!checked?.stats) continue;
      const dir = recordSystemDir(chrootDir, name, undefined, { list: true });
      if (dir) checked.stats.dir = dir;
      entries.set(name, checked.stats);
    }
    // A publication leaves logs/ alone: what the prune found there stays true while its lstat does.
    for (const [name, logs] of planned.logs) {
      const stats = entries.get(name);
      if (stats) stats.logs = logs;
    }
    // Built and found to be what is published: remembered, not built again (plan-publication.ts).
    for (const [name, same] of planned.sameSystems) {
      const stats = entries.get(name) ?? { statTimeNs: String(statTimeNow()), files: {} };
      stats.sameSystem = same;
      entries.set(name, stats);
    }
    savePublishedStats(chrootDir, entries);
  } catch {
    // The next deploy hashes what it cannot trust.
  }
}

/** Waits out published-stats.ts's margin (SETTLE_MS), the deploy lock held: nothing of this deploy is racy after it. */
function settle(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS);
}

/**
 * Takes the snapshot of the host directories of what the plan builds, when
 * the fleet deferred it (fleet/fleet.ts, takeSnapshot), and assembles those
 * systems again from it: what is built and published is read from the
 * copy. False when the copy is not what was planned.
 */
async function snapshotPlan(fleet: Fleet, plan: PublicationPlan, generated: Generated): Promise<boolean> {
  if (!fleet.deferredSnapshot) return true;
  if (!(await takeSnapshot(fleet, plan.toBuild))) return false;
  const cache = new HashCache();
  for (const system of plan.toBuild) {
    const assembly = assembleSystem(system, generated.dir, cache, generated.rendered);
    if (assembly.manifest !== plan.assemblies.get(system.name)?.manifest) return false;
    plan.assemblies.set(system.name, assembly);
  }
  return true;
}

/**
 * Takes out of the rollout in progress the systems of `names` that wait
 * there for a later wave (staged, not published); returns them. The ones
 * published by it stay: their report is still awaited.
 */
function forgetWaiting(chrootDir: string, rollout: RolloutState | undefined, names: readonly string[]): string[] {
  const waiting = names.filter((name) => rollout?.systems[name] !== undefined && rollout.systems[name]?.publishedAt === undefined);
  return waiting.length > 0 ? forgetInRollout(chrootDir, waiting) : [];
}

function reportHeld(name: string, hold: RolloutHold, result: DeployResult, print: (line: string) => void): void {
  result.held.push(name);
  const what = hold.why === 'reverted' ? 'its previous configuration, which the abort --revert gave back' : 'its current configuration';
  print(`  ${name}: held back by the rollout aborted ${hold.at}: it keeps ${what} until a new configuration is deployed for it (bento deploy --all publishes it now)`);
}

interface Publication {
  chrootDir: string;
  sftpGroupId: number;
  now: () => Date;
  result: DeployResult;
}

/**
 * Publishes the built systems: each one's version directory is written
 * (or, written `ahead` during the build, renamed into place), then they
 * are published with their store paths recorded, states.txt
 * written once for all (chroot/publish.ts, publishStagedBatch), each step
 * of all of them flushed to the disk together (stageWrittenVersions,
 * publishStagedBatchTogether). Any failure
 * (a full disk, a read-only directory) is that system's alone.
 */
async function publishBuilt(built: readonly RolloutCandidate[], publication: Publication, ahead: ReadonlyMap<string, WrittenVersion>): Promise<void> {
  const { chrootDir, result } = publication;
  const staged = await stageWrittenVersions(
    chrootDir,
    built.map(({ assembly }) => ({ assembly, options: { sftpGroupId: publication.sftpGroupId, now: publication.now() } })),
    ahead,
  );
  const batch: StagedPublication[] = [];
  built.forEach(({ assembly, exact, target }, index) => {
    const version = staged[index] as StepsOutcome<string>;
    if (version.ok) batch.push({ system: assembly, versionName: version.value, storeBasename: exact ? target : undefined });
    else result.failed.push({ name: assembly.name, reason: `publication failed, its previous files stay published: ${errorText(version.error)}` });
  });
  const outcome = await publishStagedBatchTogether(chrootDir, batch, publication.now());
  result.published.push(...outcome.published);
  result.failed.push(...outcome.failed);
}

/**
 * The version directories written ahead of the build (chroot/publish.ts,
 * writeVersionsAhead) of the systems in `keep`; the others stay in the
 * staging area, removed with it (discardVersionsAhead): their systems'
 * directories are never touched. One that could not be written ahead is
 * left out: staged whole after the build, as without writing ahead (its
 * failure, if it fails again, is then that system's).
 */
function keepWritten(ahead: ReadonlyMap<string, StepsOutcome<WrittenVersion>>, keep: ReadonlySet<string>): Map<string, WrittenVersion> {
  const kept = new Map<string, WrittenVersion>();
  for (const [name, outcome] of ahead) if (keep.has(name) && outcome.ok) kept.set(name, outcome.value);
  return kept;
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
  // A skipped directory of hosts/ (no flake.nix, no configuration.nix) named
  // like a system published here is more likely that machine with its file
  // missing than a machine taken away: it stays, and deploy says so.
  const keptAsSkipped = fleet.skippedHostDirs.filter((name) => readPublished(publication.chrootDir, name).manifest !== undefined);
  for (const name of keptAsSkipped) {
    warn(`hosts/${name} has neither flake.nix nor configuration.nix, but ${name} is published in CHROOT_DIR: what was published for it is left as it is; put its configuration back, or remove hosts/${name} to remove the machine`);
  }
  const fleetNames = [...fleet.systems.map((system) => system.name), ...keptAsSkipped];
  const leftAlone = departuresLeftAlone(publication.chrootDir, fleetNames, publication.sftpGroupId);
  if (leftAlone) {
    if (leftAlone.length > 0) {
      warn(`CHROOT_DIR holds systems of which none is in this fleet (${leftAlone.slice(0, 5).join(', ')}${leftAlone.length > 5 ? ', …' : ''}) and none of this fleet's is published there yet: they are left as they are (is this the fleet you meant, --dir?); the next deploy removes those not in this fleet`);
    }
    return;
  }
  const apply = 'apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh as root, which remove its key and lock its account';
  const { retired, failed, stillAuthorized, departed } = await retireDepartures({ ...publication, fleetNames: new Set(fleetNames), authorizedKeysFileOf });
  // Nothing of them is published any more: the rollout no longer counts them.
  // (A damaged rollout.json is thrown: deploy would refuse it next anyway.)
  const leftRollout = forgetInRollout(publication.chrootDir, departed);
  for (const { name, logs, keyFile } of retired) {
    const login = keyFile ? `its key ${keyFile} still lets it log in: ${apply}` : `to be sure it can no longer log in, ${apply}`;
    print(`  ${name}: left the fleet (no system of hosts/ has this name): its published configuration and states.txt line are removed, its logs kept in ${logs}; ${login}`);
  }
  for (const { name, keyFile } of stillAuthorized) warn(`${name} left the fleet, but its key ${keyFile} still lets it log in: ${apply}`);
  for (const name of leftRollout) print(`  ${name}: no longer part of the rollout in progress (it left the fleet)`);
  publication.result.removed.push(...retired.map((system) => system.name));
  publication.result.failed.push(...failed.map(({ name, reason }) => ({ name, reason: `left the fleet, but what was published for it could not all be removed: ${reason}` })));
}

/**
 * Bounded logs (status/prune-logs.ts): the systems deploy handled keep at
 * most LOG_KEEP logs, their accounts as the plan read them (getent once a
 * deploy). A log that cannot be removed is a warning, never a failed deploy.
 */
async function pruneDeployed(options: PruneOptions & { keep: number }, print: (line: string) => void, warn: (message: string) => void): Promise<void> {
  const { keep } = options;
  const results = await pruneLogs(options);
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
