/**
 * The command line: the commander program, flags and environment variables
 * read into each command's typed options, and the one place that turns an
 * outcome into an exit status (runCli; main.ts sets it on the process).
 *
 * Each command's module is loaded only when it runs (await import): the
 * start-up of `bento status` then pays neither for Handlebars nor for execa.
 * This file imports nothing else of bento but its own helpers (errors for
 * reporting, progress and the terminal for io); the lint rule in
 * eslint.config.js keeps it so.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { CommandIO } from './commands/io.js';
import type { DeployCommandOptions } from './commands/deploy.js';
import { MissingToolError, ToolError, UserError, UserErrors } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';
import { createProgress } from './progress.js';
import { sanitize } from './util/sanitize.js';

const commands = {
  init: () => import('./commands/init.js'),
  generate: () => import('./commands/generate.js'),
  deploy: () => import('./commands/deploy.js'),
  build: () => import('./commands/build.js'),
  diff: () => import('./commands/diff.js'),
  flakeUpdate: () => import('./commands/flake-update.js'),
  status: () => import('./commands/status.js'),
  prune: () => import('./commands/prune.js'),
  trigger: () => import('./commands/trigger.js'),
  completion: () => import('./commands/completion.js'),
  rollout: () => import('./commands/rollout.js'),
};

const DEFAULT_JOBS = os.cpus().length;

const version = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Splits NAME="a b,c" into names: spaces or commas, as the original bento took them. */
export function parseNameList(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((name) => name !== '');
}

/** The fleet directory: --dir, else BENTO_DIR, else the current directory. */
function fleetDir(program: Command): string {
  const dir = (program.opts().dir as string | undefined) ?? process.env.BENTO_DIR ?? process.cwd();
  return path.resolve(dir);
}

/** bento's directory for what it may forget: $XDG_CACHE_HOME/bento, else ~/.cache/bento. */
function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'bento');
}

/** commander prints the option and this message, then exits 1. */
function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** Like positiveInteger, 0 included. */
function nonNegativeInteger(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

interface SelectionFlags {
  name?: string[];
  jobs?: number;
  verbose?: boolean;
  builders?: string;
  maxJobs?: string;
}

/** Adds the options shared by deploy and build: --name, --jobs, --verbose, --builders, --max-jobs. */
function withSelectionOptions(command: Command): Command {
  return command
    .option('-n, --name <name...>', 'only these systems (also: NAME="a b"); default: all')
    .option('-j, --jobs <n>', 'flakes built at once (default: number of cores)', positiveInteger)
    .option('-v, --verbose', "show Nix's output as it builds (also: VERBOSE=1)")
    .option('--builders <spec>', "passed to Nix: build on these remote builders (Nix's --builders)")
    .option('--max-jobs <n>', "passed to Nix: its --max-jobs (0: only remote builders)");
}

function selectedNames(flags: SelectionFlags): string[] {
  return [...parseNameList(process.env.NAME), ...(flags.name ?? []).flatMap((name) => parseNameList(name))];
}

function nixOptions(flags: SelectionFlags, evaluateOnly?: boolean): DeployCommandOptions['nix'] {
  return { evaluateOnly, verbose: Boolean(flags.verbose || process.env.VERBOSE), builders: flags.builders, maxJobs: flags.maxJobs };
}

async function askOnTerminal(question: string): Promise<string> {
  const reader = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await reader.question(question);
  } catch {
    return '';
  } finally {
    reader.close();
  }
}

/** The io of a real run: the process's streams, a status line on stdout, questions on the terminal. */
export function processIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, progress: createProgress(process.stdout), ask: askOnTerminal };
}

/** What the program's help shows that lives below the commands, loaded by runCli. */
export interface LoadedHelp {
  /** The config.sh keys, one line each (config/describe-keys.ts). */
  configKeysHelp?: string;
}

/**
 * The program. Each action stores its command's exit status in `outcome`;
 * nothing here exits, so a test can build and run it.
 */
