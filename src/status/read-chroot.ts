/**
 * CHROOT_DIR → a snapshot of what status needs (docs/protocol.md): the expected store
 * path of each flake system (states.txt), when each system's files last
 * changed (mtime of last_change_date) and the logs the clients uploaded, with
 * the time the server received them (their mtime).
 *
 * Each machine writes its own logs/, so everything below it is hostile input.
 * Nothing here throws for a broken system: a problem becomes a warning and
 * marks that system, whose state is then "unknown", and the others are still
 * read. Only an unreadable CHROOT_DIR itself is an error. Texts returned here
 * are raw; they are sanitized where they are printed.
 *
 * The file system is read with synchronous calls on purpose: a fleet of
 * 1,000 systems × 20 logs is 22,000 lstat calls, which take 0.2 s this way
 * and 0.75 s through fs/promises (one thread-pool round trip and promise
 * each). status has nothing else to do meanwhile, and in watch mode one
 * refresh blocking for that long is invisible.
 */
import path from 'node:path';
import { lstatSync, readdirSync, statSync, type Dirent, type Stats } from 'node:fs';
import { UserError } from '../errors.js';
import { SYSTEM_NAME } from '../fleet/names.js';
import { ROLLOUT_FILE, STATES_FILE, systemChroot } from '../chroot/layout.js';
import { readRolloutState, type RolloutState } from '../chroot/rollout-state.js';
import { parseLogName, type LogName } from '../chroot/log-name.js';
import { readStatesFile, type StatesFile } from '../chroot/states-file.js';
import { compareText, truncate } from '../util/text.js';

/** Bad log names quoted in one warning; the rest are counted. */
const QUOTED_BAD_NAMES = 3;

/** What states.txt says a system should run. */
export type Expected =
  | { kind: 'flake'; storeBasename: string; hash: string }
  /** Not listed: the original scripts only record flake systems. */
  | { kind: 'non-flake' }
  /** states.txt could not be read, or its line for this system is broken. */
  | { kind: 'unknown' };

export interface LogEntry {
  fileName: string;
  log: LogName;
  /** When the server received it (mtime of the uploaded file). */
  mtimeMs: number;
}

export interface SystemSnapshot {
  name: string;
  expected: Expected;
  /** mtime of last_change_date; null when it is missing or unreadable. */
  lastChangeMs: number | null;
  /** The well-formed logs, in no particular order. */
  logs: LogEntry[];
  /** Why this system's state cannot be trusted; non-empty means "unknown". */
  problems: string[];
}

export interface ChrootSnapshot {
  /** Sorted by name. */
  systems: SystemSnapshot[];
  /** The staged rollout in progress (running or halted), if any. */
  rollout?: RolloutState;
  /** Raw texts (may quote hostile names): sanitize before printing. */
  warnings: string[];
}

/**
 * Reads CHROOT_DIR; throws a UserError only when CHROOT_DIR itself cannot be
 * listed. Asynchronous in its signature so that the reading strategy can
 * change without touching the callers.
 */
export async function readChroot(chrootDir: string): Promise<ChrootSnapshot> {
  return readChrootNow(chrootDir);
}

function readChrootNow(chrootDir: string): ChrootSnapshot {
  let entries: Dirent[];
  try {
    entries = readdirSync(chrootDir, { withFileTypes: true });
  } catch (error) {
    throw new UserError(`cannot read CHROOT_DIR ${chrootDir}: ${describeError(error)}`, 'check CHROOT_DIR in config.sh');
  }
  const warnings: string[] = [];
  const states = readStates(chrootDir);
  warnings.push(...states.warnings);

  const names = selectSystemNames(chrootDir, entries, warnings);
  const systems = names.map((name) => readSystem(chrootDir, name, states));
  for (const system of systems) warnings.push(...system.warnings);

  const rollout = readRollout(chrootDir, warnings);
  const present = new Set(names);
  for (const [name, entry] of states.entries) {
    if (!present.has(name)) warnings.push(`${STATES_FILE}:${entry.line}: ${name} has no directory in CHROOT_DIR (not shown)`);
  }
  return { systems: systems.map((system) => system.snapshot), warnings, ...(rollout ? { rollout } : {}) };
}

/** The rollout that is running or halted; a damaged rollout.json is a warning. */
function readRollout(chrootDir: string, warnings: string[]): RolloutState | undefined {
  try {
    const state = readRolloutState(chrootDir);
    return state && (state.status === 'running' || state.status === 'halted') ? state : undefined;
  } catch (error) {
    warnings.push(describeError(error));
    return undefined;
  }
}

interface StatesRead extends StatesFile {
  /** Set when the file exists but cannot be read: every system is then unknown. */
  unreadable?: string;
}

/** states.txt through its one parser; a missing file means no flake system. */
function readStates(chrootDir: string): StatesRead {
  try {
    return readStatesFile(chrootDir);
  } catch (error) {
    const unreadable = `${STATES_FILE} cannot be read: ${describeError(error)}`;
    return { entries: new Map(), warnings: [unreadable], unreadable };
  }
}

