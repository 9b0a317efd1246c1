/**
 * Watch mode under a write storm: one machine writing into its logs/ every
 * 0.1 s must not freeze the dashboard. The debounce waits for a quiet moment
 * that never comes; its max-wait redraws anyway, so another machine's failure
 * shows within a bounded time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { statusCommand } from '../../src/commands/status.js';
import { watchChroot } from '../../src/status/watch.js';
import { Collector } from '../helpers/collect.js';
import { LOG_CONTENT, addSystem, logName, makeChroot, storePath } from './fixtures.js';

let cleanup: (() => Promise<void>) | undefined;
let storm: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(storm);
  storm = undefined;
  await cleanup?.();
  cleanup = undefined;
});

/** A machine writing a new file into its logs/ every `everyMs`. */
function startStorm(logs: string, everyMs: number): { writes: () => number } {
  let count = 0;
  storm = setInterval(() => {
    count++;
    void writeFile(path.join(logs, `junk-${count}`), 'x').catch(() => undefined);
  }, everyMs);
  return { writes: () => count };
}

describe('watch mode under a write storm', () => {
  it('shows another machine failing within the max-wait while a machine writes every 0.1 s', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    await writeFile(path.join(made.dir, 'states.txt'), `x1=${storePath('fcz1s2yp')}\n`);
    await addSystem(made.dir, 'x1', { lastChangeAgo: 600, logs: [[logName('fcz1s2yp', 'success', '20240601-1100'), 3000]] });
    await addSystem(made.dir, 'noisy', { lastChangeAgo: 600 });

    const controller = new AbortController();
    const stdout = new Collector();
    const done = statusCommand({ chrootDir: made.dir, isTTY: true, noColor: true, signal: controller.signal }, { stdout, stderr: new Collector() });
    const screen = () => stdout.text.slice(stdout.text.lastIndexOf('\x1b[H'));
    await vi.waitFor(() => expect(screen()).toMatch(/x1 .*sync pending/), { timeout: 5_000 });

    const noisy = startStorm(path.join(made.dir, 'noisy', 'logs'), 100);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await writeFile(path.join(made.dir, 'x1', 'logs', logName('1dyc4lgr', 'failure')), LOG_CONTENT);
    const failedAt = Date.now();
    const writesBefore = noisy.writes();
    // The default max-wait is 1 s: well within 2.5 s, however the storm goes on.
    await vi.waitFor(() => expect(screen()).toMatch(/x1 .*failing 🔥/), { timeout: 2_500, interval: 50 });
    expect(Date.now() - failedAt).toBeLessThan(2_500);
    expect(noisy.writes()).toBeGreaterThan(writesBefore); // the storm never stopped meanwhile

    controller.abort();
    expect(await done).toBe(2);
  });

  it('refreshes at least once per max-wait while events never pause', async () => {
    const made = await makeChroot();
    cleanup = made.cleanup;
    await addSystem(made.dir, 'noisy');
    const controller = new AbortController();
    const refreshes: number[] = [];
    const watching = watchChroot({
      chrootDir: made.dir,
      signal: controller.signal,
      debounceMs: 200,
      maxWaitMs: 400,
      refresh: async () => {
        refreshes.push(Date.now());
        return ['noisy'];
      },
    });
    await vi.waitFor(() => expect(refreshes.length).toBe(1));
    const start = Date.now();
    startStorm(path.join(made.dir, 'noisy', 'logs'), 50);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    clearInterval(storm);
    const during = refreshes.filter((time) => time > start);
    // 2 s of events every 50 ms, at most 400 ms each: 4 or more refreshes, none more than ~400 ms apart.
    expect(during.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < during.length; i++) expect((during[i] ?? 0) - (during[i - 1] ?? 0)).toBeLessThan(700);
    controller.abort();
    await watching;
  });
});
