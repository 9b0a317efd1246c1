/**
 * Systems that left the fleet (docs/protocol.md §2): a host directory, or a
 * flake's attribute, removed from hosts/. Deploy takes away what it had
 * published for such a system — its states.txt line, last_change_date,
 * `config` and the version directories, a prebuilt system's caches and GC
 * roots — so a machine that can still log in (until the server's accounts
 * are applied again, which removes its key) finds nothing to download; then
 * it writes `removed` in the system's directory: status no longer shows it,
 * the prunes leave its logs, which stay for the record. A deploy that finds
 * the system in the fleet again removes the marker (publish.ts,
 * ensureSystemDirs) and publishes it anew.
 *
 * Only bento's own directories: a directory of CHROOT_DIR, not a link, named
 * like a system, owned by root with the group sftp_users, as deploy and the
 * server setup make them. What is removed is removed by its name (bento's
 * own names), never through a link.
 */
import { existsSync, lstatSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomicallySync } from '../util/atomic-write.js';
import { publishSystemCache } from './prebuilt-cache.js';
import { CONFIG_LINK, LAST_CHANGE_DATE, listChrootDir, REMOVED_MARKER, systemChroot } from '../protocol/layout.js';
import { readStatesFile } from '../protocol/states-file.js';
import { readPublished } from './publish.js';
import { recordState, recordStates } from './record-state.js';

/** Entries of a system's directory that deploy writes for what it publishes (and their temporary names). */
const PUBLISHED_ENTRY = /^(config|last_change_date|\.config-.*|\.cache-.*|config\.tmp-\d+|\.?last_change_date\.tmp-\d+)$/;

export interface Departures {
  /** Not in the fleet, and something published for them remains (or they were never marked): to retire now. */
  toRetire: string[];
  /** Retired by an earlier deploy: nothing of them is published. */
  retired: string[];
}

/**
 * The systems of CHROOT_DIR that are not in `fleetNames`, among bento's own
 * directories (owned by root, group `sftpGroupId`); sorted.
 */
export function findDepartures(chrootDir: string, fleetNames: ReadonlySet<string>, sftpGroupId: number): Departures {
  let listed: Set<string>;
  try {
    listed = new Set(readStatesFile(chrootDir).entries.keys());
  } catch {
    listed = new Set();
  }
  const departures: Departures = { toRetire: [], retired: [] };
  for (const { name, link } of listChrootDir(chrootDir).systems) {
    if (link || fleetNames.has(name)) continue;
    const dir = path.join(chrootDir, name);
    const stats = lstatSync(dir, { throwIfNoEntry: false });
    if (!stats?.isDirectory() || stats.uid !== 0 || stats.gid !== sftpGroupId) continue;
    const marked = lstatSync(path.join(dir, REMOVED_MARKER), { throwIfNoEntry: false })?.isFile() ?? false;
    const published = listed.has(name) || readdirSync(dir).some((file) => PUBLISHED_ENTRY.test(file));
    (marked && !published ? departures.retired : departures.toRetire).push(name);
  }
  departures.toRetire.sort();
  departures.retired.sort();
  return departures;
}

/**
 * The departed systems deploy leaves alone, when none of the fleet's
 * systems (`fleetNames`) is published in CHROOT_DIR yet: a first deploy
 * into a CHROOT_DIR another fleet uses, or a deploy of the wrong fleet
 * (--dir), must not take that fleet's machines away. The next deploy, once
 * this fleet is published there, retires what is not in it. Undefined when
 * the departed systems are to be retired (retireDepartures).
 */
export function departuresLeftAlone(chrootDir: string, fleetNames: readonly string[], sftpGroupId: number): string[] | undefined {
  if (fleetNames.some((name) => readPublished(chrootDir, name).manifest !== undefined)) return undefined;
  return findDepartures(chrootDir, new Set(fleetNames), sftpGroupId).toRetire;
}

