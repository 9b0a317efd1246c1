/**
 * Lets each test process read its messages between two tests. Most tests
 * here are synchronous (spawnSync of the CLI, Nix, the client scripts), and
 * vitest goes from one synchronous test to the next without returning to
 * the event loop, so the answers of the main process to the updates a test
 * file sends wait until the whole file is done; past 60 s vitest reports
 * "Timeout calling onTaskUpdate" and fails the run, though every test
 * passed (seen with test files of two minutes). One turn of the event loop
 * after each test reads them.
 */
import { afterEach } from 'vitest';

afterEach(async () => {
  await new Promise((resolve) => setImmediate(resolve));
});