export function buildProgram(io: CommandIO = processIO(), outcome: { exitCode: number } = { exitCode: 0 }, loaded: LoadedHelp = {}): Command {
  const program = new Command();
  const done = (code: number) => {
    outcome.exitCode = code;
  };
  program
    .name('bento')
    .description('Keep a fleet of NixOS machines up to date: build here, publish over SFTP, let each machine pull.')
    .version(version)
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .addOption(new Option('-d, --dir <path>', 'the fleet directory (default: $BENTO_DIR, else the current directory)'))
    .showHelpAfterError('(run `bento --help` for the commands, `bento <command> --help` for their options)')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Environment:
  BENTO_DIR     the fleet directory, to run bento from anywhere
  NAME          deploy, build, diff: only these systems ("a b" or "a,b")
  VERBOSE       deploy, build: show Nix's output as it builds
  TARGET_IP     build test|switch: apply on that machine ([user@]host)
  NIX_SSHOPTS   ssh options for TARGET_IP, e.g. -p2222
  NIX_PATH      nixpkgs for systems without flakes (as nixos-rebuild uses it)
  BENTO_DEBUG   1: print every external command before running it
  NO_COLOR      no colours in the output

config.sh keys (KEY=VALUE; parsed, never executed; docs/config.md):
${loaded.configKeysHelp ?? ''}

Start with \`bento init\` in an empty directory, then \`bento generate\`.`,
    );

  program
    .command('init')
    .description('create a new fleet here (or in --dir): config.sh, hosts/example, utils/bento.nix, keys/')
    .action(async () => {
      const { initCommand } = await commands.init();
      done(await initCommand({ fleetDir: fleetDir(program) }, io));
    });

  program
    .command('generate')
    .description('render generated/: client scripts and units per system, SFTP server configuration')
    .option('-o, --output <dir>', 'write there instead of <fleet>/generated')
    .option('-j, --jobs <n>', 'flakes evaluated at once (default: number of cores)', positiveInteger)
    .action(async (options: { output?: string; jobs?: number }) => {
      const { generateCommand } = await commands.generate();
      done(
        await generateCommand(
          { fleetDir: fleetDir(program), outputDir: options.output ? path.resolve(options.output) : undefined, jobs: options.jobs },
          io,
        ),
      );
    });

  withSelectionOptions(
    program
      .command('deploy')
      .description('build what changed and publish each system into its SFTP chroot (as root); with ROLLOUT_WAVES, the first wave only')
      .option('--all', 'with ROLLOUT_WAVES: publish every changed system at once, ending the rollout in progress'),
  ).action(async (flags: SelectionFlags & { all?: boolean }) => {
    const { deployCommand } = await commands.deploy();
    done(
      await deployCommand(
        { fleetDir: fleetDir(program), names: selectedNames(flags), jobs: flags.jobs ?? DEFAULT_JOBS, nix: nixOptions(flags), all: Boolean(flags.all) },
        io,
      ),
    );
  });

  withSelectionOptions(
    program
      .command('build')
      .description('dry-build or build the systems here; test or switch one of them, here or on TARGET_IP')
      .argument('[action]', 'dry-build (or dry-run), build, test or switch', 'build')
      .option('-y, --yes', 'test/switch: do not ask for the typed confirmation')
      .option('--target-ip <[user@]host>', 'test/switch: apply on that machine over SSH (also: TARGET_IP; ssh options in NIX_SSHOPTS)'),
  ).action(async (word: string, flags: SelectionFlags & { yes?: boolean; targetIp?: string }) => {
    const { buildCommand } = await commands.build();
    done(
      await buildCommand(
        {
          fleetDir: fleetDir(program),
          action: word,
          names: selectedNames(flags),
          jobs: flags.jobs ?? DEFAULT_JOBS,
          nix: nixOptions(flags, false),
          yes: Boolean(flags.yes),
          targetIp: flags.targetIp ?? (process.env.TARGET_IP || undefined),
        },
        io,
      ),
    );
  });

  program
    .command('diff')
    .description("for each flake system: what changes between the version it runs and the one it should run (nvd or nix store diff-closures)")
    .option('-n, --name <name...>', 'only these systems (also: NAME="a b"); default: all')
    .action(async (flags: { name?: string[] }) => {
      const { diffCommand } = await commands.diff();
      const color = Boolean(io.stdout.isTTY) && !process.env.NO_COLOR;
      done(await diffCommand({ fleetDir: fleetDir(program), names: selectedNames(flags), color }, io));
    });

  program
    .command('flake-update')
    .description('update the flake.lock of every flake under hosts/: all inputs, or only <input>')
    .argument('[input]', 'only this input (e.g. nixpkgs, or home-manager/nixpkgs)')
    .action(async (input: string | undefined) => {
      const { flakeUpdateCommand } = await commands.flakeUpdate();
      done(await flakeUpdateCommand({ fleetDir: fleetDir(program), input }, io));
    });

  program
    .command('status')
    .description('the state of every machine, from the logs they uploaded (redraws on changes on a terminal)')
    .option('--once', 'print once and exit, even on a terminal')
    .option('--json', 'print JSON (one object per system) instead of the table')
    .option('--prometheus <file>', 'also write node-exporter textfile metrics to <file> (atomically)')
    .option('--no-cache', 'read every log again, not only the logs/ directories that changed since the last run')
    .addHelpText(
      'after',
      `
Exit status: 0 when no system is failing, rollbacked or has extra logs,
2 when at least one is, 1 on errors; a cron job or a monitoring check can
use it as it is.`,
    )
    .action(async (options: { once?: boolean; json?: boolean; prometheus?: string; cache: boolean }) => {
      const { statusCommand } = await commands.status();
      done(
        await statusCommand(
          {
            fleetDir: fleetDir(program),
            json: options.json,
            once: options.once,
            prometheusFile: options.prometheus ? path.resolve(options.prometheus) : undefined,
            isTTY: Boolean(io.stdout.isTTY),
            noColor: Boolean(process.env.NO_COLOR),
            cacheDir: options.cache ? cacheDir() : undefined,
          },
          io,
        ),
      );
    });

  program
    .command('prune')
    .description('remove the oldest logs of each machine on the server, keeping LOG_KEEP (never one status needs)')
    .argument('[name...]', 'only these systems (also: NAME="a b"); default: all')
    .option('--keep <n>', 'keep this many logs per machine instead of LOG_KEEP', nonNegativeInteger)
    .option('--dry-run', 'list what would be removed, remove nothing')
    .addHelpText(
      'after',
      `
deploy prunes the systems it publishes; run this from a timer for the rest
(services.bento-server.prune on NixOS, or cron:
  17 * * * * root bento --dir /path/to/fleet prune)`,
    )
    .action(async (names: string[], options: { keep?: number; dryRun?: boolean }) => {
      const { pruneCommand } = await commands.prune();
      done(await pruneCommand({ fleetDir: fleetDir(program), names: [...parseNameList(process.env.NAME), ...names], keep: options.keep, dryRun: options.dryRun }, io));
    });

  program
    .command('trigger')
    .description('ask machines to poll now, through their listen-update socket (LISTEN_PORT); the others catch up on their timer')
    .argument('[name...]', 'the machines (also: NAME="a b")')
    .option('-a, --all', 'every system of CHROOT_DIR')
    .option('-t, --timeout <seconds>', "seconds to wait for each machine's answer (default: 5)", positiveInteger)
    .addHelpText(
      'after',
      `
A machine is reached at its system name (a DNS name), with TRIGGER_DOMAIN
appended when set, on LISTEN_PORT; TRIGGER_ADDRESSES="name=host[:port] …" in
config.sh gives others. Exit status: 0 all triggered, 2 some unreachable
(they poll on their timer as usual), 1 errors.`,
    )
    .action(async (names: string[], options: { all?: boolean; timeout?: number }) => {
      const { triggerCommand } = await commands.trigger();
      done(
        await triggerCommand(
          { fleetDir: fleetDir(program), names: [...parseNameList(process.env.NAME), ...names], all: options.all, timeoutSeconds: options.timeout },
          io,
        ),
      );
    });

  program
    .command('rollout')
    .description('the staged rollout of ROLLOUT_WAVES: status, advance to the next wave, resume after a halt, abort')
    .argument('<action>', 'status, advance, resume or abort')
    .option('--json', 'status: print JSON')
    .option('--revert', 'abort: give the current wave its previous configuration back')
    .addHelpText(
      'after',
      `
advance publishes the next wave once every system of the current one
reported success for its new configuration; it halts (exit 1) when one
reported a failure or rollback, or the wave did not report within
ROLLOUT_WAIT. It is safe to run from a timer.`,
    )
    .action(async (action: string, options: { json?: boolean; revert?: boolean }) => {
      const { rolloutCommand } = await commands.rollout();
      done(await rolloutCommand({ fleetDir: fleetDir(program), action, json: options.json, revert: options.revert }, io));
    });

  program
    .command('completion')
    .description('print the shell completion script: eval "$(bento completion bash)" in ~/.bashrc, or zsh in ~/.zshrc')
    .argument('<shell>', 'bash or zsh')
    .action(async (shell: string) => {
      const { completionCommand } = await commands.completion();
      done(await completionCommand({ shell, program }, io));
    });

  return program;
}

