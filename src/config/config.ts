/**
 * config.sh → a typed Config with defaults. Validation happens here, once:
 * everything downstream trusts these values (and still quotes them). The
 * keys, their parsers and defaults are in schema.ts; this module reads the
 * file, applies them and checks the settings that depend on each other.
 */
import path from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { MissingToolError, UserError, UserErrors } from '../errors.js';
import { run } from '../exec.js';
import { ConfigSyntaxError, parseShellAssignments, type Assignment } from './parse-shell-assignments.js';
import { CONFIG_KEYS, DEFAULTS, SCHEMA, type Config, type KeySpec } from './schema.js';
import { IrregularFileError, readRegularFileSync } from '../util/read-at-most.js';
import { notToBeShownMessage } from '../util/confined-file.js';
import { calendarInterval, FALLBACK_SPREAD, pollSpreadOf, silentAfterOf, timeSpanSeconds } from './systemd-time.js';

// What the other stages read of config/, from the module that loads it.
export { CONFIG_KEYS, DEFAULTS, type Config } from './schema.js';
export { calendarInterval, pollSpreadOf, timeSpanSeconds } from './systemd-time.js';
export { effectiveMaxStartups, sizeSshd, type SshdSizing } from './sshd-sizing.js';
export { MAX_REMOTE_HOSTS, parseDuration, parseRolloutWaves } from './values.js';
export { WAVE_PATTERN } from '../protocol/rollout-file.js';
export { splitHostPort } from '../util/host-port.js';

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

const KEYS: Readonly<Record<string, KeySpec>> = SCHEMA;

/**
 * Turns the text of config.sh into a Config. `fileLabel` names the file in
 * messages (`config.sh:3: …`).
 */
export function parseConfig(text: string, fileLabel = 'config.sh'): LoadedConfig {
  const { config, warnings } = parseConfigLines(text, fileLabel);
  return { config, warnings };
}

/** parseConfig, and the line where each key is set. */
function parseConfigLines(text: string, fileLabel: string): LoadedConfig & { seen: ReadonlyMap<string, number> } {
  let assignments: Assignment[];
  try {
    assignments = parseShellAssignments(text);
  } catch (error) {
    if (error instanceof ConfigSyntaxError) throw new UserError(`${fileLabel}:${error.line}: ${error.reason}`);
    throw error;
  }

  const warnings: string[] = [];
  const problems: string[] = [];
  const values: Partial<Record<string, unknown>> = {};
  const seen = new Map<string, number>();

  for (const { key, value, line } of assignments) {
    const spec = KEYS[key];
    if (!spec) {
      warnings.push(`${fileLabel}:${line}: unknown key ${key} (ignored; known keys: ${CONFIG_KEYS.join(', ')})`);
      continue;
    }
    const previous = seen.get(key);
    if (previous !== undefined) warnings.push(`${fileLabel}:${line}: ${key} is set again (line ${previous} is overridden)`);
    seen.set(key, line);
    if (spec.required && value === '') {
      problems.push(`${fileLabel}:${line}: ${key} is empty`);
      continue;
    }
    try {
      values[spec.field] = spec.parse(value);
    } catch (error) {
      problems.push(`${fileLabel}:${line}: ${key} ${(error as Error).message}`);
    }
  }
  for (const [key, spec] of Object.entries(KEYS)) {
    if (spec.required && !seen.has(key)) problems.push(`${fileLabel}: ${key} is required (for example ${key}=${spec.example})`);
  }
  if (problems.length > 0) throw new UserErrors(problems);

  const config = { ...DEFAULTS, ...values } as Config;
  config.remoteIp = config.remoteHosts[0] as string;
  const interval = calendarInterval(config.updateCalendar);
  if (!seen.has('UPDATE_RANDOM_DELAY')) {
    config.updateRandomDelay = pollSpreadOf(config.updateCalendar);
    if (interval === undefined) warnings.push(unknownIntervalWarning(config.updateCalendar, seen, fileLabel));
  } else if (interval !== undefined && (timeSpanSeconds(config.updateRandomDelay) ?? 0) > interval.seconds) {
    warnings.push(
      `${fileLabel}:${seen.get('UPDATE_RANDOM_DELAY')}: UPDATE_RANDOM_DELAY=${config.updateRandomDelay} is longer than the interval of UPDATE_CALENDAR (${interval.span}): machines then poll less often than the calendar says`,
    );
  }
  if (!seen.has('SILENT_AFTER')) config.silentAfter = silentAfterOf(config.updateCalendar, config.updateRandomDelay);
  problems.push(...combinationProblems(config, seen, fileLabel));
  if (problems.length > 0) throw new UserErrors(problems);
  return { config, warnings, seen };
}

