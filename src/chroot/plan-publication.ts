/**
 * What deploy must do for each selected system, decided before anything is
 * built (the "plan" of read → plan → build → publish): its account is
 * checked, its chroot directories prepared, its files assembled and compared
 * with what its chroot publishes (the manifest, then the published files
 * themselves, and a prebuilt system's cache). A system that cannot be
 * prepared fails alone; the others go on. Nothing is printed here: what
 * deploy says comes back in `messages`, in the order the systems were seen.
 */
import { UserError } from '../errors.js';
import type { FleetSystem } from '../fleet/fleet.js';
import { SFTP_GROUP } from '../protocol/layout.js';
import { changedPaths, CLIENT_FLAG_FILES } from '../protocol/manifest.js';
import { readStatesFileToDecide, validStates } from '../protocol/states-file.js';
import { clientFilesOf } from '../render/render-fleet.js';
import { sha256 } from '../util/hash.js';
import { bentoAccountProblem, misplacedAccountsWarning, readAccounts, type Accounts, type MisplacedAccount } from './accounts.js';
import { assembleSystem, HashCache, type Assembly, type RenderedFiles } from './assemble.js';
import { systemCacheProblems } from './prebuilt-cache.js';
import { checkPublication, ensureSystemDirs, isPublished, readPublished, type Published, type SharedFileChecks } from './publish.js';
import { readPublishedStats, type SameSystem, type SystemStats } from './published-stats.js';

/** What deploy tells when the server's accounts are not set up. */
export const SERVER_SETUP_HINT = 'apply generated/server/sftp-server.nix (NixOS) or run generated/server/setup-debian.sh as root, then deploy again';

/** A system deploy could not handle, and why. */
export interface PlanFailure {
  name: string;
  reason: string;
}

/** What deploy decided for the selected systems. */
export interface PublicationPlan {
  /** Their files differ from what is published (or what is published is damaged): build, then publish. */
  toBuild: FleetSystem[];
  /** Published whole, but a deploy was stopped before announcing it: announce only. */
  toAnnounce: Assembly[];
  /** Published as assembled: nothing to do. */
  unchanged: string[];
  /** Could not be prepared (no account, not bento's, its chroot not writable): nothing of them changes. */
  failed: PlanFailure[];
  /** Every system that could be assembled. */
  assemblies: Map<string, Assembly>;
  sftpGroupId: number;
  /** The record of the published files found whole (chroot/published-stats.ts), by system: deploy saves it when it publishes. */
  publishedStats: Map<string, SystemStats>;
  /** The accounts read for the plan (getent): the prune of the same systems' logs reads them from here. */
  accounts: Accounts;
  /** For the user, in order: a warning (a host file replaced by bento's own) or a note (a damaged publication published again). */
  messages: { warning: boolean; text: string }[];
}

/**
 * Plans the publication of `selected` into `chrootDir` from the files of
 * `generatedDir`; prepares their chroot directories on the way (ensureSystemDirs).
 * Throws a UserError when the group sftp_users does not exist.
 */
