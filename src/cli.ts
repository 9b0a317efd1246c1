/**
 * The command line: a registry of bento's commands, the global flags, and
 * the one place that turns an outcome into an exit status (runCli; main.ts
 * sets it on the process). Each command module declares its own arguments,
 * flags, help and options (commands/io.ts, CommandSpec).
 *
 * A command's module is loaded only when the command line names it (await
 * import): `bento --help` and `bento status` then pay neither for Handlebars
 * nor for execa. This file imports nothing else of bento but its own helpers;
 * the lint rule in eslint.config.js keeps it so.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnyCommandSpec, CommandIO, CommandWorld } from './commands/io.js';
import { MissingToolError, ToolError, UserError, UserErrors } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';
import { createProgress } from './progress.js';
import { sanitize } from './util/sanitize.js';
import { indentedMessage, sanitizeLines } from './log.js';
import { askQuestion } from './util/ask.js';
import { TempDirError } from './util/temp-dir.js';
import { runWithGuardedOutput } from './util/write-stream.js';

/** Every command: the line `bento --help` shows for it, and its module. */
const REGISTRY: Record<string, { summary: string; load: () => Promise<{ command: AnyCommandSpec }> }> = {
  init: { summary: 'create a new fleet here (or in --dir): config.sh, hosts/example, utils/bento.nix, keys/', load: () => import('./commands/init.js') },
  generate: { summary: 'render generated/: client scripts and units per system, SFTP server configuration', load: () => import('./commands/generate.js') },
  deploy: { summary: 'build what changed and publish each system into its SFTP chroot (as root); with ROLLOUT_WAVES, the first wave only', load: () => import('./commands/deploy.js') },
  build: { summary: 'dry-build or build the systems here; test or switch one of them, here or on TARGET_IP', load: () => import('./commands/build.js') },
  diff: { summary: 'for each flake system: what changes between the version it runs and the one it should run (nvd or nix store diff-closures)', load: () => import('./commands/diff.js') },
  'flake-update': { summary: 'update the flake.lock of every flake under hosts/: all inputs, or only <input>', load: () => import('./commands/flake-update.js') },
  status: { summary: 'the state of every machine, from the logs they uploaded (redraws on changes on a terminal)', load: () => import('./commands/status.js') },
  prune: { summary: 'remove the oldest logs of each machine on the server, keeping LOG_KEEP (never one status needs)', load: () => import('./commands/prune.js') },
  notify: { summary: 'send the alerts due (NOTIFY_COMMAND, NOTIFY_URL): machines that started failing or recovered, a halted rollout', load: () => import('./commands/notify.js') },
  trigger: { summary: 'ask machines to poll now, through their listen-update socket (LISTEN_PORT); the others catch up on their timer', load: () => import('./commands/trigger.js') },
  rollout: { summary: 'the staged rollout of ROLLOUT_WAVES: status, advance to the next wave, resume after a halt, abort', load: () => import('./commands/rollout.js') },
  reboots: { summary: 'hand out reboot slots (REBOOT_MAX): machines that need a reboot take turns, through their chroots', load: () => import('./commands/reboots.js') },
  completion: { summary: 'print the shell completion script: eval "$(bento completion bash)" in ~/.bashrc (zsh: ~/.zshrc), bento completion fish | source', load: () => import('./commands/completion.js') },
};

const version = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The io of a real run: the process's streams, user id, environment and clock, a status line on stdout, questions on the terminal. */
export function processIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, progress: createProgress(process.stdout), ask: askQuestion, uid: process.getuid?.(), env: process.env, now: () => new Date() };
}

/** What runCli loaded before building the program: the modules of the commands named, the help after the command list. */
export interface Loaded {
  commands?: ReadonlyMap<string, AnyCommandSpec>;
  helpAfter?: string;
}

/**
 * The program: every command of the registry, complete for those loaded
 * (the others show their summary in the help). Each action stores its
 * command's exit status in `outcome`; nothing here exits.
 */
