/**
 * util/durable.ts on a FIFO: a file flushed by its name in a directory
 * others write may have been replaced by one, and opening it for reading
 * would wait for a writer forever. Run in a child process of the built
 * module (dist/util/durable.js), which a blocked open would leave hanging:
 * it must fail at once instead.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/paths.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** What `call` (flushSync or flush) does with a FIFO nobody writes: its error's code, or `flushed`; null when it hung. */
function flushFifo(call: 'flushSync' | 'flush'): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bento-durable-fifo-'));
  dirs.push(dir);
  const fifo = path.join(dir, '.flake.lock.tmp-1');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const module = pathToFileURL(path.join(PACKAGE_ROOT, 'dist', 'util', 'durable.js')).href;
  const script = `import { ${call} } from ${JSON.stringify(module)};\ntry { await ${call}(process.argv[1]); console.log('flushed'); } catch (error) { console.log(error.code); }`;
  // The bound only ends a child that hangs (as it did): a passing one answers at once.
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, fifo], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return result.signal === null ? result.stdout.trim() : null;
}

describe('flushing a FIFO put where a file was', () => {
  it('fails at once, synchronously or not, never waiting for a writer', () => {
    expect(flushFifo('flushSync')).toBe('EINVAL');
    expect(flushFifo('flush')).toBe('EINVAL');
  });
});
