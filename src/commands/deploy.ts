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
import { readAccounts } from '../chroot/accounts.js';
import { assembleSystem, HashCache, type Assembly } from '../chroot/assemble.js';
import { lockChrootDir, prepareChrootDir } from '../chroot/chroot-dir.js';
import { SFTP_GROUP } from '../chroot/layout.js';
import { ensureSystemDirs, isPublished, publishSystem, readPublished } from '../chroot/publish.js';
import { recordState } from '../chroot/states-file.js';
import { UserError } from '../errors.js';
import type { BrokenHost, FleetSystem } from '../fleet/fleet.js';
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

/** What deploy decided for the systems it could assemble. */
interface PublicationPlan {
  /** Their files differ from what is published: build, then publish. */
  toBuild: FleetSystem[];
  /** Published, but a deploy was stopped before announcing it: announce only. */
  toRepair: Assembly[];
  assemblies: Map<string, Assembly>;
}

export async function deploy(options: DeployCommandOptions, io: CommandIO): Promise<DeployResult> {
  if (process.getuid?.() !== 0) {
    throw new UserError('bento deploy must run as root: it sets the ownership sshd requires in CHROOT_DIR', 'run it again with sudo (sudo -E keeps BENTO_DIR and NAME)');
  }
  const now = options.now ?? (() => new Date());
  const print = (line: string) => printLine(io, line);
  const { fleet, outputDir: generatedDir, summary } = await generateOutput({ fleetDir: options.fleetDir, jobs: options.jobs });
  const nix: NixBuildOptions = { ...options.nix, evaluateOnly: options.nix.evaluateOnly ?? fleet.config.noLocalBuild };
  const regenerated = summary.written.length;
  if (regenerated > 0) print(`generated/ was out of date: ${regenerated} file${regenerated === 1 ? '' : 's'} rewritten`);
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts.map((broken) => broken.place));

  const { chrootDir } = fleet.config;
  prepareChrootDir(chrootDir);
  const unlock = lockChrootDir(chrootDir);
  try {
    const result: DeployResult = { published: [], unchanged: [], failed: [], brokenHosts: fleet.brokenHosts, regenerated };
    const plan = await planPublication(selected, chrootDir, generatedDir, result, print);
    for (const name of result.unchanged) print(`  ${name}: no changes`);
    for (const assembly of plan.toRepair) {
      if (publish(chrootDir, assembly, now(), result)) print(`  ${assembly.name}: published (completing an interrupted deploy)`);
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
        if (build.kind === 'flake' && build.storePath) recordState(chrootDir, build.name, path.basename(build.storePath));
        publish(chrootDir, plan.assemblies.get(build.name) as Assembly, now(), result);
      }
    }
    return result;
  } finally {
    unlock();
  }
}

/**
 * Prepares each system's chroot directories and compares its assembled
 * files with what is published. Systems that cannot be prepared are
 * recorded as failed; unchanged ones as unchanged.
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
  const cache = new HashCache();
  const plan: PublicationPlan = { toBuild: [], toRepair: [], assemblies: new Map() };
  for (const system of selected) {
    const account = accounts.users.get(system.name);
    if (!account) {
      result.failed.push({ name: system.name, reason: `no Unix user ${system.name} on this server: ${SERVER_SETUP_HINT}` });
      continue;
    }
    try {
      ensureSystemDirs(chrootDir, system.name, account.uid, accounts.sftpGroupId);
    } catch (error) {
      result.failed.push({ name: system.name, reason: `cannot prepare its chroot: ${(error as Error).message}` });
      continue;
    }
    const assembly = assembleSystem(system, generatedDir, cache);
    plan.assemblies.set(system.name, assembly);
    for (const file of assembly.shadowed) {
      print(`  warning: hosts/${system.hostDirName}/${file} is replaced by bento's own ${file} in ${system.name}'s configuration; rename it`);
    }
    const published = readPublished(chrootDir, system.name);
    if (isPublished(published, assembly)) result.unchanged.push(system.name);
    else if (published.manifest === assembly.manifest) plan.toRepair.push(assembly);
    else plan.toBuild.push(system);
  }
  return plan;
}

/**
 * Publishes one system; a failure (a full disk, a read-only directory) is
 * that system's, and leaves its chroot as it was: the others go on.
 */
function publish(chrootDir: string, assembly: Assembly, now: Date, result: DeployResult): boolean {
  try {
    publishSystem(chrootDir, assembly, now);
    result.published.push(assembly.name);
    return true;
  } catch (error) {
    result.failed.push({ name: assembly.name, reason: `publication failed, its previous files stay published: ${(error as Error).message}` });
    return false;
  }
}
