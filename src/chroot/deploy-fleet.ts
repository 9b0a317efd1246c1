/**
 * `bento deploy`: for each selected system, assemble its files, compare them
 * with what its chroot holds, build what changed (batched, in parallel),
 * record the store paths of flake systems in states.txt, and publish. A
 * system that fails keeps what it had; the others go on.
 */
import path from 'node:path';
import { buildSystemsShowingProgress } from '../build/build-systems.js';
import { generate } from '../commands/generate.js';
import { UserError } from '../errors.js';
import type { BrokenHost, FleetSystem } from '../fleet/fleet.js';
import { selectSystems } from '../fleet/select.js';
import type { NixBuildOptions } from '../nix/build.js';
import { readAccounts } from './accounts.js';
import { assembleSystem, HashCache, type Assembly } from './assemble.js';
import { lockChrootDir, prepareChrootDir } from './chroot-dir.js';
import { SFTP_GROUP } from './layout.js';
import { ensureSystemDirs, isPublished, publishSystem, readPublished } from './publish.js';
import { recordState } from './states-file.js';
import type { Progress } from '../progress.js';

export interface DeployOptions {
  fleetDir: string;
  /** Restrict to these systems (NAME); empty: all. */
  names: string[];
  jobs: number;
  /** Nix options; evaluateOnly defaults to config.sh's NOLOCALBUILD. */
  nix: NixBuildOptions;
  /** Where messages go, one line at a time. */
  print: (line: string) => void;
  /** Live progress of the builds (a status line on a terminal). */
  progress?: Pick<Progress, 'start' | 'advance' | 'stop'>;
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

export async function deployFleet(options: DeployOptions): Promise<DeployResult> {
  if (process.getuid?.() !== 0) {
    throw new UserError('bento deploy must run as root: it sets the ownership sshd requires in CHROOT_DIR', 'run it again with sudo (sudo -E keeps BENTO_DIR and NAME)');
  }
  const now = options.now ?? (() => new Date());
  const { fleet, outputDir: generatedDir, summary } = await generate({ fleetDir: options.fleetDir, jobs: options.jobs });
  const nix: NixBuildOptions = { ...options.nix, evaluateOnly: options.nix.evaluateOnly ?? fleet.config.noLocalBuild };
  const regenerated = summary.written.length;
  if (regenerated > 0) options.print(`generated/ was out of date: ${regenerated} file${regenerated === 1 ? '' : 's'} rewritten`);
  const selected = selectSystems(fleet.systems, options.names, fleet.brokenHosts.map((broken) => broken.place));

  const { chrootDir } = fleet.config;
  prepareChrootDir(chrootDir);
  const unlock = lockChrootDir(chrootDir);
  try {
    const result: DeployResult = { published: [], unchanged: [], failed: [], brokenHosts: fleet.brokenHosts, regenerated };
    const accounts = await readAccounts(selected.map((system) => system.name), SFTP_GROUP);
    if (accounts.sftpGroupId === undefined) throw new UserError(`the group ${SFTP_GROUP} does not exist on this server`, SERVER_SETUP_HINT);

    const cache = new HashCache();
    const toBuild: FleetSystem[] = [];
    const toRepair: Assembly[] = [];
    const assemblies = new Map<string, Assembly>();
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
      assemblies.set(system.name, assembly);
      for (const file of assembly.shadowed) {
        options.print(`  warning: hosts/${system.hostDirName}/${file} is replaced by bento's own ${file} in ${system.name}'s configuration; rename it`);
      }
      const published = readPublished(chrootDir, system.name);
      if (isPublished(published, assembly)) {
        result.unchanged.push(system.name);
      } else if (published.manifest === assembly.manifest) {
        // Published, but a deploy was stopped before announcing it.
        toRepair.push(assembly);
      } else {
        toBuild.push(system);
      }
    }
    for (const name of result.unchanged) options.print(`  ${name}: no changes`);
    for (const assembly of toRepair) {
      if (publish(chrootDir, assembly, now(), result)) options.print(`  ${assembly.name}: published (completing an interrupted deploy)`);
    }

    if (toBuild.length > 0) {
      const verb = nix.evaluateOnly ? 'evaluating (NOLOCALBUILD)' : 'building';
      options.print(`${verb} ${toBuild.length} system${toBuild.length === 1 ? '' : 's'}`);
      const builds = await buildSystemsShowingProgress(toBuild, { generatedDir, nix, jobs: options.jobs, print: options.print, progress: options.progress });
      for (const build of builds) {
        if (!build.ok) {
          result.failed.push({ name: build.name, reason: `build failed: ${build.error ?? ''}` });
          continue;
        }
        if (build.kind === 'flake' && build.storePath) recordState(chrootDir, build.name, path.basename(build.storePath));
        publish(chrootDir, assemblies.get(build.name) as Assembly, now(), result);
      }
    }
    return result;
  } finally {
    unlock();
  }
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
