import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.spec.ts', 'tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // two cores: Docker-heavy files would only slow each other down beyond this
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
