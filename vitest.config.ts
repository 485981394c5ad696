import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    // Integration tests start real processes and sockets; give them room but never hang forever.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers than that only adds scheduling noise to socket-heavy tests.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
