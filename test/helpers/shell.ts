/** Running generated shell scripts in tests. */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const STUBS_DIR = path.join(import.meta.dirname, '..', 'fixtures', 'client-stubs');
export const isRoot = process.getuid?.() === 0;

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client script in its own mount namespace with `varBento` mounted
 * over /var/bento, as a machine would see it; the script itself is not
 * modified. Needs root (unshare -m).
 */
export function runClientScript(script: string, varBento: string, env: Record<string, string>): ScriptRun {
  // The mount point must exist on the host. It is left in place (empty):
  // removing it could pull it from under a test file running in parallel.
  mkdirSync('/var/bento', { recursive: true });
  const result = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /var/bento && exec sh "$1"', varBento, script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function shellcheck(files: string[]): ScriptRun {
  const result = spawnSync('shellcheck', ['-s', 'sh', ...files], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
