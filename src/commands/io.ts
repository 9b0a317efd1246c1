/**
 * The one contract of every command: `(options, io) => Promise<exit status>`.
 * Each command module exports a CommandSpec: its arguments, flags and
 * after-help text (define), a pure function from what was parsed and the
 * world to its typed options (options), and its run. cli.ts registers them;
 * io is where the command talks to its user and reads the world (user id,
 * environment, clock). A command returns its exit status, or throws a typed
 * error (errors.ts) that cli.ts reports.
 */
import type { Command } from 'commander';
import type { Writable } from 'node:stream';
import type { Progress } from '../progress.js';
import { sanitizeLines } from '../log.js';
import { writeText } from '../util/write-stream.js';

export interface CommandIO {
  /** Results: tables, JSON, build lines. */
  stdout: Writable & { isTTY?: boolean };
  /** Messages for people: summaries, warnings, errors. */
  stderr: Writable;
  /** The status line of long steps (builds); lines printed through it land on stdout. */
  progress?: Progress;
  /** Asks a question on the terminal; resolves to the answer ('' when there is none). */
  ask?: (question: string) => Promise<string>;
  /** The user id bento runs as (process.getuid); unset: not root. */
  uid?: number;
  /** The environment variables a command passes on (NIX_SSHOPTS, PATH). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The clock. */
  now?: () => Date;
}

/** bento runs as root, as deploy, rollout and build test|switch here require. */
export function runsAsRoot(io: CommandIO): boolean {
  return io.uid === 0;
}

/** The time now, by io's clock (the system's when io has none). */
export function nowOf(io: CommandIO): Date {
  return io.now ? io.now() : new Date();
}

/** What a command's options may depend on besides its arguments and flags. */
export interface CommandWorld {
  /** The fleet directory, absolute: --dir, else BENTO_DIR, else the current directory. */
  fleetDir: string;
  /** The environment variables (NAME, VERBOSE, TARGET_IP, NO_COLOR, XDG_CACHE_HOME …). */
  env: Readonly<Record<string, string | undefined>>;
  /** The current directory, for relative paths in flags. */
  cwd: string;
  /** The user's home directory. */
  home: string;
  /** Processor cores: the default of --jobs. */
  cores: number;
  /** stdout is a terminal. */
  isTTY: boolean;
  /** The whole program, for a command that describes it (completion). */
  program: Command;
}

/** What commander parsed for a command: its arguments in order, and its flags. */
export interface Parsed<Flags> {
  args: readonly unknown[];
  flags: Flags;
}

/** A command: its surface (arguments, flags, help), its options, its run. */
export interface CommandSpec<Flags = never, Options = never> {
  /** Adds the command's arguments, flags and after-help text. */
  define(command: Command): void;
  /** The options of a run, from what was parsed and the world: pure. */
  options(parsed: Parsed<Flags>, world: CommandWorld): Options;
  run(options: Options, io: CommandIO): Promise<number>;
  /** Needs every command defined in world.program (completion). */
  describesProgram?: boolean;
}

/** A CommandSpec of any flags and options, as the registry in cli.ts holds them. */
export interface AnyCommandSpec {
  define(command: Command): void;
  options(parsed: Parsed<never>, world: CommandWorld): unknown;
  run(options: never, io: CommandIO): Promise<number>;
  describesProgram?: boolean;
}

/** Declares a command module's spec, keeping its types (cli.ts sees them all as one). */
export function defineCommand<Flags, Options>(spec: CommandSpec<Flags, Options>): CommandSpec<Flags, Options> {
  return spec;
}

/** Writes one line to stderr (sanitized: it may quote names from the fleet or the chroot). */
export function tell(io: CommandIO, message: string): Promise<void> {
  return writeText(io.stderr, `${sanitizeLines(message)}\n`);
}

/** `warning: …` on stderr. */
export function warnUser(io: CommandIO, message: string): Promise<void> {
  return tell(io, `warning: ${message}`);
}

/**
 * A warning among a command's lines of results (`  warning: …`): on stderr,
 * since stdout is for results, without breaking the status line.
 */
export function warnLine(io: CommandIO, message: string): void {
  const text = sanitizeLines(`  warning: ${message}`);
  if (io.progress) io.progress.printOn(io.stderr, text);
  else io.stderr.write(`${text}\n`);
}

/** A line of results: through the progress line when there is one (it stays under the output), else on stdout. */
export function printLine(io: CommandIO, line: string): void {
  const text = sanitizeLines(line);
  if (io.progress) io.progress.print(text);
  else io.stdout.write(`${text}\n`);
}
