/**
 * `bento prune [--keep N] [--dry-run] [NAME...]`: bounded logs on the server
 * (docs/protocol.md §5, "Retention"). Keeps at most LOG_KEEP logs per
 * machine, removing the oldest by the time the server received them, never
 * one `bento status` needs (status/prune-logs.ts). deploy prunes the systems
 * it handles; this command is for a timer (the NixOS server module's
 * services.bento-server.prune) or cron on a server that is not NixOS.
 *
 * Exit status 0; 1 when some system could not be pruned (named on stderr).
 */
import { loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { systemNameProblem } from '../protocol/names.js';
import { listChrootDir } from '../protocol/layout.js';
import { pruneLogs, type SystemPruning } from '../status/prune-logs.js';
import { nonNegativeInteger, selectedNames } from './shared/flags.js';
import { defineCommand, printLine, tell, warnUser, type CommandIO } from './io.js';

export interface PruneCommandOptions {
  fleetDir: string;
  /** Only these systems (NAME); empty: every system of CHROOT_DIR. */
  names: string[];
  /** Overrides LOG_KEEP. */
  keep?: number;
  dryRun?: boolean;
}

export async function pruneCommand(options: PruneCommandOptions, io: CommandIO): Promise<number> {
  const { config, warnings } = await loadConfig(options.fleetDir, { askSystemd: false });
  for (const warning of warnings) await warnUser(io, warning);
  const keep = options.keep ?? config.logKeep;
  if (keep === 0) {
    await tell(io, 'prune: LOG_KEEP=0: every log is kept');
    return 0;
  }
  const present = listChroot(config.chrootDir);
  for (const name of options.names) {
    const problem = systemNameProblem(name);
    if (problem) throw new UserError(problem);
    if (!present.has(name)) throw new UserError(`${name} has no directory in CHROOT_DIR ${config.chrootDir}`, 'check the name (bento status lists the systems)');
  }
  const results = await pruneLogs({ chrootDir: config.chrootDir, keep, names: options.names.length > 0 ? options.names : undefined, dryRun: options.dryRun, sizeLimit: config.logSizeLimit });
  await reportPruning(io, results, keep, options.dryRun);
  return results.some((system) => system.problems.length > 0) ? 1 : 0;
}

/** One line per system that lost logs, the problems, and a summary (deploy prints only a count: pruning is a side step there). */
export async function reportPruning(io: CommandIO, results: readonly SystemPruning[], keep: number, dryRun = false): Promise<void> {
  let removed = 0;
  for (const system of results) {
    if (system.removed.length > 0) {
      removed += system.removed.length;
      printLine(io, `  ${system.name}: ${system.removed.length} old log${system.removed.length === 1 ? '' : 's'} ${dryRun ? 'to remove' : 'removed'}, ${system.kept} kept`);
    }
    for (const problem of system.problems) await warnUser(io, problem);
  }
  const systems = results.filter((system) => system.removed.length > 0).length;
  await tell(io, `prune: ${removed} log${removed === 1 ? '' : 's'} ${dryRun ? 'to remove' : 'removed'} from ${systems} system${systems === 1 ? '' : 's'} (LOG_KEEP=${keep})`);
}

/** The systems of CHROOT_DIR (links too: the prune names why it does not follow one). */
function listChroot(chrootDir: string): Set<string> {
  try {
    return new Set(listChrootDir(chrootDir).systems.map((system) => system.name));
  } catch (error) {
    throw new UserError(`cannot read CHROOT_DIR ${chrootDir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'check CHROOT_DIR in config.sh');
  }
}

export const command = defineCommand<{ keep?: number; dryRun?: boolean }, PruneCommandOptions>({
  define(command) {
    command
      .argument('[name...]', 'only these systems (also: NAME="a b"); default: all')
      .option('--keep <n>', 'keep this many logs per machine instead of LOG_KEEP', nonNegativeInteger)
      .option('--dry-run', 'list what would be removed, remove nothing')
      .addHelpText(
        'after',
        `
deploy prunes the systems it publishes; run this from a timer for the rest
(services.bento-server.prune on NixOS, or cron:
  17 * * * * root bento --dir /path/to/fleet prune)`,
      );
  },
  options: ({ args, flags }, world) => ({ fleetDir: world.fleetDir, names: [...selectedNames(world, []), ...(args[0] as string[])], keep: flags.keep, dryRun: flags.dryRun }),
  run: pruneCommand,
});
