#!/usr/bin/env node
/**
 * The command line: flags and environment variables in, one typed call into
 * the core per command, and the only place that prints errors and exits.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MissingToolError, ToolError, UserError, UserErrors } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';
import { info, sanitizeLines as sanitize, warn } from './log.js';
import { loadConfig } from './config/config.js';
import type { DeployResult } from './chroot/deploy-fleet.js';
import { parseNameList } from './fleet/select.js';
import type { NixBuildOptions } from './nix/build.js';
import { createInterface } from 'node:readline/promises';
import { createProgress } from './progress.js';
import { renderCompletion } from './completion.js';

// Each command loads its own modules when it runs (await import): the
// start-up of `bento status` then pays neither for Handlebars nor for execa.
const commands = {
  init: () => import('./commands/init.js'),
  generate: () => import('./commands/generate.js'),
  deploy: () => import('./chroot/deploy-fleet.js'),
  build: () => import('./build/run-build.js'),
  diff: () => import('./commands/diff.js'),
  flakeUpdate: () => import('./commands/flake-update.js'),
  status: () => import('./commands/status.js'),
};

const DEFAULT_JOBS = os.cpus().length;

const version = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The fleet directory: --dir, else BENTO_DIR, else the current directory. */
function fleetDir(program: Command): string {
  const dir = (program.opts().dir as string | undefined) ?? process.env.BENTO_DIR ?? process.cwd();
  return path.resolve(dir);
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CommanderError(1, 'bento.invalidArgument', `expected a positive whole number, got ${value}`);
  return n;
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

function nixOptions(flags: SelectionFlags, evaluateOnly?: boolean): NixBuildOptions {
  return { evaluateOnly, verbose: Boolean(flags.verbose || process.env.VERBOSE), builders: flags.builders, maxJobs: flags.maxJobs };
}

const progress = createProgress(process.stdout);

function printLine(line: string): void {
  progress.print(sanitize(line));
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

function reportDeploy(result: DeployResult): void {
  for (const broken of result.brokenHosts) info(`error: ${broken.place}: ${sanitize(broken.message)}`);
  info(`deploy: ${result.published.length} published, ${result.unchanged.length} unchanged, ${result.failed.length} failed`);
  for (const failure of result.failed) info(`  ${failure.name}: ${sanitize(failure.reason)}`);
  const problems = result.failed.length + result.brokenHosts.length;
  if (problems > 0) {
    throw new UserError(`${problems} problem${problems === 1 ? '' : 's'}: the systems above kept what they had published before`);
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('bento')
    .description('Keep a fleet of NixOS machines up to date: build here, publish over SFTP, let each machine pull.')
    .version(version)
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

config.sh keys (KEY=VALUE; parsed, never executed):
  CHROOT_DIR           where the machines' SFTP chroots live (required)
  REMOTE_IP            host name or address the machines reach this server at (required)
  REMOTE_PORT          SSH port of the SFTP server (22)
  TIMEOUT              seconds a machine waits for the connection (20)
  NOLOCALBUILD         1: deploy only evaluates, never builds (0)
  REBUILD_ARGS         extra nixos-rebuild arguments on the machines, e.g. "--fallback"
  UPDATE_CALENDAR      when machines poll, systemd OnCalendar (*:0/15)
  UPDATE_RANDOM_DELAY  random delay added to each poll (0: off)
  REBOOT_CALENDAR      when services.bento.reboot reboots into a new kernel (04:00)
  LISTEN_PORT          TCP port that triggers an update on a machine (51337)

Start with \`bento init\` in an empty directory, then \`bento generate\`.`,
    );

  program
    .command('init')
    .description('create a new fleet here (or in --dir): config.sh, hosts/example, utils/bento.nix, keys/')
    .action(async () => {
      const dir = fleetDir(program);
      const { init } = await commands.init();
      const files = await init({ fleetDir: dir });
      info(`created a bento fleet in ${dir}:`);
      for (const file of files) info(`  ${file}`);
      info('next: edit config.sh, put each machine under hosts/ and its root key in keys/<name>.pub, then run `bento generate`');
    });

  program
    .command('generate')
    .description('render generated/: client scripts and units per system, SFTP server configuration')
    .option('-o, --output <dir>', 'write there instead of <fleet>/generated')
    .option('-j, --jobs <n>', 'flakes evaluated at once (default: number of cores)', positiveInteger)
    .action(async (options: { output?: string; jobs?: number }) => {
      const { generate } = await commands.generate();
      const result = await generate({
        fleetDir: fleetDir(program),
        outputDir: options.output ? path.resolve(options.output) : undefined,
        jobs: options.jobs,
      });
      for (const message of result.fleet.warnings) warn(message);
      const { written, unchanged, removed } = result.summary;
      info(
        `${result.outputDir}: ${result.fleet.systems.length} systems, ${written.length} files written, ${unchanged} unchanged, ${removed.length} removed`,
      );
      if (!result.complete) {
        for (const broken of result.fleet.brokenHosts) info(`error: ${broken.place}: ${sanitize(broken.message)}`);
        throw new UserError(
          `${result.fleet.brokenHosts.length} host director${result.fleet.brokenHosts.length === 1 ? 'y' : 'ies'} failed; the other systems were generated, server/ and the failed systems' files were left as they were`,
        );
      }
    });

  withSelectionOptions(
    program
      .command('deploy')
      .description('build what changed and publish each system into its SFTP chroot (as root)'),
  ).action(async (flags: SelectionFlags) => {
    const { deployFleet } = await commands.deploy();
    const result = await deployFleet({
      fleetDir: fleetDir(program),
      names: selectedNames(flags),
      jobs: flags.jobs ?? DEFAULT_JOBS,
      nix: nixOptions(flags),
      print: printLine,
      progress,
    });
    reportDeploy(result);
  });

  withSelectionOptions(
    program
      .command('build')
      .description('dry-build or build the systems here; test or switch one of them, here or on TARGET_IP')
      .argument('[action]', 'dry-build (or dry-run), build, test or switch', 'build')
      .option('-y, --yes', 'test/switch: do not ask for the typed confirmation')
      .option('--target-ip <[user@]host>', 'test/switch: apply on that machine over SSH (also: TARGET_IP; ssh options in NIX_SSHOPTS)'),
  ).action(async (word: string, flags: SelectionFlags & { yes?: boolean; targetIp?: string }) => {
    const { parseBuildAction, runBuild } = await commands.build();
    const action = parseBuildAction(word);
    const dir = fleetDir(program);
    const result = await runBuild({
      fleetDir: dir,
      action,
      names: selectedNames(flags),
      jobs: flags.jobs ?? DEFAULT_JOBS,
      nix: nixOptions(flags, false),
      yes: Boolean(flags.yes),
      ask: askOnTerminal,
      targetIp: flags.targetIp ?? (process.env.TARGET_IP || undefined),
      print: printLine,
      progress,
      publish: async (name) => {
        if (process.getuid?.() !== 0) {
          info(`not root: ${name}'s files were not published; run \`bento deploy\` as root`);
          return;
        }
        const { deployFleet } = await commands.deploy();
        reportDeploy(await deployFleet({ fleetDir: dir, names: [name], jobs: 1, nix: nixOptions(flags), print: printLine }));
      },
    });
    const ok = result.results.length - result.failed.length;
    info(`build: ${ok} ok, ${result.failed.length} failed`);
    if (result.failed.length > 0) throw new UserError(`failed: ${result.failed.join(', ')}`);
  });

  program
    .command('diff')
    .description("for each flake system: what changes between the version it runs and the one it should run (nvd or nix store diff-closures)")
    .option('-n, --name <name...>', 'only these systems (also: NAME="a b"); default: all')
    .action(async (flags: { name?: string[] }) => {
      const { diffCommand } = await commands.diff();
      process.exitCode = await diffCommand({
        fleetDir: fleetDir(program),
        names: selectedNames(flags),
        stdout: process.stdout,
        stderr: process.stderr,
        color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
      });
    });

  program
    .command('flake-update')
    .description('update the flake.lock of every flake under hosts/: all inputs, or only <input>')
    .argument('[input]', 'only this input (e.g. nixpkgs, or home-manager/nixpkgs)')
    .action(async (input: string | undefined) => {
      const { flakeUpdateCommand } = await commands.flakeUpdate();
      process.exitCode = await flakeUpdateCommand({ fleetDir: fleetDir(program), input, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('status')
    .description('the state of every machine, from the logs they uploaded (redraws on changes on a terminal)')
    .option('--once', 'print once and exit, even on a terminal')
    .option('--json', 'print JSON (one object per system) instead of the table')
    .option('--prometheus <file>', 'also write node-exporter textfile metrics to <file> (atomically)')
    .addHelpText(
      'after',
      `
Exit status: 0 when no system is failing, rollbacked or has extra logs,
2 when at least one is, 1 on errors; a cron job or a monitoring check can
use it as it is.`,
    )
    .action(async (options: { once?: boolean; json?: boolean; prometheus?: string }) => {
      const { config, warnings } = await loadConfig(fleetDir(program));
      for (const message of warnings) warn(message);
      const { statusCommand } = await commands.status();
      process.exitCode = await statusCommand({
        chrootDir: config.chrootDir,
        json: options.json,
        once: options.once,
        prometheusFile: options.prometheus ? path.resolve(options.prometheus) : undefined,
        stdout: process.stdout,
        isTTY: Boolean(process.stdout.isTTY),
        noColor: Boolean(process.env.NO_COLOR),
      });
    });

  program
    .command('completion')
    .description('print the shell completion script: eval "$(bento completion bash)" in ~/.bashrc, or zsh in ~/.zshrc')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UserError(`no completion for ${JSON.stringify(shell)}: use bash or zsh`);
      process.stdout.write(renderCompletion(program, shell));
    });

  return program;
}

/** Prints an error the way its type asks for and returns the exit status. */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof UserErrors) {
    for (const problem of error.problems) process.stderr.write(`bento: error: ${sanitize(problem)}\n`);
    return 1;
  }
  if (error instanceof UserError) {
    process.stderr.write(`bento: error: ${sanitize(error.message)}\n`);
    if (error.hint) process.stderr.write(`  ${error instanceof MissingToolError ? 'install it: ' : ''}${error.hint}\n`);
    return 1;
  }
  if (error instanceof ToolError) {
    process.stderr.write(`bento: error: ${sanitize(error.message)}\n  command: ${sanitize(error.command)}\n`);
    if (error.stderrTail) process.stderr.write(`${sanitize(error.stderrTail).replace(/^/gm, '  | ')}\n`);
    return 1;
  }
  process.stderr.write(`bento: internal error (this is a bug in bento, please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

async function main(): Promise<void> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    process.exitCode = reportError(error);
  }
}

await main();
