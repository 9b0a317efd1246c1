/**
 * CHROOT_DIR → a snapshot of what status needs (SPEC §5): the expected store
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
import { lstatSync, readdirSync, readFileSync, statSync, type Dirent, type Stats } from 'node:fs';
import { UserError } from '../errors.js';
import { SYSTEM_NAME } from '../fleet/names.js';
import { STATES_FILE } from '../chroot/layout.js';
import { parseLogName, storeBasenameProblem, type LogName } from './log-name.js';

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
  const states = readStates(path.join(chrootDir, STATES_FILE));
  warnings.push(...states.warnings);

  const names = selectSystemNames(chrootDir, entries, warnings);
  const systems = names.map((name) => readSystem(chrootDir, name, states));
  for (const system of systems) warnings.push(...system.warnings);

  const present = new Set(names);
  for (const [name, line] of states.lines) {
    if (!present.has(name)) warnings.push(`${STATES_FILE}:${line}: ${name} has no directory in CHROOT_DIR (not shown)`);
  }
  return { systems: systems.map((system) => system.snapshot), warnings };
}

interface StatesFile {
  /** Expected store path basename by system name; a broken line maps to a problem. */
  byName: Map<string, { storeBasename: string } | { problem: string }>;
  /** Line number of each system's (last) entry. */
  lines: Map<string, number>;
  /** Set when the file exists but cannot be read: every system is then unknown. */
  unreadable?: string;
  warnings: string[];
}

/** Parses `<name>=<store path basename>` lines; a missing file means no flake system. */
function readStates(file: string): StatesFile {
  const result: StatesFile = { byName: new Map(), lines: new Map(), warnings: [] };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return result;
    result.unreadable = `${STATES_FILE} cannot be read: ${describeError(error)}`;
    result.warnings.push(result.unreadable);
    return result;
  }
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const number = index + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const equals = line.indexOf('=');
    const name = equals === -1 ? '' : line.slice(0, equals);
    if (!SYSTEM_NAME.test(name)) {
      result.warnings.push(`${STATES_FILE}:${number}: ignored, not <system name>=<store path>: ${JSON.stringify(truncate(line))}`);
      return;
    }
    const previous = result.lines.get(name);
    if (previous !== undefined) result.warnings.push(`${STATES_FILE}:${number}: ${name} is listed again (line ${previous} is ignored)`);
    result.lines.set(name, number);
    const storeBasename = line.slice(equals + 1);
    const problem = storeBasenameProblem(storeBasename);
    result.byName.set(name, problem ? { problem: `${STATES_FILE}:${number}: ${problem}: ${JSON.stringify(truncate(storeBasename))}` } : { storeBasename });
  });
  return result;
}

/** The directories of CHROOT_DIR that are systems; other entries get a warning. */
function selectSystemNames(chrootDir: string, entries: Dirent[], warnings: string[]): string[] {
  const names: string[] = [];
  for (const entry of entries) {
    // Dot files are typically temporary files of an atomic write in progress.
    if (entry.name === STATES_FILE || entry.name.startsWith('.')) continue;
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

function readSystem(chrootDir: string, name: string, states: StatesFile): SystemRead {
  const problems: string[] = [];
  const warnings: string[] = [];
  const expected = decideExpected(name, states, problems);
  const lastChangeMs = readLastChange(path.join(chrootDir, name, 'last_change_date'), name, warnings);
  const logs = readLogs(path.join(chrootDir, name, 'logs'), name, problems);
  // Every problem is also a warning, so the user learns why a row says "unknown".
  warnings.push(...problems);
  return { snapshot: { name, expected, lastChangeMs, logs, problems }, warnings };
}

function decideExpected(name: string, states: StatesFile, problems: string[]): Expected {
  if (states.unreadable) {
    problems.push(`${name}: expected version unknown, ${states.unreadable}`);
    return { kind: 'unknown' };
  }
  const entry = states.byName.get(name);
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

/** Plain code-unit order: the same on every machine, whatever the locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function describeError(error: unknown): string {
  return errorCode(error) ?? (error instanceof Error ? error.message : String(error));
}

/** Keeps warnings about absurdly long names readable. */
function truncate(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