/**
 * UPDATE_CALENDAR repeats at no even interval bento recognises and
 * UPDATE_RANDOM_DELAY is unset: the polls are then spread over one minute
 * only (a longer guess could push them out of a window the calendar chose,
 * `Mon..Fri 02:00`), and SILENT_AFTER, unset too, is one day. Said, so the
 * administrator sets them.
 */
function unknownIntervalWarning(calendar: string, seen: ReadonlyMap<string, number>, fileLabel: string): string {
  const silent = seen.has('SILENT_AFTER') ? '' : ', and SILENT_AFTER (unset) is 1d: set it above the longest gap between two polls';
  return `${fileLabel}:${seen.get('UPDATE_CALENDAR') ?? '?'}: UPDATE_CALENDAR=${calendar} repeats at no interval bento can tell, so with UPDATE_RANDOM_DELAY unset the machines' polls are spread over ${FALLBACK_SPREAD} only: set UPDATE_RANDOM_DELAY to the spread you want (at most the shortest gap between two polls)${silent}`;
}

/**
 * The calendars set in config.sh, as the server's systemd reads them
 * (`systemd-analyze calendar`), where it is installed: bento's own check
 * (systemd-time.ts) cannot see everything systemd refuses, such as a time
 * zone its tzdata does not have. Without systemd-analyze, bento's check
 * stands alone.
 */
async function systemdCalendarProblems(config: Config, seen: ReadonlyMap<string, number>, fileLabel: string): Promise<string[]> {
  const calendars: { key: string; line: number; value: string }[] = [];
  for (const [key, spec] of Object.entries(KEYS)) {
    const line = seen.get(key);
    if (spec.type !== 'calendar' || line === undefined) continue;
    calendars.push({ key, line, value: (config as unknown as Record<string, string>)[spec.field] as string });
  }
  if (calendars.length === 0) return [];
  // One call for them all (every command reads config.sh): systemd-analyze
  // judges each expression it is given and names the one it refuses.
  let result;
  try {
    result = await run('systemd-analyze', ['calendar', ...calendars.map((calendar) => calendar.value)], { allowFailure: true, timeoutMs: 10_000 });
  } catch (error) {
    if (error instanceof MissingToolError) return [];
    throw error;
  }
  if (!result.failed) return [];
  const problems: string[] = [];
  for (const { key, line, value } of calendars) {
    // Only its verdict on the expression counts; any other failure (no systemd running…) says nothing about it.
    const refusal = result.stderr.split('\n').find((said) => said.startsWith(`Failed to parse calendar specification '${value}'`));
    if (refusal) problems.push(`${fileLabel}:${line}: ${key} is not a calendar systemd accepts (${JSON.stringify(value)}): systemd-analyze calendar says: ${refusal}`);
  }
  return problems;
}

