/**
 * The fleet model: config.sh plus every system found under hosts/, with its
 * kind and key. Loading validates names and keys once; everything downstream
 * works from this typed model.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import { parseRebootWindow, type RebootWindow } from '../config/reboot-window.js';
import { MissingToolError, UserError, UserErrors } from '../errors.js';
import { evalFlakeSystemNames, evalFlakesSystemNames, type FlakeNames } from '../nix/flake-names.js';
import { FLAKES_PER_EVALUATOR } from '../nix/wrapper-flake.js';
import { loadSigningKey, signingKeyPlacementProblem, type SigningKey } from '../nix/signing-key.js';
import { shareWithEvaluator } from '../nix/unprivileged.js';
import { readFleetFile } from './fleet-file.js';
import { copyHostTree, HashCache, hostTreeFingerprint, listHashedHostFiles, listHostFiles, missingHostsError, outsideBoundaryProblem, type HashedHostFile } from './host-tree.js';
import { parsePublicKey, type PublicKey } from './keys.js';
import { assignWaves } from './waves.js';
import { hostDirNameProblem, systemNameProblem } from '../protocol/names.js';
import { mapLimit, splitInto } from '../util/concurrency.js';
import { sha256 } from '../util/hash.js';
import { byText } from '../util/text.js';
import { makeTempDir } from '../util/temp-dir.js';

export type SystemKind = 'flake' | 'non-flake';

export interface FleetSystem {
  name: string;
  kind: SystemKind;
  /** Absolute path of its directory under hosts/. */
  hostDir: string;
  /** That directory's name (for messages: `hosts/<hostDirName>`). */
  hostDirName: string;
  /**
   * Where its files are read from: the fleet's snapshot of the host
   * directory when it was loaded with one (what is evaluated is then what is
   * built and published, whatever is edited meanwhile), else hostDir.
   */
  filesDir: string;
  /** Its rollout wave (index into ROLLOUT_WAVES), when the fleet has waves. */
  wave?: number;
  /** Its SSH public key from keys/<name>.pub, when there is one. */
  key?: PublicKey;
  /**
   * Prebuilt (PREBUILT=1 in config.sh, or a PREBUILT flag file in its host
   * directory): the machine downloads the system built here, signed, and
   * never evaluates Nix.
   */
  prebuilt?: boolean;
  /**
   * Its host directory's files as they were listed and hashed when the fleet
   * was loaded (with `namesCache`): what is assembled and compared with what
   * is published, without reading the directory again.
   */
  files?: readonly HashedHostFile[];
  /**
   * When its machine may reboot into a new kernel: its host directory's
   * REBOOT_WINDOW file, else config.sh's REBOOT_WINDOW; absent: any time.
   */
  rebootWindow?: RebootWindow;
}

/** A host directory that could not be read (a flake that fails to evaluate). */
export interface BrokenHost {
  hostDirName: string;
  /** Where the problem is, e.g. `hosts/laptops/flake.nix`. */
  place: string;
  message: string;
}

export interface Fleet {
  root: string;
  config: Config;
  systems: FleetSystem[];
  /** Host directories left out because they failed; the rest of the fleet is still usable. */
  brokenHosts: BrokenHost[];
  /**
   * Directories of hosts/ with neither flake.nix nor configuration.nix (a
   * directory of files the machines share, such as hosts/common): no
   * machine, skipped (skippedHostDirMessage says so), sorted.
   */
  skippedHostDirs: string[];
  warnings: string[];
  /** The snapshot of hosts/ (with `snapshot: true`): remove it with releaseFleet. */
  snapshotDir?: string;
  /** The server's signing key, when some system is prebuilt (attachSigningKey). */
  signingKey?: SigningKey;
  /** The uid of each system's SFTP account, as uids.txt records it (recordUids, by the generate stage). */
  uids?: ReadonlyMap<string, number>;
  /**
   * With `namesCache`: the system names of every flake that evaluated, by
   * flakeNamesKey (what the cache should hold now).
   */
  flakeNames?: Map<string, string[]>;
  /**
   * Loaded with `snapshot` and `namesCache`, every flake's names known: no
   * snapshot was taken yet, and the systems' files are read from hosts/.
   * takeSnapshot copies the host directories of what must be built, and
   * checks the copies are what was loaded: `fingerprints` (by host
   * directory name).
   */
  deferredSnapshot?: { fingerprints: Map<string, string> };
}

