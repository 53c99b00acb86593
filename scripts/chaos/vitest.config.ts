import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'chaos',
    include: ['**/*.test.ts'],
    testTimeout: 300_000,
  },
});