/** Settings that are valid alone but contradict each other. */
function combinationProblems(config: Config, seen: ReadonlyMap<string, number>, fileLabel: string): string[] {
  const at = (key: string) => `${fileLabel}:${seen.get(key) ?? '?'}`;
  const problems: string[] = [];
  if (config.prebuilt && config.noLocalBuild) {
    problems.push(`${at('PREBUILT')}: PREBUILT=1 needs the systems built here, but NOLOCALBUILD=1 (line ${seen.get('NOLOCALBUILD') ?? '?'}) only evaluates them: there would be nothing to hand over; remove one of them`);
  }
  if (config.rebootMaxPerWave > 0 && (config.rebootMax === 0 || config.rolloutWaves === undefined)) {
    problems.push(`${at('REBOOT_MAX_PER_WAVE')}: REBOOT_MAX_PER_WAVE caps the reboots of each wave of ROLLOUT_WAVES within REBOOT_MAX: set both, or remove it`);
  }
  if ((config.cacheStore === '') !== (config.cacheUrl === '')) {
    const [set, missing] = config.cacheStore ? ['CACHE_STORE', 'CACHE_URL'] : ['CACHE_URL', 'CACHE_STORE'];
    problems.push(`${at(set)}: ${set} needs ${missing}: CACHE_STORE is where deploy copies the prebuilt closures, CACHE_URL where the machines download them from`);
  }
  return problems;
}

/**
 * What every command says of a directory without config.sh (a fleet always
 * has one): the same words whether the command reads config.sh or not.
 */
export function notAFleetError(fleetDir: string): UserError {
  return new UserError(
    `${path.join(fleetDir, 'config.sh')} does not exist: ${fleetDir} is not a bento fleet directory`,
    'run `bento init` to create one, or give your fleet directory with --dir or BENTO_DIR',
  );
}

/** Throws notAFleetError unless `fleetDir` holds config.sh: for a command that does not read it. */
export function requireFleetDirectory(fleetDir: string): void {
  if (!existsSync(path.join(fleetDir, 'config.sh'))) throw notAFleetError(fleetDir);
}

export interface LoadConfigOptions {
  /**
   * Ask systemd-analyze about the calendars too (the default): for the
   * commands that write them into units (generate, deploy, build, through
   * the fleet). A command that only reads config.sh (status, prune, trigger,
   * rollout, notify) needs bento's own check alone, and starts no process
   * for it on every run.
   */
  askSystemd?: boolean;
}

/** The most config.sh may hold: settings take far less. */
const CONFIG_LIMIT = 16 * 1024 * 1024;

/**
 * The text of `file`, opened without waiting and only when it is a regular
 * file: a fleet writer could put a FIFO in config.sh's place (every command
 * run as root, status's timer too, would wait for a writer forever) or a
 * link to /dev/zero (a read that never ends); and read no further than
 * CONFIG_LIMIT, as one they grow while it is read would be
 * (util/read-at-most.ts, readRegularFileSync); nor through a link to a file
 * out of the fleet directory that not everyone may read.
 */
function readRegularText(file: string, fleetDir: string): string {
  try {
    // Confined: a link to a file of root's would show its first line in the syntax error (util/confined-file.ts).
    return readRegularFileSync(file, CONFIG_LIMIT, { confined: { boundary: realpathSync(fleetDir) } }).bytes.toString('utf8');
  } catch (error) {
    if (!(error instanceof IrregularFileError)) throw error;
    if (error.reason === 'not a regular file') throw new UserError(`${file} is not a regular file: bento reads the fleet's settings from it`);
    if (error.reason === 'not to be shown') throw new UserError(notToBeShownMessage(file, "the fleet's settings", error.why));
    throw new UserError(`${file} holds more than ${CONFIG_LIMIT / 1024 / 1024} MiB: bento reads the fleet's settings from it, which take far less`);
  }
}

/** Reads `<fleetDir>/config.sh`. */
export async function loadConfig(fleetDir: string, options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const file = path.join(fleetDir, 'config.sh');
  let text: string;
  try {
    text = readRegularText(file, fleetDir);
  } catch (error) {
    if (error instanceof UserError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notAFleetError(fleetDir);
    throw new UserError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const label = path.relative(process.cwd(), file) || 'config.sh';
  const { config, warnings, seen } = parseConfigLines(text, label);
  const problems = options.askSystemd === false ? [] : await systemdCalendarProblems(config, seen, label);
  if (problems.length > 0) throw new UserErrors(problems);
  return { config, warnings };
}