/** Prints an error the way its type asks for and returns the exit status. */
export function reportError(error: unknown, stderr: CommandIO['stderr'] = process.stderr): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof UserErrors) {
    for (const problem of error.problems) stderr.write(`bento: error: ${sanitize(problem)}\n`);
    return 1;
  }
  if (error instanceof UserError) {
    stderr.write(`bento: error: ${sanitize(error.message)}\n`);
    if (error.hint) stderr.write(`  ${error instanceof MissingToolError ? 'install it: ' : ''}${error.hint}\n`);
    return 1;
  }
  if (error instanceof ToolError) {
    stderr.write(`bento: error: ${sanitize(error.message)}\n  command: ${sanitize(error.command)}\n`);
    if (error.stderrTail) stderr.write(`${sanitize(error.stderrTail).replace(/^/gm, '  | ')}\n`);
    return 1;
  }
  stderr.write(`bento: internal error (this is a bug in bento, please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

/** Runs the command line `argv` (as process.argv: node, script, arguments…) and returns the exit status. */
export async function runCli(argv: readonly string[], io: CommandIO = processIO()): Promise<number> {
  const outcome = { exitCode: 0 };
  const { configKeysHelp } = await import('./commands/shared/config-keys.js');
  const program = buildProgram(io, outcome, { configKeysHelp: configKeysHelp() }).exitOverride();
  try {
    await program.parseAsync([...argv]);
    return outcome.exitCode;
  } catch (error) {
    return reportError(error, io.stderr);
  }
}