/** The directories of CHROOT_DIR that are systems; other entries get a warning. */
function selectSystemNames(chrootDir: string, entries: Dirent[], warnings: string[]): string[] {
  const names: string[] = [];
  for (const entry of entries) {
    // Dot files are typically temporary files of an atomic write in progress.
    if (entry.name === STATES_FILE || entry.name === ROLLOUT_FILE || entry.name.startsWith('.')) continue;
    if (!SYSTEM_NAME.test(entry.name)) {
      warnings.push(`ignored ${JSON.stringify(truncate(entry.name))} in CHROOT_DIR: not a system name`);
      continue;
    }
    // The administrator owns CHROOT_DIR, so a symbolic link there is theirs to follow.
    const isDirectory = entry.isDirectory() || (entry.isSymbolicLink() && statOrUndefined(path.join(chrootDir, entry.name))?.isDirectory());
    if (!isDirectory) {
      warnings.push(`ignored ${entry.name} in CHROOT_DIR: not a directory`);
      continue;
    }
    names.push(entry.name);
  }
  return names.sort(compareText);
}

interface SystemRead {
  snapshot: SystemSnapshot;
  warnings: string[];
}

function readSystem(chrootDir: string, name: string, states: StatesRead): SystemRead {
  const problems: string[] = [];
  const warnings: string[] = [];
  const expected = decideExpected(name, states, problems);
  const chroot = systemChroot(chrootDir, name);
  const lastChangeMs = readLastChange(chroot.lastChangeDate, name, warnings);
  const logs = readLogs(chroot.logs, name, problems);
  // Every problem is also a warning, so the user learns why a row says "unknown".
  warnings.push(...problems);
  return { snapshot: { name, expected, lastChangeMs, logs, problems }, warnings };
}

function decideExpected(name: string, states: StatesRead, problems: string[]): Expected {
  if (states.unreadable) {
    problems.push(`${name}: expected version unknown, ${states.unreadable}`);
    return { kind: 'unknown' };
  }
  const entry = states.entries.get(name);
  if (!entry) return { kind: 'non-flake' };
  if ('problem' in entry) {
    problems.push(`${name}: ${entry.problem}`);
    return { kind: 'unknown' };
  }
  return { kind: 'flake', storeBasename: entry.storeBasename, hash: entry.storeBasename.slice(0, 32) };
}

/** A missing date is a warning, not a problem: some states do not need it (see states.ts). */
function readLastChange(file: string, name: string, warnings: string[]): number | null {
  try {
    const stats = lstatSync(file);
    if (stats.isFile()) return stats.mtimeMs;
    warnings.push(`${name}/last_change_date is not a regular file: when the configuration changed is unknown`);
  } catch (error) {
    const why = errorCode(error) === 'ENOENT' ? 'is missing (never deployed?)' : `cannot be read (${describeError(error)})`;
    warnings.push(`${name}/last_change_date ${why}: when the configuration changed is unknown`);
  }
  return null;
}

function readLogs(dir: string, name: string, problems: string[]): LogEntry[] {
  let entries: string[];
  try {
    // Plain names, no Dirent objects: the lstat below tells the file type
    // anyway. logs/ itself is followed if it is a link: it sits in the
    // root-owned system directory, out of the client's reach.
    entries = readdirSync(dir);
  } catch (error) {
    problems.push(errorCode(error) === 'ENOTDIR' ? `${name}/logs is not a directory` : `${name}/logs cannot be read: ${describeError(error)}`);
    return [];
  }

  // Only the first few bad names are quoted: there may be thousands.
  const badNames: string[] = [];
  let badCount = 0;
  const reportBad = (describe: () => string) => {
    if (badCount++ < QUOTED_BAD_NAMES) badNames.push(describe());
  };
  const logs: LogEntry[] = [];
  for (const fileName of entries) {
    const parsed = parseLogName(fileName);
    if (!parsed.ok) {
      reportBad(() => `${JSON.stringify(truncate(fileName))} (${parsed.reason})`);
      continue;
    }
    const result = lstatOrError(`${dir}/${fileName}`);
    if (result === undefined) continue; // deleted since readdir (a log rotation, say): simply gone
    if (result instanceof Error) problems.push(`${name}/logs/${fileName} cannot be read: ${describeError(result)}`);
    else if (result.isFile()) logs.push({ fileName, log: parsed.log, mtimeMs: result.mtimeMs });
    else reportBad(() => `${JSON.stringify(fileName)} (not a regular file)`);
  }
  if (badCount > 0) {
    const more = badCount > QUOTED_BAD_NAMES ? ` and ${badCount - QUOTED_BAD_NAMES} more` : '';
    problems.push(`${name}/logs holds ${badCount === 1 ? 'an entry that is not a log' : `${badCount} entries that are not logs`}: ${badNames.join(', ')}${more}`);
  }
  return logs;
}

function lstatOrError(file: string): Stats | Error | undefined {
  try {
    return lstatSync(file, { throwIfNoEntry: false });
  } catch (error) {
    return error as Error;
  }
}

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function describeError(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.message : String(error));
}
