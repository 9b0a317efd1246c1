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
import { announceSystem, ensureSystemDirs, isPublished, publishedContentProblems, publishSystem, readPublished, removeLeftovers } from '../chroot/publish.js';
import { recordState } from '../chroot/states-file.js';
import { UserError } from '../errors.js';
import { releaseFleet, type BrokenHost, type Fleet, type FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import type { NixBuildOptions } from '../nix/build.js';
import { generateOutput } from '../render/generate.js';
import { sanitize } from '../util/sanitize.js';
import { reportBrokenHosts } from './generate.js';
import { printLine, tell, type CommandIO } from './io.js';

export interface DeployCommandOptions {
  fleetDir: string;
  /** Restrict to these systems (NAME); empty: all. */
  names: string[];
  jobs: number;
  /** Nix options; evaluateOnly defaults to config.sh's NOLOCALBUILD. */
  nix: NixBuildOptions;
  now?: () => Date;
}

export interface DeployFailure {
  name: string;
  reason: string;
}

export interface DeployResult {
  published: string[];
  unchanged: string[];
  failed: DeployFailure[];
  brokenHosts: BrokenHost[];
  /** Files of generated/ that were stale and rewritten first. */
  regenerated: number;
}

const SERVER_SETUP_HINT = 'apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh as root, then deploy again';

export async function deployCommand(options: DeployCommandOptions, io: CommandIO): Promise<number> {
  const result = await deploy(options, io);
  await reportBrokenHosts(io, result.brokenHosts);
  await tell(io, `deploy: ${result.published.length} published, ${result.unchanged.length} unchanged, ${result.failed.length} failed`);
  // One line per failure: Nix's multi-line explanation was shown with the build lines.
  for (const failure of result.failed) await tell(io, `  ${failure.name}: ${sanitize(failure.reason)}`);
  const problems = result.failed.length + result.brokenHosts.length;
  if (problems > 0) {
    throw new UserError(`${problems} problem${problems === 1 ? '' : 's'}: the systems above kept what they had published before`);
  }
  return 0;
}

export async function deploy(options: DeployCommandOptions, io: CommandIO): Promise<DeployResult> {
  if (process.getuid?.() !== 0) {
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
  const now = options.now ?? (() => new Date());
  const print = (line: string) => printLine(io, line);
  const nix: NixBuildOptions = { ...options.nix, evaluateOnly: options.nix.evaluateOnly ?? fleet.config.noLocalBuild };
  if (regenerated > 0) print(`generated/ was out of date: ${regenerated} file${regenerated === 1 ? '' : 's'} rewritten`);
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts);

  const { chrootDir } = fleet.config;
  prepareChrootDir(chrootDir);
  const unlock = await lockChrootDir(chrootDir);
  try {
    removeLeftovers(chrootDir, selected.map((system) => system.name));
    const result: DeployResult = { published: [], unchanged: [], failed: [], brokenHosts: fleet.brokenHosts, regenerated };
    const plan = await planPublication(selected, chrootDir, generatedDir, result, print);
    const publication = { chrootDir, sftpGroupId: plan.sftpGroupId, now, result };
    for (const name of result.unchanged) print(`  ${name}: no changes`);
    for (const assembly of plan.toAnnounce) {
      if (attempt(assembly.name, result, 'publication failed, its previous files stay published', () => announceSystem(chrootDir, assembly, now()))) {
        result.published.push(assembly.name);
        print(`  ${assembly.name}: published (completing an interrupted deploy)`);
      }
    }
    if (plan.toBuild.length > 0) {
      const verb = nix.evaluateOnly ? 'evaluating (NOLOCALBUILD)' : 'building';
      print(`${verb} ${plan.toBuild.length} system${plan.toBuild.length === 1 ? '' : 's'}`);
      const builds = await buildSystemsShowingProgress(plan.toBuild, { generatedDir, nix, jobs: options.jobs, print, progress: io.progress });
      for (const build of builds) {
        if (!build.ok) {
          result.failed.push({ name: build.name, reason: `build failed: ${build.error ?? ''}` });
          continue;
        }
        const assembly = plan.assemblies.get(build.name) as Assembly;
        const prebuilt = selected.some((system) => system.name === build.name && system.prebuilt);
        if (!(await publishPrebuiltCache(fleet, assembly, prebuilt ? build.storePath : undefined, publication))) continue;
        // A prebuilt system runs exactly what was built here, flake or not: states.txt can name it.
        const storeBasename = (build.kind === 'flake' || prebuilt) && build.storePath ? path.basename(build.storePath) : undefined;
        publishBuilt(assembly, storeBasename, publication);
      }
    }
    return result;
  } finally {
    await unlock();
  }
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
      print(`  warning: hosts/${system.hostDirName}/${file} is replaced by bento's own ${file} in ${system.name}'s configuration; rename it`);
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
 * Records a built system's store path in states.txt (or removes its line,
 * without a flake), then publishes its files. states.txt names only what is
 * published: when the publication fails, the line it had is put back. Any
 * failure (a full disk, a read-only directory) is that system's alone.
 */
function publishBuilt(assembly: Assembly, storeBasename: string | undefined, publication: Publication): void {
  const { chrootDir, result } = publication;
  let previous: string | undefined;
  if (!attempt(assembly.name, result, 'cannot record it in states.txt, nothing was published', () => (previous = recordState(chrootDir, assembly.name, storeBasename)))) return;
  const published = attempt(assembly.name, result, 'publication failed, its previous files stay published', () =>
    publishSystem(chrootDir, assembly, { sftpGroupId: publication.sftpGroupId, now: publication.now() }),
  );
  if (published) {
    result.published.push(assembly.name);
    return;
  }
  try {
    recordState(chrootDir, assembly.name, previous);
  } catch (error) {
    const failure = result.failed.find((entry) => entry.name === assembly.name);
    if (failure) failure.reason += `; and its states.txt line could not be put back (${errorText(error)})`;
  }
}

/**
 * Prebuilt systems (docs/protocol.md §9): the signed binary cache of the
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

/** Runs one step for one system; a failure is recorded as that system's, and false returned. */
function attempt(name: string, result: DeployResult, what: string, step: () => unknown): boolean {
  try {
    step();
    return true;
  } catch (error) {
    result.failed.push({ name, reason: `${what}: ${errorText(error)}` });
    return false;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
