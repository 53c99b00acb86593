import { defineProject } from 'vitest/config';

/** The browser journeys against the whole studio (scripts/studio.ts); slow by nature. */
export default defineProject({
  test: {
    name: 'e2e',
    environment: 'node',
    include: ['e2e/**/*.e2e.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
