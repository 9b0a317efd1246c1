/**
 * The one wrapper around execa. Arguments are always arrays (never a shell),
 * failures carry the full command and the tail of stderr, and a missing
 * program gets an install hint instead of a bare ENOENT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';
import type { execa as Execa } from 'execa';
import { MissingToolError, ToolError, UserError } from './errors.js';
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

/** Quotes a command line for messages (never for execution). */
export function formatCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');
}

let execaLoaded: Promise<typeof Execa> | undefined;

/**
 * execa, loaded when the first child process is started: it is the largest
 * module bento imports, and a command that starts none (status, most
 * --help) then never loads it (bench/README.md).
 */
function loadExeca(): Promise<typeof Execa> {
  execaLoaded ??= import('execa').then((module) => module.execa);
  return execaLoaded;
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = formatCommand(file, args);
  debug(`$ ${command}`);
  const execa = await loadExeca();
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

/** `file` opened read-only, made when missing. */
function openLockFile(file: string): number {
  try {
    return openSync(file, constants.O_RDONLY | constants.O_NOCTTY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return openSync(file, constants.O_RDONLY | constants.O_NOCTTY | constants.O_CREAT, 0o644);
  }
}

/**
 * Takes an exclusive flock(2) on `file` without waiting; undefined when
 * another process holds it. Node has no flock: this process opens the file
 * (read-only, created only when missing, so taking a lock writes nothing)
 * and a child `flock` locks that open file, which this process keeps. When
 * this process ends, however it ends (SIGKILL included), the file is closed
 * and the kernel releases the lock. Nothing is left to clean up, and a stale
 * lock cannot exist. (Node opens files close-on-exec: no other child
 * inherits it.) A file that cannot be opened (its directory read-only or
 * full) is the server's to fix, not a bug in bento: a UserError naming
 * `what` the lock is and where it lives.
 */
export async function holdFileLock(file: string, what = `the lock ${file}`): Promise<FileLock | undefined> {
  debug(`$ flock --nonblock ${file}`);
  let fd: number;
  try {
    fd = openLockFile(file);
  } catch (error) {
    throw new UserError(`cannot take ${what}: ${(error as Error).message}`, `bento keeps it in ${path.dirname(file)}, which must be writable`);
  }
  // child_process, not execa: execa takes no file descriptor as an extra stdio.
  const outcome = await new Promise<{ status: number | null; stderr: string; missing?: boolean }>((resolve) => {
    let stderr = '';
    const child = spawn('flock', ['--nonblock', '--conflict-exit-code', String(LOCK_BUSY), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ status: null, stderr: error.message, missing: error.code === 'ENOENT' }));
    child.once('close', (status) => resolve({ status, stderr }));
  });
  if (outcome.status !== 0) {
    closeSync(fd);
    if (outcome.missing) throw new MissingToolError('flock', 'apt-get install util-linux');
    if (outcome.status === LOCK_BUSY) return undefined;
    throw new ToolError(`flock --nonblock ${file}`, outcome.status ?? undefined, outcome.stderr);
  }
  let open = true;
  return {
    async release() {
      if (open) closeSync(fd);
      open = false;
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