export interface LoadFleetOptions {
  /** How many flakes to evaluate at once. */
  jobs?: number;
  /**
   * Keep a snapshot of every host directory (symlinks inside the fleet
   * followed), which the systems' filesDir point into, until releaseFleet:
   * deploy and build evaluate, build and publish that one copy.
   */
  snapshot?: boolean;
  /**
   * System names already known, by flakeNamesKey (deploy's cache of them,
   * chroot/flake-names-cache.ts). Every host directory is then listed and
   * hashed from hosts/; when every flake's names are known, no copy is made
   * and Nix is not run (a snapshot asked for is deferred: takeSnapshot).
   */
  namesCache?: (config: Config) => ReadonlyMap<string, readonly string[]>;
}

/**
 * The key of a flake's system names: config.sh's values and the flake's
 * content (hostTreeFingerprint), so any change of either asks Nix again.
 */
export function flakeNamesKey(config: Config, fingerprint: string): string {
  return sha256(`${JSON.stringify(config)}\n${fingerprint}`);
}

/** Removes the fleet's snapshot, if it has one. */
export async function releaseFleet(fleet: Pick<Fleet, 'snapshotDir'>): Promise<void> {
  if (fleet.snapshotDir) await rm(fleet.snapshotDir, { recursive: true, force: true });
}

/**
 * Loads the server's signing key into the fleet when some system is
 * prebuilt, making it on first use. It may not live in the fleet, in
 * `outputDir` (generated/) or in CHROOT_DIR: all of those are committed or
 * published.
 */
export async function attachSigningKey(fleet: Fleet, outputDir: string): Promise<void> {
  if (!fleet.systems.some((system) => system.prebuilt)) return;
  const secretFile = fleet.config.signingKey;
  const problem = signingKeyPlacementProblem(secretFile, [
    { label: 'the fleet directory', dir: fleet.root },
    { label: 'the output directory', dir: outputDir },
    { label: 'CHROOT_DIR', dir: fleet.config.chrootDir },
  ]);
  if (problem) throw new UserError(problem);
  fleet.signingKey = await loadSigningKey(secretFile);
}

interface HostDir {
  name: string;
  dir: string;
  kind: SystemKind;
}

/**
 * Loads config.sh, hosts/ and keys/ of the fleet in `root`. The tree is read
 * with synchronous calls: thousands of tiny reads are much faster that way
 * than through the thread pool, and nothing else runs meanwhile.
 */
