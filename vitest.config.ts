import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { TIERS } from './test/tiers.js';

/** What every tier's files run with. */
const perFile: TestProjectInlineConfiguration['test'] = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks',
  // One turn of the event loop after each test (see the file).
  setupFiles: ['test/helpers/yield-between-tests.ts'],
  env: {
    // Offline: no binary cache to wait for. Test derivations use /bin/sh and host tools.
    NIX_CONFIG: 'substituters =\nsandbox = false\n',
  },
};

export default defineConfig({
  test: {
    // The tiers of test/tiers.ts, one project each: `vitest run --project
    // pure` runs one, `vitest run` all of them together, as one run.
    projects: Object.entries(TIERS).map(([name, files]) => ({
      test: { ...perFile, name, include: [...files] },
    })),
    // Most test files wait on processes (Nix, sshd, the generated scripts),
    // not on the CPU: three at once halve the suite on 2 cores (vitest's
    // default there is one). Each file works in directories, users and
    // mount namespaces of its own, so they run side by side. One pool for
    // every project.
    maxWorkers: 3,
    minWorkers: 1,
    // Run once for the whole run, whichever projects it runs: the global
    // setup of the root config runs always, and the projects have none of
    // their own (a project that had one would run it again).
    globalSetup: ['test/helpers/global-setup.ts'],
    // A skipped test fails the run (a run without root or sshd is not green).
    reporters: ['default', './test/helpers/no-skips-reporter.ts'],
  },
});
