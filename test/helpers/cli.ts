/** Runs the built CLI (dist/main.js, built by `npm test`'s pretest) as a whole process. */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const CLI = path.join(PACKAGE_ROOT, 'dist', 'main.js');

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function bento(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {}): CliRun {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    input: options.input,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs the built CLI with its stdout's reader gone before it writes a line,
 * as `bento status | head -1` leaves it once head has its line: every write
 * to stdout fails with EPIPE. Resolves to the exit status and what it said on stderr.
 */
export async function bentoWithoutReader(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // libuv closes the pipe's read end at once; node takes tens of milliseconds to start.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { status, stderr };
}