export async function loadFleet(root: string, options: LoadFleetOptions = {}): Promise<Fleet> {
  const { config, warnings } = await loadConfig(root);
  const problems: string[] = [];
  const skippedHostDirs: string[] = [];
  const hostDirs = listHostDirs(root, problems, skippedHostDirs);
  if (problems.length > 0) throw new UserErrors(problems);
  const loaded = { root, config, warnings, hostDirs, skippedHostDirs };

  if (options.namesCache) {
    const known = loadKnownFleet(loaded, options.namesCache(config), Boolean(options.snapshot));
    if (known) return known;
  }
  const brokenHosts: BrokenHost[] = [];
  const snapshotDir = makeTempDir('snapshot');
  try {
    // Flakes are evaluated from here by an unprivileged user (nix/unprivileged.ts).
    await shareWithEvaluator(snapshotDir);
    const copies = copyHostDirs(root, hostDirs, snapshotDir, Boolean(options.snapshot), brokenHosts);
    const flakes = hostDirs.filter((host) => host.kind === 'flake' && copies.has(host.name));
    const flakeNames = await evaluateFlakes(flakes, copies, options.jobs ?? os.cpus().length, brokenHosts);
    const namesByHost = new Map(flakes.map((host, index) => [host, flakeNames[index]?.names ?? []]));
    const namesOf = (host: HostDir) => namesByHost.get(host) ?? [];
    // With the names cache, every usable host directory's copy is listed and hashed: the key of its names, and what is assembled.
    const listed = new Map<string, HashedHostFile[]>();
    if (options.namesCache) {
      const cache = new HashCache();
      for (const [name, copy] of copies) listed.set(name, listHashedHostFiles(copy, { where: `hosts/${name}`, boundary: copy === path.join(root, 'hosts', name) ? root : copy }, cache));
    }
    const fleet = modelFleet(loaded, brokenHosts, namesOf, (host) => (copies.has(host.name) ? { filesDir: options.snapshot ? (copies.get(host.name) as string) : host.dir, files: options.snapshot ? listed.get(host.name) : undefined } : undefined));
    if (options.snapshot) fleet.snapshotDir = snapshotDir;
    if (options.namesCache) {
      fleet.flakeNames = new Map();
      for (const [index, host] of flakes.entries()) {
        if (brokenHosts.some((broken) => broken.hostDirName === host.name)) continue;
        const evaluated = flakeNames[index] as FlakeNames;
        // Names that hang on an input no flake.lock pins may change with nothing here changing: asked of Nix every time.
        if (!evaluated.lockPinned) continue;
        fleet.flakeNames.set(flakeNamesKey(config, hostTreeFingerprint(listed.get(host.name) as HashedHostFile[])), evaluated.names);
      }
    }
    return fleet;
  } catch (error) {
    await rm(snapshotDir, { recursive: true, force: true });
    throw error;
  } finally {
    if (!options.snapshot) await rm(snapshotDir, { recursive: true, force: true });
  }
}

interface LoadedTree {
  root: string;
  config: Config;
  warnings: string[];
  hostDirs: HostDir[];
  skippedHostDirs: string[];
}

/**
 * The fleet read from hosts/ itself when the system names of every flake
 * are known (`known`, by flakeNamesKey): each host directory listed and
 * hashed, nothing copied, Nix not run. Undefined when some flake's names
 * are not known: the caller evaluates. With `snapshot`, the snapshot is
 * deferred (takeSnapshot).
 */
function loadKnownFleet(loaded: LoadedTree, known: ReadonlyMap<string, readonly string[]>, snapshot: boolean): Fleet | undefined {
  const { root, config, hostDirs } = loaded;
  const brokenHosts: BrokenHost[] = [];
  const cache = new HashCache();
  const listed = new Map<string, HashedHostFile[]>();
  const fingerprints = new Map<string, string>();
  const flakeNames = new Map<string, string[]>();
  const namesByHost = new Map<string, string[]>();
  for (const host of hostDirs) {
    let files: HashedHostFile[] | undefined;
    try {
      files = hostDirFiles(host, brokenHosts, () => listHashedHostFiles(host.dir, { where: `hosts/${host.name}`, boundary: root }, cache));
    } catch (error) {
      // A file gone or changed while it was read: the snapshot's copy says what it is.
      if ((error as NodeJS.ErrnoException).code !== undefined) return undefined;
      throw error;
    }
    if (!files) continue;
    listed.set(host.name, files);
    const fingerprint = hostTreeFingerprint(files);
    fingerprints.set(host.name, fingerprint);
    if (host.kind !== 'flake') continue;
    const key = flakeNamesKey(config, fingerprint);
    const names = known.get(key);
    if (!names) return undefined;
    flakeNames.set(key, [...names]);
    namesByHost.set(host.name, [...names]);
  }
  const fleet = modelFleet(loaded, brokenHosts, (host) => namesByHost.get(host.name) ?? [], (host) => (listed.has(host.name) ? { filesDir: host.dir, files: listed.get(host.name) } : undefined));
  fleet.flakeNames = flakeNames;
  if (snapshot) fleet.deferredSnapshot = { fingerprints };
  return fleet;
}

