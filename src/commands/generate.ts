/**
 * `bento generate`: renders generated/ from config.sh, hosts/ and keys/ and
 * says what changed. A host directory that fails leaves its files (and the
 * server files) as they were, and the command fails naming it.
 */
import { readFlakeNamesCache, saveFlakeNamesCache } from '../chroot/flake-names-cache.js';
import { UserError } from '../errors.js';
import { skippedHostDirMessage, type BrokenHost, type Fleet } from '../fleet/fleet.js';
import { generateOutput } from '../render/generate.js';
import path from 'node:path';
import { positiveInteger } from './shared/flags.js';
import { generateRecordOf } from './shared/generate-record-store.js';
import { defineCommand, runsAsRoot, tell, warnUser, type CommandIO } from './io.js';

export interface GenerateCommandOptions {
  fleetDir: string;
  /** Write there instead of <fleetDir>/generated. */
  outputDir?: string;
  /** Flakes evaluated at once. */
  jobs?: number;
}

export async function generateCommand(options: GenerateCommandOptions, io: CommandIO): Promise<number> {
  // As root, the flakes' system names known to deploy's cache of them
  // (chroot/flake-names-cache.ts, keyed by each flake's content) are taken
  // from it, as deploy does, instead of starting Nix; names evaluated are
  // saved there for the next run.
  const asRoot = runsAsRoot(io);
  const result = await generateOutput({ ...options, record: generateRecordOf(io), namesCache: asRoot ? (config) => readFlakeNamesCache(config.chrootDir) : undefined });
  if (asRoot && result.fleet.flakeNames) saveFlakeNamesCache(result.fleet.config.chrootDir, result.fleet.flakeNames);
  await reportSkippedHostDirs(io, result.fleet);
  for (const message of result.fleet.warnings) await warnUser(io, message);
  const { written, unchanged, removed } = result.summary;
  await tell(io, `${result.outputDir}: ${result.fleet.systems.length} systems, ${written.length} files written, ${unchanged} unchanged, ${removed.length} removed`);
  if (!result.complete) {
    await reportBrokenHosts(io, result.fleet.brokenHosts);
    const count = result.fleet.brokenHosts.length;
    throw new UserError(
      `${count} host director${count === 1 ? 'y' : 'ies'} failed; the other systems were generated, server/ and the failed systems' files were left as they were`,
    );
  }
  return 0;
}

/** One line for each directory of hosts/ that is no machine (hosts/common), skipped. */
export async function reportSkippedHostDirs(io: CommandIO, fleet: Pick<Fleet, 'skippedHostDirs'>): Promise<void> {
  for (const name of fleet.skippedHostDirs) await tell(io, skippedHostDirMessage(name));
}

/**
 * `error: hosts/x/flake.nix: <why>` for each host directory that failed to
 * load; Nix's lines that place the error (the file, line and column, the
 * source with a caret) follow it, indented, as Nix wrote them.
 */
export async function reportBrokenHosts(io: CommandIO, brokenHosts: readonly BrokenHost[]): Promise<void> {
  for (const broken of brokenHosts) {
    const [first = '', ...more] = broken.message.replace(/^error: /, '').split('\n');
    await tell(io, [`error: ${broken.place}: ${first}`, ...more.map((line) => `  ${line}`)].join('\n'));
  }
}

interface GenerateFlags {
  output?: string;
  jobs?: number;
}

export const command = defineCommand<GenerateFlags, GenerateCommandOptions>({
  define(command) {
    command
      .option('-o, --output <dir>', 'write there instead of <fleet>/generated')
      .option('-j, --jobs <n>', 'flakes evaluated at once (default: number of cores)', positiveInteger);
  },
  options: ({ flags }, world) => ({ fleetDir: world.fleetDir, outputDir: flags.output ? path.resolve(world.cwd, flags.output) : undefined, jobs: flags.jobs }),
  run: generateCommand,
});
