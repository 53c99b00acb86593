import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'apps/*/vitest.config.ts',
      'apps/web/vitest.e2e.config.ts',
      'scripts/chaos/vitest.config.ts',
      // The repository's own tooling: the test command's prerequisites and this closing line.
      {
        test: {
          name: 'tooling',
          environment: 'node',
          include: ['*.test.ts', 'scripts/**/*.test.ts'],
          exclude: ['scripts/chaos/**'],
          // Some of these start a vitest or tsx of their own.
          testTimeout: 60_000,
        },
      },
    ],
    globalSetup: ['./vitest.global-setup.ts'],
    reporters: ['default', './vitest.summary-reporter.ts'],
  },
});