/**
 * The systems of the usable host directories (`filesOf` undefined: left
 * out), their names checked, with their kind, flags, keys and waves.
 */
function modelFleet(
  loaded: LoadedTree,
  brokenHosts: BrokenHost[],
  namesOf: (host: HostDir) => readonly string[],
  filesOf: (host: HostDir) => { filesDir: string; files?: readonly HashedHostFile[] } | undefined,
): Fleet {
  const { root, config, warnings, hostDirs, skippedHostDirs } = loaded;
  const problems: string[] = [];
  const found: { name: string; place: string; host: HostDir; where: { filesDir: string; files?: readonly HashedHostFile[] } }[] = [];
  for (const host of hostDirs) {
    const where = filesOf(host);
    if (!where) continue;
    if (host.kind === 'non-flake') {
      found.push({ name: host.name, place: `hosts/${host.name}`, host, where });
    } else {
      const names = namesOf(host);
      if (names.length === 0 && !brokenHosts.some((broken) => broken.hostDirName === host.name)) {
        warnings.push(`hosts/${host.name}/flake.nix defines no nixosConfigurations`);
      }
      for (const name of names) found.push({ name, place: `hosts/${host.name}/flake.nix: nixosConfigurations.${name}`, host, where });
    }
  }

  const places = new Map<string, string[]>();
  for (const { name, place } of found) {
    const problem = systemNameProblem(name);
    if (problem) problems.push(`${place}: ${problem}`);
    places.set(name, [...(places.get(name) ?? []), place]);
  }
  for (const [name, where] of places) {
    if (where.length > 1) problems.push(`system name ${JSON.stringify(name)} is defined more than once: ${where.join(' and ')}`);
  }
  if (problems.length > 0) throw new UserErrors(problems);

  const systems: FleetSystem[] = found
    .map(({ name, host, where }) => ({ name, kind: host.kind, hostDir: host.dir, hostDirName: host.name, filesDir: where.filesDir, ...(where.files ? { files: where.files } : {}) }))
    .sort(byText((system) => system.name));
  markPrebuilt(config, systems, problems);
  attachRebootWindows(root, config, systems, problems);
  attachKeys(root, systems, problems, warnings, unseenSystems(hostDirs, brokenHosts));
  if (config.rolloutWaves) attachWaves(systems, config.rolloutWaves, problems);
  if (problems.length > 0) throw new UserErrors(problems);
  brokenHosts.sort(byText((broken) => broken.place));
  return { root, config, systems, brokenHosts, skippedHostDirs, warnings };
}

/**
 * Takes the snapshot a fleet loaded from hosts/ deferred
 * (Fleet.deferredSnapshot): the host directories of `systems` are copied,
 * and their systems' files are then read from the copies. False when a
 * copy is not what was loaded (the directory changed since, or can no
 * longer be copied): the caller loads the fleet again, with a snapshot
 * from the start. Nothing to do for a fleet with a snapshot.
 */
export async function takeSnapshot(fleet: Fleet, systems: readonly Pick<FleetSystem, 'hostDirName'>[]): Promise<boolean> {
  const deferred = fleet.deferredSnapshot;
  if (!deferred) return true;
  fleet.snapshotDir ??= makeTempDir('snapshot');
  await shareWithEvaluator(fleet.snapshotDir);
  const cache = new HashCache();
  for (const hostDirName of new Set(systems.map((system) => system.hostDirName))) {
    const copy = path.join(fleet.snapshotDir, hostDirName);
    let files: HashedHostFile[];
    try {
      copyHostTree(path.join(fleet.root, 'hosts', hostDirName), copy, { where: `hosts/${hostDirName}`, boundary: fleet.root });
      files = listHashedHostFiles(copy, { where: `hosts/${hostDirName}`, boundary: copy }, cache);
    } catch (error) {
      if (error instanceof UserError) return false;
      throw error;
    }
    if (hostTreeFingerprint(files) !== deferred.fingerprints.get(hostDirName)) return false;
    for (const system of fleet.systems) {
      if (system.hostDirName !== hostDirName) continue;
      system.filesDir = copy;
      system.files = files;
    }
    deferred.fingerprints.delete(hostDirName);
  }
  return true;
}

