/**
 * `bento trigger [--all] [--timeout S] NAME...`: asks machines to poll now,
 * so that a deploy reaches the ones that listen in seconds instead of at
 * their next timer. Each machine's listen-update socket (LISTEN_PORT, the
 * client module's services.bento.listen) answers an HTTP GET by starting
 * bento-upgrade and streaming its journal (docs/protocol.md §6,
 * "Triggering"); bento reads the answer's status line, which the machine
 * sends before it starts the update, and hangs up: the update runs on.
 *
 * Machines are asked in parallel, each within --timeout seconds. Where a
 * machine is found: fleet/trigger-addresses.ts. One line per machine,
 * `triggered` or `unreachable` (with why), as answers come; a machine that
 * cannot be reached simply catches up on its timer.
 *
 * Exit status: 0 every machine was triggered, 2 some could not be (the
 * others were), 1 errors (a bad name, no names).
 */
import { loadConfig, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { systemNameProblem } from '../protocol/names.js';
import { listChrootDir } from '../protocol/layout.js';
import { triggerTarget, type TriggerTarget } from '../fleet/trigger-addresses.js';
import { mapLimit } from '../util/concurrency.js';
import { requestStatusLine } from '../util/http-status-line.js';
import { positiveInteger, selectedNames } from './shared/flags.js';
import { defineCommand, printLine, tell, warnUser, type CommandIO } from './io.js';

export interface TriggerCommandOptions {
  fleetDir: string;
  /** From the arguments and NAME. */
  names: string[];
  /** Every system of CHROOT_DIR. */
  all?: boolean;
  /** Per machine, connection included; DEFAULT_TRIGGER_TIMEOUT when absent. */
  timeoutSeconds?: number;
  /** Machines asked at once. */
  concurrency?: number;
}

export type TriggerOutcome = { target: TriggerTarget; triggered: true } | { target: TriggerTarget; triggered: false; reason: string };

/** Seconds; the --timeout flag's help below shows it. */
export const DEFAULT_TRIGGER_TIMEOUT = 5;
const DEFAULT_CONCURRENCY = 128;
/** The answer of the listen-update socket: `HTTP/1.0 200 OK` (the client module's listen-update@ script). */
const ACCEPTED = /^HTTP\/1\.[01] 200\b/;

export async function triggerCommand(options: TriggerCommandOptions, io: CommandIO): Promise<number> {
  const { config, warnings } = await loadConfig(options.fleetDir, { askSystemd: false });
  for (const warning of warnings) await warnUser(io, warning);
  const names = selectNames(options, config);
  const targets = names.map((name) => triggerTarget(name, config));
  const outcomes = await triggerMachines(targets, options.timeoutSeconds ?? DEFAULT_TRIGGER_TIMEOUT, options.concurrency ?? DEFAULT_CONCURRENCY, (outcome) =>
    printLine(io, outcome.triggered ? `${outcome.target.name}: triggered (${outcome.target.address})` : `${outcome.target.name}: unreachable (${outcome.target.address}: ${outcome.reason})`),
  );
  const missed = outcomes.filter((outcome) => !outcome.triggered).length;
  await tell(io, `trigger: ${outcomes.length - missed} triggered, ${missed} unreachable${missed > 0 ? ' (they poll on their timer as usual)' : ''}`);
  return missed > 0 ? 2 : 0;
}

/** Asks every target at once (at most `concurrency` connections); `report` hears each outcome as it comes. */
export async function triggerMachines(targets: readonly TriggerTarget[], timeoutSeconds: number, concurrency: number, report: (outcome: TriggerOutcome) => void): Promise<TriggerOutcome[]> {
  return mapLimit(targets, concurrency, async (target) => {
    const answer = await requestStatusLine({ host: target.host, port: target.port, timeoutMs: timeoutSeconds * 1000, userAgent: 'bento trigger' });
    const outcome: TriggerOutcome = answer.ok
      ? ACCEPTED.test(answer.statusLine)
        ? { target, triggered: true }
        : { target, triggered: false, reason: `not a bento listen-update socket: ${JSON.stringify(answer.statusLine.slice(0, 60))}` }
      : { target, triggered: false, reason: answer.reason };
    report(outcome);
    return outcome;
  });
}

/**
 * The names asked for, checked: each must be a possible system name, and,
 * when CHROOT_DIR is on this machine, a system published there (a typo is
 * an error, not an "unreachable"). --all: every system of CHROOT_DIR.
 */
function selectNames(options: TriggerCommandOptions, config: Config): string[] {
  const published = listSystems(config.chrootDir);
  if (options.all) {
    if (!published) throw new UserError(`--all lists the systems of CHROOT_DIR, and ${config.chrootDir} cannot be read here`, 'name the machines instead');
    return [...published].sort();
  }
  if (options.names.length === 0) throw new UserError('name the machines to trigger (bento trigger NAME...), or use --all');
  const names = [...new Set(options.names)];
  for (const name of names) {
    const problem = systemNameProblem(name);
    if (problem) throw new UserError(problem);
    if (published && !published.has(name)) throw new UserError(`${name} is not a system of this fleet (no ${config.chrootDir}/${name})`, 'bento status lists the systems');
  }
  return names;
}

/** The systems of CHROOT_DIR; undefined when it is not on this machine (trigger then trusts the names). */
function listSystems(chrootDir: string): Set<string> | undefined {
  try {
    return new Set(listChrootDir(chrootDir).systems.map((system) => system.name));
  } catch {
    return undefined;
  }
}

export const command = defineCommand<{ all?: boolean; timeout?: number }, TriggerCommandOptions>({
  define(command) {
    command
      .argument('[name...]', 'the machines (also: NAME="a b")')
      .option('-a, --all', 'every system of CHROOT_DIR')
      .option('-t, --timeout <seconds>', `seconds to wait for each machine's answer (default: ${DEFAULT_TRIGGER_TIMEOUT})`, positiveInteger)
      .addHelpText(
        'after',
        `
A machine is reached at its system name (a DNS name), with TRIGGER_DOMAIN
appended when set, on LISTEN_PORT; TRIGGER_ADDRESSES="name=host[:port] …" in
config.sh gives others. Exit status: 0 all triggered, 2 some unreachable
(they poll on their timer as usual), 1 errors.`,
      );
  },
  options: ({ args, flags }, world) => ({ fleetDir: world.fleetDir, names: [...selectedNames(world, []), ...(args[0] as string[])], all: flags.all, timeoutSeconds: flags.timeout }),
  run: triggerCommand,
});
