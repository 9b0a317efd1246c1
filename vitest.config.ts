import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
    env: {
      // Offline: no binary cache to wait for. Test derivations use /bin/sh and host tools.
      NIX_CONFIG: 'substituters =\nsandbox = false\n',
    },
  },
});
