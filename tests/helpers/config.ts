import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initSigningKey } from '../../services/evidence/signing-key.js';
import { loadConfig, loadEnvFile, type Config } from '../../services/config.js';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

/**
 * The sandbox instance label of a test (testConfig): `test-` and six hex digits. An installation's default is
 * `ef-` and ten (services/config.ts); tests/helpers/stale-sandboxes.ts removes old sandboxes of this shape only.
 */
export const TEST_INSTANCE = /^test-[0-9a-f]{6}$/;
export const testInstance = (): string => `test-${randomBytes(3).toString('hex')}`;

/**
 * A config for tests and benchmarks: its own database, instance label and
 * backup root; pulling is off. It signs with a key of its own and anchors
 * checkpoints in a folder of its own (`evidenceDir`, the key made there if
 * missing; a new temporary folder without it), never the installation's.
 */
export function testConfig(over: { databaseUrl: string; backupRoot: string; env?: Record<string, string | undefined>; evidenceDir?: string }): Config {
  loadEnvFile();
  const evidenceDir = over.evidenceDir ?? mkdtempSync(join(tmpdir(), 'ef-evidence-'));
  initSigningKey(join(evidenceDir, 'signing-key.pem'));
  // what a test sets replaces both halves of a secret pair from the installation's env (X and X_FILE both set is an error)
  const pairs = Object.fromEntries(Object.keys(over.env ?? {}).filter((k) => !k.endsWith('_FILE') && !(`${k}_FILE` in (over.env ?? {}))).map((k) => [`${k}_FILE`, undefined]));
  return loadConfig({
    ...process.env,
    ...pairs,
    DATABASE_URL: over.databaseUrl,
    DATABASE_URL_FILE: undefined,
    ERNSTFALL_BOOTSTRAP_TOKEN: TEST_TOKEN,
    ERNSTFALL_BOOTSTRAP_TOKEN_FILE: undefined,
    ERNSTFALL_BACKUP_ROOTS: over.backupRoot,
    ERNSTFALL_INSTANCE: testInstance(),
    ERNSTFALL_SANDBOX_PULL: 'never',
    ERNSTFALL_SETTLE_SECONDS: '0',
    ERNSTFALL_PLANS_DIR: '/nonexistent',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ERNSTFALL_SIGNING_KEY_FILE: join(evidenceDir, 'signing-key.pem'),
    ERNSTFALL_TRUSTED_KEYS_DIR: join(evidenceDir, 'keys'),
    ERNSTFALL_CHECKPOINT_DIR: join(evidenceDir, 'checkpoints'),
    ...over.env,
  });
}

export function uniquePrefix(): string {
  return `eftest-${randomBytes(4).toString('hex')}`;
}
