import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most test files wait on processes (Nix, sshd, the generated scripts),
    // not on the CPU: three at once halve the suite on 2 cores (vitest's
    // default there is one). Each file works in directories, users and
    // mount namespaces of its own, so they run side by side.
    maxWorkers: 3,
    minWorkers: 1,
    globalSetup: ['test/helpers/global-setup.ts'],
    // One turn of the event loop after each test (see the file).
    setupFiles: ['test/helpers/yield-between-tests.ts'],
    // A skipped test fails the run (a run without root or sshd is not green).
    reporters: ['default', './test/helpers/no-skips-reporter.ts'],
    env: {
      // Offline: no binary cache to wait for. Test derivations use /bin/sh and host tools.
      NIX_CONFIG: 'substituters =\nsandbox = false\n',
    },
  },
});
