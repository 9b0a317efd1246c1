/**
 * `bento status [--json] [--once] [--prometheus FILE]`: the fleet at a glance
 * (docs/protocol.md, "Status"). Prints once, as a table or JSON; on an interactive terminal
 * (and without --once or --json) redraws on every change until Ctrl-C.
 *
 * Exit status, so cron and monitoring can act on it: 0 when no system is
 * failing, silent, rollbacked or has extra logs; 2 when at least one is; 1 is left
 * for errors (an unreadable CHROOT_DIR, an unwritable --prometheus file),
 * which are thrown to the CLI. In watch mode the status of the last drawing
 * is returned.
 */
import type { Writable } from 'node:stream';
import { DEFAULTS, loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { LogCache, logCacheFile } from '../status/log-cache.js';
import { readFleetReport, type FleetReport } from '../status/report.js';
import { renderJson } from '../status/render-json.js';
import { renderPrometheus } from '../status/render-prometheus.js';
import { renderTable } from '../status/render-table.js';
import { decideExitStatus } from '../status/states.js';
import { describeRollout } from '../rollout/decision.js';
import { watchChroot } from '../status/watch.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { sanitize } from '../util/sanitize.js';
import { writeText } from '../util/write-stream.js';
import path from 'node:path';
import { hooksOf, type Hook } from '../notify/deliver.js';
import { fleetViewOf } from '../notify/fleet-view.js';
import { notifyExclusively } from '../notify/notify.js';
import { defineCommand, runsAsRoot, warnUser, type CommandIO, type CommandWorld } from './io.js';

export interface StatusOptions {
  /** The fleet: its config.sh says where CHROOT_DIR is. */
  fleetDir?: string;
  /** Read this CHROOT_DIR instead of the fleet's (tests, a copy of the chroots). */
  chrootDir?: string;
  /** Logs bigger than this are not read; with chrootDir, the default LOG_SIZE_LIMIT unless set. */
  logSizeLimit?: number;
  /** SILENT_AFTER in seconds; with chrootDir, its default unless set. */
  silentAfter?: number;
  json?: boolean;
  once?: boolean;
  /** Also write node-exporter textfile metrics there (atomically), on every drawing. */
  prometheusFile?: string;
  /** stdout is a terminal: colours, and watch mode unless once or json. */
  isTTY: boolean;
  /** NO_COLOR is set (non-empty). */
  noColor: boolean;
  /** Fixed time for elapsed times (tests); the clock otherwise. */
  now?: Date;
  /** Ends watch mode; SIGINT does too. */
  signal?: AbortSignal;
  /**
   * Where status remembers what it read of each logs/ directory, to read
   * only those that changed next time (status/log-cache.ts); none: every
   * log is read.
   */
  cacheDir?: string;
}

/** What the report functions need: the options with CHROOT_DIR known. */
interface StatusRun extends StatusOptions {
  chrootDir: string;
  /** On a terminal, as root: the alerts are sent on every refresh (notify/). */
  hooks?: Hook[];
  logSizeLimit?: number;
  silentAfter: number;
  stdout: Writable;
  stderr: Writable;
  /** What was read before; in watch mode, one in memory at least, which saves rereading between refreshes. */
  cache: LogCache | undefined;
}

type Report = FleetReport;

export async function statusCommand(statusOptions: StatusOptions, io: CommandIO): Promise<number> {
  const chroot = await chrootOf(statusOptions, io);
  const cacheKey = `log-size-limit=${chroot.logSizeLimit ?? DEFAULTS.logSizeLimit}`;
  const cache = LogCache.load(statusOptions.cacheDir === undefined ? undefined : logCacheFile(statusOptions.cacheDir, chroot.chrootDir), cacheKey);
  const options: StatusRun = { ...statusOptions, ...chroot, stdout: io.stdout, stderr: io.stderr, cache };
  if (cache.refused) await warnUser(io, `${sanitize(cache.refused)}: the status cache there is not used (its entries decide what status says); fix its owner and mode, or set XDG_CACHE_HOME`);
  if (options.isTTY && !options.once && !options.json) {
    try {
      return await watchStatus(options);
    } finally {
      cache.save();
    }
  }
  // Printing once, a cache with no file would be filled and thrown away (--no-cache): none.
  const report = await collectReport(cache.keeps ? options : { ...options, cache: undefined });
  cache.save();
  const nowMs = options.now?.getTime() ?? Date.now();
  await writeWarnings(options, report.warnings);
  if (options.prometheusFile) await writePrometheus(options.prometheusFile, report, nowMs);
  const text = options.json ? renderJson(report.statuses, report.rollout) : renderTable(report.statuses, { nowMs, color: options.isTTY && !options.noColor }) + rolloutLine(report) + removedLine(report);
  await writeText(options.stdout, text);
  return exitStatusOf(report);
}

function collectReport(options: StatusRun): Promise<Report> {
  const silence = { nowMs: options.now?.getTime() ?? Date.now(), silentAfterMs: options.silentAfter * 1000 };
  return readFleetReport(options.chrootDir, { logSizeLimit: options.logSizeLimit, cache: options.cache, silence });
}

function exitStatusOf(report: Report): number {
  return decideExitStatus(report.statuses, report.rollout?.status === 'halted');
}

/** Under the table: where the rollout in progress stands. */
function rolloutLine(report: Report): string {
  return report.rollout ? `${sanitize(describeRollout(report.rollout))}\n` : '';
}

/** Under the table: the systems that left the fleet (bento deploy took away what it published; their logs stay). */
function removedLine(report: Report): string {
  if (report.removed.length === 0) return '';
  return `removed from the fleet (their logs are kept): ${sanitize(report.removed.join(', '))}\n`;
}

/** Redraws in place on every change under CHROOT_DIR, and every second for the elapsed times. */
async function watchStatus(options: StatusRun): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  options.signal?.addEventListener('abort', onSigint, { once: true });
  if (options.signal?.aborted) controller.abort();
  // Its terminal gone without a hang-up (EIO: a window closed under setsid,
  // a pseudo-terminal's reader gone): nobody sees the screen any more, so
  // watching ends, as it did when such a write error ended the process
  // (runCli now keeps write errors from doing so: util/write-stream.ts).
  options.stdout.once('error', onSigint);

  let last: Report | undefined;
  let lastScreen = '';
  /** The alert hooks that failed at the last refresh, shown under the table. */
  let alertProblems: string[] = [];
  const draw = () => {
    if (!last) return;
    const nowMs = options.now?.getTime() ?? Date.now();
    const table = renderTable(last.statuses, { nowMs, color: !options.noColor });
    // Warnings are part of the screen here, under the table: written to
    // stderr they would be scrolled or erased by the next drawing.
    const warnings = [...last.warnings, ...alertProblems].map((warning) => `warning: ${sanitize(warning)}\n`).join('');
    // Cursor home, each line erased to its end, then the rest of the screen:
    // no blank flash between two drawings.
    const screen = `\x1b[H${(table + rolloutLine(last) + removedLine(last) + warnings).replace(/\n/g, '\x1b[K\n')}\x1b[J`;
    if (screen === lastScreen) return;
    lastScreen = screen;
    options.stdout.write(screen);
  };

  try {
    await watchChroot({
      chrootDir: options.chrootDir,
      signal: controller.signal,
      tick: draw,
      refresh: async () => {
        last = await collectReport(options);
        if (options.prometheusFile) await writePrometheus(options.prometheusFile, last, options.now?.getTime() ?? Date.now());
        if (options.hooks) alertProblems = await sendAlerts(options.chrootDir, options.hooks, last, options.now?.getTime() ?? Date.now());
        draw();
        return last.statuses.map((status) => status.name);
      },
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    options.signal?.removeEventListener('abort', onSigint);
    options.stdout.removeListener('error', onSigint);
  }
  return last ? exitStatusOf(last) : 0;
}

/** The alerts due (notify/), as `bento notify` sends them; what failed, as warnings. */
async function sendAlerts(chrootDir: string, hooks: readonly Hook[], report: Report, nowMs: number): Promise<string[]> {
  try {
    const outcomes = await notifyExclusively({ chrootDir, hooks, now: fleetViewOf(report, nowMs) });
    return (outcomes ?? []).filter((outcome) => outcome.result === 'failed').map((outcome) => `alert: ${outcome.hook}: ${outcome.error ?? 'failed'}; sent again at the next refresh`);
  } catch (error) {
    return [`alerts: ${(error as Error).message}`];
  }
}

async function writePrometheus(file: string, report: Report, nowMs: number): Promise<void> {
  try {
    // The next status run rewrites it: no flush.
    await writeFileAtomically(file, renderPrometheus(report.statuses, nowMs, report.rollout), 0o644, { durable: false });
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UserError(`cannot write the Prometheus file ${file}: ${why}`, 'its directory must exist and be writable');
  }
}

/** Warnings quote names the clients chose: sanitized, always. */
async function writeWarnings(options: StatusRun, warnings: readonly string[]): Promise<void> {
  if (warnings.length === 0) return;
  await writeText(options.stderr, warnings.map((warning) => `warning: ${sanitize(warning)}\n`).join(''));
}

/** CHROOT_DIR and the log size limit, from the options or the fleet's config.sh. */
async function chrootOf(options: StatusOptions, io: CommandIO): Promise<{ chrootDir: string; logSizeLimit?: number; silentAfter: number; hooks?: Hook[] }> {
  if (options.chrootDir !== undefined) return { chrootDir: options.chrootDir, logSizeLimit: options.logSizeLimit, silentAfter: options.silentAfter ?? DEFAULTS.silentAfter };
  if (options.fleetDir === undefined) throw new Error('statusCommand needs fleetDir or chrootDir');
  const { config, warnings } = await loadConfig(options.fleetDir, { askSystemd: false });
  for (const message of warnings) await warnUser(io, message);
  // The alerts go with the live view only where they can be recorded (root: CHROOT_DIR/.bento-alerts.json).
  const hooks = runsAsRoot(io) ? hooksOf(config) : [];
  return { chrootDir: config.chrootDir, logSizeLimit: options.logSizeLimit ?? config.logSizeLimit, silentAfter: options.silentAfter ?? config.silentAfter, ...(hooks.length > 0 ? { hooks } : {}) };
}

/** bento's directory for what it may forget: $XDG_CACHE_HOME/bento, else ~/.cache/bento. */
export function cacheDir(world: Pick<CommandWorld, 'env' | 'home'>): string {
  return path.join(world.env.XDG_CACHE_HOME || path.join(world.home, '.cache'), 'bento');
}

interface StatusFlags {
  once?: boolean;
  json?: boolean;
  prometheus?: string;
  cache: boolean;
}

export const command = defineCommand<StatusFlags, StatusOptions>({
  define(command) {
    command
      .option('--once', 'print once and exit, even on a terminal')
      .option('--json', 'print JSON (one object per system) instead of the table')
      .option('--prometheus <file>', 'also write node-exporter textfile metrics to <file> (atomically)')
      .option('--no-cache', 'read every log again, not only the logs/ directories that changed since the last run')
      .addHelpText(
        'after',
        `
Exit status: 0 when no system is failing, silent, rollbacked or has extra
logs, 2 when at least one is (or a staged rollout halted), 1 on errors; a
cron job or a monitoring check can use it as it is.`,
      );
  },
  options: ({ flags }, world) => ({
    fleetDir: world.fleetDir,
    json: flags.json,
    once: flags.once,
    prometheusFile: flags.prometheus ? path.resolve(world.cwd, flags.prometheus) : undefined,
    isTTY: world.isTTY,
    noColor: Boolean(world.env.NO_COLOR),
    cacheDir: flags.cache ? cacheDir(world) : undefined,
  }),
  run: statusCommand,
});