export async function planPublication(
  selected: readonly FleetSystem[],
  chrootDir: string,
  generatedDir: string,
  /** The uid of each system's account, as the fleet's uids.txt records it: an account elsewhere is accepted, with a warning. */
  uids?: ReadonlyMap<string, number>,
  /** The files generate just rendered into `generatedDir` (assemble.ts, RenderedFiles): their digests, without reading them back. */
  rendered?: RenderedFiles,
  /** Deploy's record of what was published (chroot/published-stats.ts), when the caller read it already: a file whose lstat did not change since is not read again. */
  publishedStats: ReadonlyMap<string, SystemStats> = readPublishedStats(chrootDir),
): Promise<PublicationPlan> {
  const accounts = await readAccounts(selected.map((system) => system.name), SFTP_GROUP);
  if (accounts.sftpGroupId === undefined) throw new UserError(`the group ${SFTP_GROUP} does not exist on this server`, SERVER_SETUP_HINT);
  const sftpGroupId = accounts.sftpGroupId;
  const cache = new HashCache();
  // Files linked into many systems' versions are read once (publish.ts, sharingByContent).
  const sharedChecks: SharedFileChecks = new Map();
  const plan: PublicationPlan = { toBuild: [], toAnnounce: [], unchanged: [], failed: [], assemblies: new Map(), sftpGroupId, accounts, publishedStats: new Map(), messages: [] };
  const misplaced: MisplacedAccount[] = [];
  let states: ReadonlyMap<string, string> | undefined;
  for (const system of selected) {
    const account = accounts.users.get(system.name);
    if (!account) {
      plan.failed.push({ name: system.name, reason: `no Unix user ${system.name} on this server: ${SERVER_SETUP_HINT}` });
      continue;
    }
    const notOurs = bentoAccountProblem(account, chrootDir, sftpGroupId);
    if (notOurs) {
      plan.failed.push({ name: system.name, reason: notOurs });
      continue;
    }
    const recorded = uids?.get(system.name);
    if (recorded !== undefined && account.uid !== recorded) misplaced.push({ name: system.name, uid: account.uid, recorded });
    try {
      ensureSystemDirs(chrootDir, system.name, account.uid, sftpGroupId);
    } catch (error) {
      plan.failed.push({ name: system.name, reason: `cannot prepare its chroot: ${error instanceof Error ? error.message : String(error)}` });
      continue;
    }
    const assembly = assembleSystem(system, generatedDir, cache, rendered);
    plan.assemblies.set(system.name, assembly);
    for (const file of assembly.shadowed) {
      plan.messages.push({ warning: true, text: `hosts/${system.hostDirName}/${file} is replaced by bento's own ${file} in ${system.name}'s configuration; rename it` });
    }
    // The manifest, last_change_date and every published file: as recorded, an lstat each.
    const record = publishedStats.get(system.name);
    const { published, problems, stats } = checkPublication(chrootDir, assembly, record, sharedChecks);
    if (published.manifest !== assembly.manifest) {
      // Built before, and found to be what is published (sameSystemAsPublished): not built again.
      if (record && isKnownSameSystem(system, assembly, published, record.sameSystem, () => (states ??= validStates(readStatesFileToDecide(chrootDir))))) {
        plan.publishedStats.set(system.name, record);
        plan.unchanged.push(system.name);
        continue;
      }
      plan.toBuild.push(system);
      continue;
    }
    if (stats) plan.publishedStats.set(system.name, stats);
    const damaged = [...(problems ?? []), ...(system.prebuilt ? systemCacheProblems(chrootDir, system.name, assembly.digest) : [])];
    if (damaged.length > 0) {
      plan.messages.push({ warning: false, text: `${system.name}: its published files do not match their manifest (${damaged.slice(0, 3).join(', ')}${damaged.length > 3 ? ', …' : ''}): publishing it again` });
      plan.toBuild.push(system);
    } else if (isPublished(published, assembly)) {
      plan.unchanged.push(system.name);
    } else {
      plan.toAnnounce.push(assembly);
    }
  }
  const warning = misplacedAccountsWarning(misplaced);
  if (warning) plan.messages.unshift({ warning: true, text: warning });
  return plan;
}

/**
 * Whether a flake system whose files changed is, built, the system its
 * chroot already publishes, so that nothing is published for it
 * (docs/protocol.md §4): the systems of one flake share its host directory,
 * and a change that only the others use must not announce a new
 * configuration to every machine of the flake. When the store path
 * `storeBasename` built for it is the one states.txt records, what config/
 * holds is what last_change_date announces, and the files that differ reach
 * the machine only through that store path: not bento's own files (update.sh
 * runs from the download, with its settings) nor the flag files the client
 * reads itself (SELF_UPDATE, REBOOT), what deploy remembers of it (its
 * record, published-stats.ts: the next deploy does not build it again);
 * undefined when it is not. A non-flake system (no store path recorded,
 * §3) and a prebuilt one keep the rule of their files.
 */
export function sameSystemAsPublished(chrootDir: string, system: Pick<FleetSystem, 'name' | 'kind' | 'prebuilt'>, assembly: Assembly, storeBasename: string): SameSystem | undefined {
  if (!runsItsStorePath(system)) return undefined;
  if (validStates(readStatesFileToDecide(chrootDir)).get(system.name) !== storeBasename) return undefined;
  const published = readPublished(chrootDir, system.name);
  const announced = announcedDigest(published);
  if (published.manifest === undefined || announced === undefined) return undefined;
  const changed = changedPaths(published.manifest, assembly.manifest);
  if (!changed || changed.length === 0) return undefined;
  const readByTheClient = new Set([...clientFilesOf(system.name).map((file) => file.published), ...CLIENT_FLAG_FILES]);
  if (changed.some((file) => readByTheClient.has(file))) return undefined;
  return [assembly.digest, announced, storeBasename];
}

/**
 * Whether `same` (sameSystemAsPublished, remembered) still says that
 * `assembly` builds the system published: the same files assembled, the
 * same configuration in config/ and announced, the same store path in
 * states.txt (`states`).
 */
function isKnownSameSystem(system: Pick<FleetSystem, 'name' | 'kind' | 'prebuilt'>, assembly: Assembly, published: Published, same: SameSystem | undefined, states: () => ReadonlyMap<string, string>): boolean {
  if (!same || !runsItsStorePath(system)) return false;
  return same[0] === assembly.digest && same[1] === announcedDigest(published) && states().get(system.name) === same[2];
}

/** A flake system not prebuilt: the machine builds exactly the store path states.txt records (§3), which decides what it runs. */
function runsItsStorePath(system: Pick<FleetSystem, 'kind' | 'prebuilt'>): boolean {
  return system.kind === 'flake' && !system.prebuilt;
}

/** The digest of what config/ holds, when last_change_date announces it; undefined otherwise. */
function announcedDigest(published: Published): string | undefined {
  return published.manifest !== undefined && published.stampDigest === sha256(published.manifest) ? published.stampDigest : undefined;
}
