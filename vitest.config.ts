import { defineConfig } from 'vitest/config';

/**
 * Three tiers (`npm test` runs all three):
 *   unit         pure logic; no PostgreSQL, Redis or Docker (`npm run test:unit` on a bare machine)
 *   integration  the real stack: PostgreSQL, Redis, Docker (`npm run test:integration`)
 *   browser      the web interface in Debian's chromium (`npm run test:browser`)
 * The two tiers with a database share one migrated template per test run (tests/helpers/global-setup.ts).
 */
const DB_SETUP = ['tests/helpers/global-setup.ts'];
const BROWSER = ['tests/integration/browser.test.ts', 'tests/integration/manual-browser.test.ts'];
/**
 * The fault campaign (`npm run test:faults`, issue 14): restarts Redis, PostgreSQL and a Docker engine of
 * its own during restores and SIGKILLs scheduler and API processes it started, so it is not part of
 * `npm test`; its files run one after the other.
 */
const FAULTS = process.env.ERNSTFALL_FAULTS === '1'
  ? [{ extends: true as const, test: { name: 'faults', include: ['tests/faults/**/*.fault.ts'], fileParallelism: false, testTimeout: 240_000 } }]
  : [];

export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // two cores: Docker-heavy files would only slow each other down beyond this
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.spec.ts'] } },
      { extends: true, test: { name: 'integration', include: ['tests/integration/**/*.test.ts'], exclude: BROWSER, globalSetup: DB_SETUP } },
      { extends: true, test: { name: 'browser', include: BROWSER, globalSetup: DB_SETUP } },
      ...FAULTS,
    ],
  },
});
