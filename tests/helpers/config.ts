import { randomBytes } from 'node:crypto';
import { loadConfig, loadEnvFile, type Config } from '../../services/config.js';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** A config for tests: its own database, instance label and backup root; pulling is off. */
export function testConfig(over: { databaseUrl: string; backupRoot: string; env?: Record<string, string> }): Config {
  loadEnvFile();
  return loadConfig({
    ...process.env,
    DATABASE_URL: over.databaseUrl,
    DATABASE_URL_FILE: undefined,
    ERNSTFALL_BOOTSTRAP_TOKEN: TEST_TOKEN,
    ERNSTFALL_BOOTSTRAP_TOKEN_FILE: undefined,
    ERNSTFALL_BACKUP_ROOTS: over.backupRoot,
    ERNSTFALL_INSTANCE: `test-${randomBytes(3).toString('hex')}`,
    ERNSTFALL_SANDBOX_PULL: 'never',
    ERNSTFALL_SETTLE_SECONDS: '0',
    ERNSTFALL_PLANS_DIR: '/nonexistent',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...over.env,
  });
}

export function uniquePrefix(): string {
  return `eftest-${randomBytes(4).toString('hex')}`;
}
