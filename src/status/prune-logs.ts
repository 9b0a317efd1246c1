/**
 * Bounded logs (docs/protocol.md §5, "Retention"): the server keeps at most
 * LOG_KEEP logs per machine and removes the oldest, by the time the server
 * received them (mtime), the order status uses. It never removes a log
 * status needs: the latest whole one (its result is the state; the broken
 * ones after it are kept too) and every one newer than last_change_date
 * (they are counted: "extra logs"), so status
 * says the same before and after (test/status/prune-logs.test.ts checks it
 * against decideStatus). It lives next to the rules it must respect.
 *
 * Only the logs of systems bento publishes for: a directory of CHROOT_DIR
 * whose account is one of bento's SFTP users (chroot/accounts.ts, the rule
 * deploy and the server setup apply), never through a symbolic link (the
 * directory and its logs/ are directories, not links), and not a system that
 * left the fleet (its logs stay for the record). Only well-named regular
 * files count and are removed; anything else in logs/ is left to the
 * administrator (or to the server's own cleanup of stray files). A machine
 * owns its logs/ and may race with a prune: an entry removed or replaced
 * meanwhile is simply skipped (unlink removes a name, never what a symbolic
 * link points to).
 */
import { lstatSync, readdirSync, unlinkSync, type BigIntStats } from 'node:fs';
import { bentoAccountProblem, readAccounts, type Accounts } from '../chroot/accounts.js';
import { dirUnchangedSinceRecorded, recordDir, statTimeNow, type RecordedDir, type RecordedLogs } from '../chroot/published-stats.js';
import { listChrootDir, SFTP_GROUP, systemChroot } from '../protocol/layout.js';
import { isLaterLog, receivedAtMs, type LogEntry } from '../protocol/log-file.js';
import { parseLogName } from '../protocol/log-name.js';
import { DEFAULTS } from '../config/config.js';
import { describeError, errorCode } from '../errors.js';
import { unreadableLogProblem } from './read-chroot.js';

/** Oldest first, in the order status reads them (isLaterLog: server mtime, then name). */
function byArrival(a: LogEntry, b: LogEntry): number {
  return isLaterLog(a, b) ? 1 : isLaterLog(b, a) ? -1 : 0;
}

/**
 * The logs to remove so that at most `keep` remain (0: keep all), oldest
 * first, never one newer than `lastChangeMs`, nor the latest one, nor (when
 * the latest ones are not whole, by `isWhole`) the latest whole one, which
 * status reads instead; more than `keep` remain when that many are needed.
 * Pure but for `isWhole`, asked only of the few latest logs.
 */
export function planLogPruning<Log extends LogEntry>(logs: readonly Log[], lastChangeMs: number, keep: number, isWhole: (log: Log) => boolean = () => true): Log[] {
  if (keep <= 0 || logs.length <= keep) return [];
  const needed = new Set<Log>();
  const newestFirst = [...logs].sort((a, b) => byArrival(b, a));
  for (const log of newestFirst) {
    needed.add(log);
    if (isWhole(log)) break;
  }
  const removable = logs.filter((log) => !needed.has(log) && log.mtimeMs <= lastChangeMs).sort(byArrival);
  return removable.slice(0, Math.min(removable.length, logs.length - keep));
}

export interface PruneOptions {
  chrootDir: string;
  /** LOG_KEEP: logs kept per system; 0 keeps all. */
  keep: number;
  /**
   * Only these systems (one that is not bento's is a problem); absent: every
   * directory of CHROOT_DIR that is a bento system (the others are skipped).
   */
  names?: readonly string[];
  /** The accounts of those systems (getent, as deploy reads them); read when absent. */
  accounts?: Accounts;
  /**
   * Every one of `names` was just found a bento system by the caller, its
   * directory and logs/ directories, not marked removed (deploy's plan:
   * chroot/plan-publication.ts, under the deploy lock): not checked again.
   */
  prepared?: boolean;
  /**
   * Deploy's record of each system's logs/ (chroot/published-stats.ts,
   * SystemStats.logs): a logs/ unchanged since it held no more than `keep`
   * logs is not listed again.
   */
  recordedLogs?: (name: string) => RecordedLogs | undefined;
  /** Told of each logs/ found holding no more than `keep` logs, with its record. */
  onLogsRecorded?: (name: string, record: RecordedLogs) => void;
  /** List what would be removed, remove nothing. */
  dryRun?: boolean;
  /** LOG_SIZE_LIMIT: status does not read a larger log, so it cannot be the one kept for status. */
  sizeLimit?: number;
}

export interface SystemPruning {
  name: string;
  /** File names removed (or, dry run, to remove), oldest first. */
  removed: string[];
  /** Logs left. */
  kept: number;
  /** Why (part of) this system could not be pruned. */
  problems: string[];
}