export function buildProgram(io: CommandIO = processIO(), outcome: { exitCode: number } = { exitCode: 0 }, loaded: Loaded = {}): Command {
  // Before the commands are added, which inherit it: a command's --help or bad flag then returns to runCli too.
  const program = new Command()
    .exitOverride()
    .name('bento')
    .description('Keep a fleet of NixOS machines up to date: build here, publish over SFTP, let each machine pull.')
    .version(version)
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .addOption(new Option('-d, --dir <path>', 'the fleet directory (default: $BENTO_DIR, else the current directory)'))
    .showHelpAfterError('(run `bento --help` for the commands, `bento <command> --help` for their options)')
    .showSuggestionAfterError(true)
    .addHelpText('after', loaded.helpAfter ?? '');
  const env = io.env ?? {};
  const world = (): CommandWorld => ({
    fleetDir: path.resolve((program.opts().dir as string | undefined) ?? env.BENTO_DIR ?? process.cwd()),
    env,
    cwd: process.cwd(),
    home: os.homedir(),
    cores: os.cpus().length,
    isTTY: Boolean(io.stdout.isTTY),
    program,
  });
  for (const [name, { summary }] of Object.entries(REGISTRY)) {
    const command = program.command(name).description(summary);
    const spec = loaded.commands?.get(name);
    if (!spec) continue;
    spec.define(command);
    command.action(async () => {
      const parsed = { args: command.processedArgs as unknown[], flags: command.opts() as never };
      outcome.exitCode = await spec.run(spec.options(parsed, world()) as never, io);
    });
  }
  return program;
}

/** The modules of the commands named on the command line (all of them for one that describes the program). */
async function loadCommands(args: readonly string[]): Promise<Map<string, AnyCommandSpec>> {
  const named = Object.keys(REGISTRY).filter((name) => args.includes(name));
  const specs = new Map<string, AnyCommandSpec>();
  for (const name of named) specs.set(name, (await REGISTRY[name]!.load()).command);
  if ([...specs.values()].some((spec) => spec.describesProgram)) {
    for (const name of Object.keys(REGISTRY)) if (!specs.has(name)) specs.set(name, (await REGISTRY[name]!.load()).command);
  }
  return specs;
}

/** Prints an error the way its type asks for and returns the exit status. */
export function reportError(error: unknown, stderr: CommandIO['stderr'] = process.stderr): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof UserErrors) {
    for (const problem of error.problems) stderr.write(`bento: error: ${indentedMessage(problem)}\n`);
    return 1;
  }
  if (error instanceof UserError || error instanceof TempDirError) {
    stderr.write(`bento: error: ${indentedMessage(error.message)}\n`);
    if (error.hint) stderr.write(`  ${error instanceof MissingToolError ? 'install it: ' : ''}${error.hint}\n`);
    return 1;
  }
  if (error instanceof ToolError) {
    stderr.write(`bento: error: ${indentedMessage(error.message)}\n  command: ${sanitize(error.command)}\n`);
    if (error.stderrTail) stderr.write(`${sanitizeLines(error.stderrTail).replace(/^/gm, '  | ')}\n`);
    return 1;
  }
  stderr.write(`bento: internal error (this is a bug in bento, please report it):\n${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}

/** Runs the command line `argv` (as process.argv: node, script, arguments…) and returns the exit status; a reader that goes away (`| head -1`) ends the output, not the command (a deploy died at its first line). */
export async function runCli(argv: readonly string[], io: CommandIO = processIO()): Promise<number> {
  return runWithGuardedOutput(io.stdout, io.stderr, () => runProgram(argv, io).catch((error: unknown) => reportError(error, io.stderr)));
}

async function runProgram(argv: readonly string[], io: CommandIO): Promise<number> {
  const outcome = { exitCode: 0 };
  const { rootHelpAfter } = await import('./commands/shared/root-help.js');
  await buildProgram(io, outcome, { commands: await loadCommands(argv.slice(2)), helpAfter: rootHelpAfter() }).parseAsync([...argv]);
  return outcome.exitCode;
}
