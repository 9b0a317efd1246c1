/**
 * Running the client's shell sources (templates/client/lib/) on their own:
 * a test sources the files it needs into /bin/sh, stubs what it must as
 * shell functions or files on PATH, and calls one function. No root, no
 * namespace, no sshd: the "shell" tier.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientLibrarySource } from '../../src/render/client-library.js';

export interface SourcedRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Runs `script` in /bin/sh after sourcing the library sources `sources`
 * (names as in CLIENT_LIBRARY_SOURCES), with `env` added to a PATH of this
 * machine's tools.
 */
export function runSourced(sources: readonly string[], script: string, env: Record<string, string> = {}): SourcedRun {
  const prelude = sources.map((name) => `. ${shellQuote(clientLibrarySource(name))}`).join('\n');
  const result = spawnSync('/bin/sh', ['-c', `${prelude}\n${script}`], {
    encoding: 'utf8',
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...env },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A temporary directory removed by `cleanups`. */
export function tempDir(prefix: string, cleanups: (() => void)[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export { shellQuote };