/** Prunes the logs of every selected system; returns only the systems it removed something from or had a problem with. */
export async function pruneLogs(options: PruneOptions): Promise<SystemPruning[]> {
  if (options.keep <= 0) return [];
  const names = options.names ?? systemDirectories(options.chrootDir);
  const accounts = options.accounts ?? (await readAccounts(names, SFTP_GROUP));
  const results: SystemPruning[] = [];
  for (const name of names) {
    const notOurs = options.prepared && options.names ? undefined : notBentoSystem(options.chrootDir, name, accounts);
    const result = notOurs === undefined ? pruneSystem(options, name) : { name, removed: [], kept: 0, problems: options.names && notOurs ? [notOurs] : [] };
    if (result.removed.length > 0 || result.problems.length > 0) results.push(result);
  }
  return results;
}

/** The systems of CHROOT_DIR (protocol/layout.ts, listChrootDir) that are directories, not links. */
function systemDirectories(chrootDir: string): string[] {
  return listChrootDir(chrootDir)
    .systems.filter((system) => !system.link)
    .map((system) => system.name);
}

/**
 * Why the logs of `name` are not pruned: not a system bento publishes for
 * (its account, a link), or '' for a system that left the fleet (nothing to
 * say: its logs are kept on purpose); undefined when they are.
 */
function notBentoSystem(chrootDir: string, name: string, accounts: Accounts): string | undefined {
  const chroot = systemChroot(chrootDir, name);
  if (lstatSync(chroot.removed, { throwIfNoEntry: false })) return '';
  const account = accounts.users.get(name);
  if (!account) return `${name}: no user ${name} on this server: not a system bento publishes for, its logs are left alone`;
  if (accounts.sftpGroupId === undefined) return `${name}: no group ${SFTP_GROUP} on this server: its logs are left alone`;
  const problem = bentoAccountProblem(account, chrootDir, accounts.sftpGroupId);
  if (problem) return `${name}: ${problem}; its logs are left alone`;
  for (const dir of [chroot.dir, chroot.logs]) {
    const stats = lstatSync(dir, { throwIfNoEntry: false });
    // A system without logs/ (never set up): nothing to prune.
    if (!stats) return '';
    if (!stats.isDirectory()) return `${name}: ${dir} is ${stats.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}: the prune never goes through one, its logs are left alone`;
  }
  return undefined;
}

function pruneSystem(options: PruneOptions, name: string): SystemPruning {
  const chroot = systemChroot(options.chrootDir, name);
  const result: SystemPruning = { name, removed: [], kept: 0, problems: [] };
  const statTimeNs = statTimeNow();
  let stats: BigIntStats | undefined;
  if (options.recordedLogs || options.onLogsRecorded) {
    try {
      stats = lstatSync(chroot.logs, { bigint: true, throwIfNoEntry: false });
    } catch {
      stats = undefined;
    }
    const recorded = options.recordedLogs?.(name);
    // No log arrived or left since it held that many: nothing to do, nothing listed.
    if (recorded && Number(recorded[0]) <= options.keep && dirUnchangedSinceRecorded(recorded.slice(1) as RecordedDir, stats)) {
      result.kept = Number(recorded[0]);
      options.onLogsRecorded?.(name, recorded);
      return result;
    }
  }
  let entries: string[];
  try {
    entries = readdirSync(chroot.logs);
  } catch (error) {
    // A system without logs/ (never set up, or not a system): nothing to prune.
    if (errorCode(error) !== 'ENOENT') result.problems.push(`${name}/logs cannot be read: ${describeError(error)}`);
    return result;
  }
  // Most of the time there is nothing to do: no need to look at each file.
  const named = entries.filter((fileName) => parseLogName(fileName).ok);
  result.kept = named.length;
  if (named.length <= options.keep) {
    if (stats?.isDirectory()) options.onLogsRecorded?.(name, [String(named.length), ...recordDir(statTimeNs, stats)]);
    return result;
  }

  let lastChangeMs: number;
  try {
    lastChangeMs = lstatSync(chroot.lastChangeDate).mtimeMs;
  } catch (error) {
    // Without it, which logs came after the last publication is unknown: keep them all.
    result.problems.push(`${name}/last_change_date cannot be read (${describeError(error)}): its logs are kept`);
    return result;
  }
  const logs: (LogEntry & { size: number })[] = [];
  for (const fileName of named) {
    const parsed = parseLogName(fileName);
    try {
      const stats = lstatSync(`${chroot.logs}/${fileName}`, { throwIfNoEntry: false });
      if (stats?.isFile() && parsed.ok) logs.push({ fileName, log: parsed.log, mtimeMs: receivedAtMs(stats), size: stats.size });
    } catch (error) {
      result.problems.push(`${name}/logs/${fileName} cannot be read (${describeError(error)}): its logs are kept`);
      return result;
    }
  }
  result.kept = logs.length;
  const sizeLimit = options.sizeLimit ?? DEFAULTS.logSizeLimit;
  const isWhole = (log: LogEntry & { size: number }) => unreadableLogProblem(`${chroot.logs}/${log.fileName}`, log.size, sizeLimit) === undefined;
  for (const log of planLogPruning(logs, lastChangeMs, options.keep, isWhole)) {
    try {
      if (!options.dryRun) unlinkSync(`${chroot.logs}/${log.fileName}`);
      result.removed.push(log.fileName);
      result.kept--;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        result.kept--;
        continue;
      }
      result.problems.push(`${name}/logs/${log.fileName} cannot be removed: ${describeError(error)}`);
      break;
    }
  }
  return result;
}