/**
 * The files of one host directory (`list`), or undefined when it cannot be
 * published (a link out of the fleet, a broken link, a file not everyone
 * may read…): it is then broken, its systems are left out, the others go on.
 */
function hostDirFiles<T>(host: HostDir, brokenHosts: BrokenHost[], list: () => T): T | undefined {
  try {
    return list();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    const place = `hosts/${host.name}`;
    // Messages name the path from the fleet; the report names the host directory first.
    const message = error.message.startsWith(`${place} `) ? `the host directory${error.message.slice(place.length)}` : error.message.replace(`${place}/`, '');
    brokenHosts.push({ hostDirName: host.name, place, message });
    return undefined;
  }
}

/**
 * Copies the host directories into `snapshotDir` (all of them, or with
 * `all` false only the flakes, which Nix evaluates from the copy), and
 * checks the others' files the same way. A host directory whose files
 * cannot be published is broken (hostDirFiles). Returns where each usable
 * host directory's files are now.
 */
function copyHostDirs(root: string, hostDirs: readonly HostDir[], snapshotDir: string, all: boolean, brokenHosts: BrokenHost[]): Map<string, string> {
  const copies = new Map<string, string>();
  for (const host of hostDirs) {
    const options = { where: `hosts/${host.name}`, boundary: root };
    const copy = all || host.kind === 'flake' ? path.join(snapshotDir, host.name) : host.dir;
    const usable = hostDirFiles(host, brokenHosts, () => (copy === host.dir ? listHostFiles(host.dir, options) : copyHostTree(host.dir, copy, options)));
    if (usable) copies.set(host.name, copy);
  }
  return copies;
}

/**
 * The line that says a directory of hosts/ was skipped, and how the machines
 * use such a directory: the snapshot of a host directory (what is built and
 * what its machine receives) holds that directory alone, so a machine
 * reaches shared files through a link in its own directory, followed when
 * copying, never through `../` (docs/protocol.md §4).
 */
export function skippedHostDirMessage(name: string): string {
  return `hosts/${name} has neither flake.nix nor configuration.nix: skipped, it is no machine (a machine uses shared files through a link in its own directory, like utils: hosts/<machine>/${name} -> ../${name}; see the README, "Files several machines share")`;
}

