/**
 * Runs code that may hang in a child process killed after a bound, so that
 * a test of it fails instead of hanging: an open(2) of a FIFO waits for a
 * writer forever, a read of /dev/zero never ends, and either, done
 * synchronously, would stop the test's own process, its timeout with it.
 * The child imports the built modules (dist/, `npm run build`), as
 * test/util/durable-fifo.test.ts does.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../../src/paths.js';

/** The bound: a passing call answers at once; only one that hangs waits it out. */
export const CHILD_BOUND_MS = 30_000;

/** The URL of the built module of `src/<relative>.ts` (`util/hash`), to import in a child's script. */
export function builtModule(relative: string): string {
  return pathToFileURL(path.join(PACKAGE_ROOT, 'dist', `${relative}.js`)).href;
}

/** What a call made in a child came to: its value, what it threw, or that it hung (killed at the bound). */
export type ChildOutcome = { value: unknown } | { error: string; name: string; code?: string } | 'hung';

/** How the child runs: as another user (through setpriv, as root), with variables added to the environment. */
export interface ChildOptions {
  as?: { uid: number; gid: number };
  env?: Record<string, string>;
}

/**
 * Runs `body`, the body of an async function of `args` (JSON values) that
 * may use `imported`, the built module of `module` (`util/hash`), in a
 * child node killed after CHILD_BOUND_MS; what it returned or threw.
 */
export function runBounded(module: string, body: string, args: readonly unknown[] = [], options: ChildOptions = {}): ChildOutcome {
  const script = [
    `const imported = await import(${JSON.stringify(builtModule(module))});`,
    `const args = JSON.parse(process.argv[1]);`,
    `const call = async (...args) => { ${body} };`,
    `let outcome;`,
    `try { outcome = { value: await call(...args) }; } catch (error) { outcome = { error: String(error.message), name: String(error.name), ...(error.code ? { code: String(error.code) } : {}) }; }`,
    `process.stdout.write(JSON.stringify(outcome));`,
  ].join('\n');
  const node = [process.execPath, '--input-type=module', '-e', script, JSON.stringify(args)];
  const command = options.as ? ['setpriv', `--reuid=${options.as.uid}`, `--regid=${options.as.gid}`, '--clear-groups', ...node] : node;
  const result = spawnSync(command[0] as string, command.slice(1), { encoding: 'utf8', env: { ...process.env, ...options.env }, timeout: CHILD_BOUND_MS, killSignal: 'SIGKILL' });
  if (result.signal !== null) return 'hung';
  if (result.status !== 0) throw new Error(`the child failed (status ${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout) as ChildOutcome;
}
