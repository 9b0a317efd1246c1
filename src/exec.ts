/**
 * The one wrapper around execa. Arguments are always arrays (never a shell),
 * failures carry the full command and the tail of stderr, and a missing
 * program gets an install hint instead of a bare ENOENT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';
import { MissingToolError, ToolError } from './errors.js';
import { debug } from './log.js';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** False: the child gets `env` only, none of this process's environment. */
  extendEnv?: boolean;
  input?: string;
  /** Pass the child's stdout/stderr through to ours (VERBOSE). */
  stream?: boolean;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as the child wrote them. */
  all: string;
  failed: boolean;
}

const INSTALL_HINTS: Record<string, string> = {
  nix: 'install Nix (on Debian: apt-get install nix-bin), or run ./scripts/setup.sh',
  'nix-instantiate': 'install Nix (on Debian: apt-get install nix-bin), or run ./scripts/setup.sh',
  'nix-daemon': 'install Nix (on Debian: apt-get install nix-bin), or run ./scripts/setup.sh',
  'nixos-rebuild': 'nixos-rebuild comes with NixOS; on another system use `bento build build` or `dry-build`',
  setpriv: 'apt-get install util-linux',
  shellcheck: 'apt-get install shellcheck',
  sshd: 'apt-get install openssh-server',
  sftp: 'apt-get install openssh-client',
  git: 'apt-get install git',
};

/**
 * Throws MissingToolError (with its install hint) unless `file` is an
 * executable on PATH: for a tool another one runs (setpriv runs nix), whose
 * absence would otherwise show as that one's failure.
 */
export function requireOnPath(file: string, pathVariable = process.env.PATH ?? ''): void {
  for (const dir of pathVariable.split(':')) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, file), constants.X_OK);
      return;
    } catch {
      // not in this directory
    }
  }
  throw new MissingToolError(file, INSTALL_HINTS[file] ?? `install ${file}`);
}

/**
 * execa, loaded when a first command runs: importing it costs more than a
 * whole `bento status` of a small fleet reads (bench/README.md), and status
 * loads this module through config.ts without running anything.
 */
function loadExeca(): Promise<typeof import('execa')> {
  return import('execa');
}

/** Quotes a command line for messages (never for execution). */
export function formatCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = formatCommand(file, args);
  debug(`$ ${command}`);
  const { execa } = await loadExeca();
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: options.extendEnv ?? true,
    input: options.input,
    reject: false,
    all: true,
    stripFinalNewline: false,
    timeout: options.timeoutMs,
    stdout: options.stream ? ['pipe', 'inherit'] : 'pipe',
    stderr: options.stream ? ['pipe', 'inherit'] : 'pipe',
  });
  const result = await child;
  const error = result as unknown as { code?: string; failed: boolean; exitCode?: number };
  if (error.code === 'ENOENT' && result.exitCode === undefined) {
    throw new MissingToolError(file, INSTALL_HINTS[file] ?? `install ${file}`);
  }
  const out: RunResult = {
    command,
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    all: String(result.all ?? ''),
    failed: result.failed,
  };
  if (out.failed && !options.allowFailure) {
    throw new ToolError(command, result.exitCode, tail(out.stderr || out.stdout), undefined);
  }
  return out;
}

/** The last lines of a command's output, for error messages. */
export function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface FileLock {
  /** Releases the lock and waits until it is released. */
  release(): Promise<void>;
}

/** Exit status of flock(1) when the lock is held by another process (its --conflict-exit-code). */
const LOCK_BUSY = 75;

/**
 * Takes an exclusive flock(2) on `file` without waiting; undefined when
 * another process holds it. Node has no flock, so a child `flock` holds it
 * for us, running `cat` on a pipe from this process: when this process ends,
 * however it ends (SIGKILL included), the pipe closes, cat and flock exit,
 * and the kernel releases the lock. Nothing is left to clean up, and a stale
 * lock cannot exist.
 */
export async function holdFileLock(file: string): Promise<FileLock | undefined> {
  debug(`$ flock --nonblock ${file}`);
  const { execa } = await loadExeca();
  const child = execa('flock', ['--nonblock', '--conflict-exit-code', String(LOCK_BUSY), file, 'sh', '-c', 'echo locked && exec cat'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    buffer: false,
  });
  const locked = await new Promise<boolean>((resolve) => {
    child.stdout?.once('data', () => resolve(true));
    child.once('exit', () => resolve(false));
    child.once('error', () => resolve(false));
  });
  if (!locked) {
    const result = await child;
    const error = result as unknown as { code?: string };
    if (error.code === 'ENOENT') throw new MissingToolError('flock', 'apt-get install util-linux');
    if (result.exitCode === LOCK_BUSY) return undefined;
    throw new ToolError(`flock --nonblock ${file}`, result.exitCode, String(result.stderr ?? ''));
  }
  // Not unref'd: the caller releases it (in a finally), and awaiting an
  // unref'd child would let Node exit in the middle of the await.
  return {
    async release() {
      child.stdin?.end();
      await child;
    },
  };
}

export interface BackgroundProcess {
  pid: number | undefined;
  /** Resolves with the exit status (undefined: killed by a signal) when the process ends. */
  exited: Promise<number | undefined>;
  /** Sends SIGTERM; safe to call from a process 'exit' handler (synchronous). */
  stop(): void;
}

/**
 * Starts a long-running helper (a private nix-daemon) with its stderr in
 * `logFile`. It holds none of this process's pipes and does not keep Node
 * alive; the caller stops it. The command is logged like every other.
 * (child_process, not execa: execa pipes a file output through this
 * process, which would keep it running.)
 */
export function startBackground(file: string, args: readonly string[], options: { env?: Record<string, string | undefined>; extendEnv?: boolean; logFile: string }): BackgroundProcess {
  debug(`$ ${formatCommand(file, args)} &`);
  const log = openSync(options.logFile, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(file, args, { env: { ...(options.extendEnv === false ? {} : process.env), ...options.env }, stdio: ['ignore', 'ignore', log] });
  } finally {
    closeSync(log);
  }
  child.unref();
  const exited = new Promise<number | undefined>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new MissingToolError(file, INSTALL_HINTS[file] ?? `install ${file}`) : error));
    child.once('exit', (code) => resolve(code ?? undefined));
  });
  return { pid: child.pid, exited, stop: () => void child.kill('SIGTERM') };
}