function listHostDirs(root: string, problems: string[], skipped: string[]): HostDir[] {
  const hostsDir = path.join(root, 'hosts');
  let entries: string[];
  try {
    const outside = outsideBoundaryProblem(hostsDir, root, 'hosts');
    if (outside) throw new UserError(outside);
    entries = readdirSync(hostsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missingHostsError(root);
    throw error;
  }
  const hosts: HostDir[] = [];
  for (const name of entries.sort()) {
    if (name.startsWith('.')) continue;
    const dir = path.join(hostsDir, name);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
    const nameProblem = hostDirNameProblem(name);
    if (nameProblem) {
      problems.push(`hosts/${JSON.stringify(name).slice(1, -1)}: ${nameProblem}`);
      continue;
    }
    if (isFile(path.join(dir, 'flake.nix'))) hosts.push({ name, dir, kind: 'flake' });
    else if (isFile(path.join(dir, 'configuration.nix'))) hosts.push({ name, dir, kind: 'non-flake' });
    else skipped.push(name);
  }
  return hosts;
}

/**
 * The system names of each flake, asked of Nix about their copies (what the
 * machines receive). All flakes go to one Nix process, or many flakes to up
 * to `jobs` side by side (nix/wrapper-flake.ts); if one fails, each of its
 * flakes is asked on its own so that a broken flake is reported and the
 * others still count.
 */
async function evaluateFlakes(flakes: HostDir[], copies: ReadonlyMap<string, string>, jobs: number, brokenHosts: BrokenHost[]): Promise<FlakeNames[]> {
  const dirs = flakes.map((host) => copies.get(host.name) as string);
  const names = new Array<FlakeNames>(flakes.length);
  const alone: number[] = [];
  await Promise.all(
    splitInto(
      flakes.map((_, index) => index),
      jobs,
      FLAKES_PER_EVALUATOR,
    ).map(async (share) => {
      try {
        (await evalFlakesSystemNames(share.map((index) => dirs[index] as string))).forEach((each, position) => (names[share[position] as number] = each));
      } catch (error) {
        if (error instanceof MissingToolError) throw error;
        alone.push(...share);
      }
    }),
  );
  await mapLimit(
    alone.sort((a, b) => a - b),
    jobs,
    async (index) => {
      const host = flakes[index] as HostDir;
      try {
        names[index] = await evalFlakeSystemNames(dirs[index] as string);
      } catch (error) {
        if (error instanceof MissingToolError) throw error;
        brokenHosts.push({ hostDirName: host.name, place: `hosts/${host.name}/flake.nix`, message: (error as Error).message });
        names[index] = { names: [], lockPinned: false };
      }
    },
  );
  return names;
}

/** Flag files of a host directory (docs/protocol.md §11). */
const PREBUILT_FLAG = 'PREBUILT';
const SELF_UPDATE_FLAG = 'SELF_UPDATE';

/**
 * Marks the prebuilt systems: all with PREBUILT=1, else those whose host
 * directory holds the PREBUILT flag file. A prebuilt system needs the
 * server to build it (not NOLOCALBUILD) and never evaluates on the machine
 * (so no SELF_UPDATE, which updates the inputs and rebuilds there).
 */
function markPrebuilt(config: Config, systems: FleetSystem[], problems: string[]): void {
  const reported = new Set<string>();
  for (const system of systems) {
    const flag = hasFile(system, PREBUILT_FLAG);
    system.prebuilt = config.prebuilt || flag;
    if (!system.prebuilt || reported.has(system.hostDirName)) continue;
    const why = flag ? `hosts/${system.hostDirName}/${PREBUILT_FLAG}` : 'PREBUILT=1 (config.sh)';
    if (flag && config.noLocalBuild) {
      reported.add(system.hostDirName);
      problems.push(`${why}: a prebuilt system must be built on this server, but NOLOCALBUILD=1 (config.sh) only evaluates: there would be nothing to hand over; remove the flag or NOLOCALBUILD`);
    } else if (hasFile(system, SELF_UPDATE_FLAG)) {
      reported.add(system.hostDirName);
      problems.push(`hosts/${system.hostDirName}: ${SELF_UPDATE_FLAG} and ${why} cannot be combined: a prebuilt machine never evaluates Nix, and SELF_UPDATE updates the inputs and rebuilds on the machine`);
    }
  }
}

/** Whether the system's configuration holds the file `relative` (its listed files when the fleet has them). */
function hasFile(system: FleetSystem, relative: string): boolean {
  return system.files ? system.files.some((file) => file.relative === relative) : isFile(path.join(system.filesDir, relative));
}

/** The file of a host directory that sets its machines' REBOOT_WINDOW (docs/reboots.md). */
export const REBOOT_WINDOW_FILE = 'REBOOT_WINDOW';

/**
 * Each system's reboot window: its host directory's REBOOT_WINDOW file
 * (the same text as config.sh's key) wins over config.sh's. A file that is
 * not a window is a problem named after the file, once per directory.
 */
function attachRebootWindows(root: string, config: Config, systems: FleetSystem[], problems: string[]): void {
  const byDir = new Map<string, RebootWindow | undefined | null>();
  const realRoot = realpathSync(root);
  for (const system of systems) {
    if (!byDir.has(system.hostDirName)) {
      const file = path.join(system.filesDir, REBOOT_WINDOW_FILE);
      let window: RebootWindow | undefined | null;
      if (hasFile(system, REBOOT_WINDOW_FILE)) {
        const place = `hosts/${system.hostDirName}/${REBOOT_WINDOW_FILE}`;
        try {
          // Listed as a regular file, but read from hosts/ itself when the fleet is (loadKnownFleet): its writers may have swapped it since.
          // Confined to the fleet (a link of a writer's to a file of root's is not read), or to bento's own snapshot of the host.
          window = parseRebootWindow(readFleetFile(file, place, 'the reboot window of its machines', system.filesDir === system.hostDir ? realRoot : realpathSync(system.filesDir)));
        } catch (error) {
          problems.push(error instanceof UserError ? error.message : `${place}: REBOOT_WINDOW ${(error as Error).message}`);
          window = null;
        }
      }
      byDir.set(system.hostDirName, window);
    }
    const own = byDir.get(system.hostDirName);
    const window = own === undefined ? config.rebootWindow : own ?? undefined;
    if (window) system.rebootWindow = window;
  }
}

function attachWaves(systems: FleetSystem[], waves: readonly (readonly string[])[], problems: string[]): void {
  try {
    const assigned = assignWaves(systems.map((system) => system.name), waves);
    for (const system of systems) system.wave = assigned.get(system.name);
  } catch (error) {
    problems.push(`config.sh: ${(error as Error).message}`);
  }
}

/**
 * The systems of the host directories that failed, which bento could not
 * see: a non-flake's is named after its directory; a flake's names are not
 * known (`'any'`).
 */
function unseenSystems(hostDirs: readonly HostDir[], brokenHosts: readonly BrokenHost[]): ReadonlySet<string> | 'any' {
  const broken = hostDirs.filter((host) => brokenHosts.some((failed) => failed.hostDirName === host.name));
  if (broken.some((host) => host.kind === 'flake')) return 'any';
  return new Set(broken.map((host) => host.name));
}

/**
 * Reads each system's keys/<name>.pub. A key no system has is a warning,
 * unless it may be the key of a system of a host directory that failed
 * (`unseen`): that one's own keys are not strays.
 */
function attachKeys(root: string, systems: FleetSystem[], problems: string[], warnings: string[], unseen: ReadonlySet<string> | 'any'): void {
  const keysDir = path.join(root, 'keys');
  const realRoot = realpathSync(root);
  let entries: string[] = [];
  try {
    entries = readdirSync(keysDir);
  } catch {
    // no keys/ yet: every system gets the missing-key warning below
  }
  const files = new Set(entries.filter((file) => file.endsWith('.pub')));
  const byKey = new Map<string, string>();
  for (const system of systems) {
    const file = `${system.name}.pub`;
    if (!files.has(file)) {
      warnings.push(`keys/${file} is missing: system ${system.name} cannot log in to the SFTP server until its root's public key is there`);
      continue;
    }
    files.delete(file);
    try {
      // keys/ is the fleet writers': a FIFO there would keep every command waiting (fleet-file.ts).
      system.key = parsePublicKey(readFleetFile(path.join(keysDir, file), `keys/${file}`, `the public key of ${system.name}`, realRoot));
    } catch (error) {
      problems.push(error instanceof UserError ? error.message : `keys/${file}: ${(error as Error).message}`);
      continue;
    }
    // One key for two machines: either could log in as the other and read its configuration.
    const owner = byKey.get(system.key.data);
    if (owner) problems.push(`keys/${owner}.pub and keys/${file} hold the same key: either machine could log in as the other; give each machine its own key (ssh-keygen on each)`);
    else byKey.set(system.key.data, system.name);
  }
  if (unseen === 'any') return;
  for (const file of [...files].sort()) {
    if (!unseen.has(file.slice(0, -'.pub'.length))) warnings.push(`keys/${file} belongs to no system under hosts/ (ignored)`);
  }
}

function isFile(file: string): boolean {
  return statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}