/**
 * Takes away what was published for `name` and marks it removed. The
 * announcement goes first (a machine polling meanwhile sees nothing
 * published), then its files; the marker last, so a deploy killed half-way
 * completes it the next time. Its logs/ is not touched.
 */
export async function retireSystem(chrootDir: string, name: string, sftpGroupId: number, now: Date): Promise<void> {
  recordState(chrootDir, name, undefined);
  await takeAwayPublished(chrootDir, name, sftpGroupId, now);
}

/** retireSystem after its states.txt line is gone. */
async function takeAwayPublished(chrootDir: string, name: string, sftpGroupId: number, now: Date): Promise<void> {
  const chroot = systemChroot(chrootDir, name);
  rmSync(chroot.lastChangeDate, { force: true });
  // A link to the version directory goes, not what it points to (or the original bento's plain config/).
  if (lstatSync(chroot.config, { throwIfNoEntry: false })?.isSymbolicLink()) unlinkSync(chroot.config);
  else rmSync(chroot.config, { recursive: true, force: true });
  // The caches of a prebuilt system, their GC roots and the pool files only they held:
  // with nothing announced or published, the chroot keeps none (prebuilt-cache.ts, cacheIdsToKeep).
  await publishSystemCache({ name, digest: '' }, { chrootDir, sftpGroupId });
  for (const entry of readdirSync(chroot.dir)) {
    if (entry !== CONFIG_LINK && entry !== LAST_CHANGE_DATE && PUBLISHED_ENTRY.test(entry)) rmSync(path.join(chroot.dir, entry), { recursive: true, force: true });
  }
  writeFileAtomicallySync(chroot.removed, `removed from the fleet by bento deploy on ${now.toISOString()}: nothing is published for it any more; its logs are kept\n`, 0o644);
}

export interface RetireOptions {
  chrootDir: string;
  /** Every system of the fleet. */
  fleetNames: ReadonlySet<string>;
  sftpGroupId: number;
  now: () => Date;
  /** Where sshd reads a system's keys: a departed system with a key there can still log in. */
  authorizedKeysFileOf: (name: string) => string;
}

export interface Retirement {
  /** Retired now. */
  retired: { name: string; logs: string; keyFile?: string }[];
  /** Could not be retired whole: name and why. */
  failed: { name: string; reason: string }[];
  /** Retired by an earlier deploy, whose key is still in place: name and key file. */
  stillAuthorized: { name: string; keyFile: string }[];
  /** Every system that left the fleet, retired now or before, sorted: the rollout in progress forgets them (rollout/wave-publication.ts, forgetInRollout). */
  departed: string[];
}

/** Retires every departed system of CHROOT_DIR (findDepartures); each one's failure is its own. */
export async function retireDepartures(options: RetireOptions): Promise<Retirement> {
  const { chrootDir, authorizedKeysFileOf } = options;
  const departures = findDepartures(chrootDir, options.fleetNames, options.sftpGroupId);
  const keyOf = (name: string) => (existsSync(authorizedKeysFileOf(name)) ? authorizedKeysFileOf(name) : undefined);
  const result: Retirement = { retired: [], failed: [], stillAuthorized: [], departed: [] };
  // Their states.txt lines go first, all at once (one replacement of the file).
  let linesGone: Error | undefined;
  try {
    if (departures.toRetire.length > 0) recordStates(chrootDir, new Map(departures.toRetire.map((name) => [name, undefined])));
  } catch (error) {
    linesGone = error instanceof Error ? error : new Error(String(error));
  }
  for (const name of departures.toRetire) {
    try {
      if (linesGone) throw linesGone;
      await takeAwayPublished(chrootDir, name, options.sftpGroupId, options.now());
      result.retired.push({ name, logs: systemChroot(chrootDir, name).logs, keyFile: keyOf(name) });
    } catch (error) {
      result.failed.push({ name, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  for (const name of departures.retired) {
    const keyFile = keyOf(name);
    if (keyFile) result.stillAuthorized.push({ name, keyFile });
  }
  result.departed = [...result.retired.map((system) => system.name), ...departures.retired].sort();
  return result;
}
