import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { repoRoot } from '../../services/config.js';
import { createLogger } from '../../services/logger.js';
import { LedgerService } from '../../services/evidence/ledger.service.js';
import { initSigningKey, loadSigner } from '../../services/evidence/signing-key.js';
import { checkSigningKey } from '../../services/evidence/key-check.js';

/**
 * Issue #14 item 3: two checkouts sharing the database `ernstfall` each made
 * a key of their own. `npm run setup` (keys-cli init, which setup.sh calls)
 * now refuses a new key for a database whose ledger another key signed.
 */
let tdb: TestDatabase;
let empty: TestDatabase;
let dir: string;
let first: { keyFile: string; keysDir: string; keyId: string; fingerprint: string };
const second = () => ({ signingKeyFile: join(dir, 'second', 'secrets', 'signing-key.pem'), trustedKeysDir: join(dir, 'second', 'keys') });

function keysInit(env: { signingKeyFile: string; trustedKeysDir: string }, databaseUrl: string) {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env, DATABASE_URL: databaseUrl, ERNSTFALL_SIGNING_KEY_FILE: env.signingKeyFile, ERNSTFALL_TRUSTED_KEYS_DIR: env.trustedKeysDir, LOG_LEVEL: 'silent',
  };
  delete childEnv.DATABASE_URL_FILE;
  return spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/evidence/keys-cli.ts'), 'init'], { cwd: repoRoot, env: childEnv, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  empty = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'ef-keycheck-'));
  // the first checkout: its key signs the shared database's ledger
  const keyFile = join(dir, 'first', 'secrets', 'signing-key.pem');
  initSigningKey(keyFile);
  const signer = loadSigner(keyFile);
  const ledger = new LedgerService(tdb.db, signer, {
    trustedKeysDir: join(dir, 'first', 'keys'), checkpointDir: join(dir, 'first', 'checkpoints'), recordRetention: 'P10Y', attachmentRetention: 'P90D',
  }, createLogger('silent'), () => new Date());
  await ledger.init();
  for (let i = 0; i < 3; i++) await ledger.appendNow({ tenantId: DEFAULT_TENANT_ID, kind: 'audit', subjectId: `first-${i}`, payload: { action: 'test' } });
  first = { keyFile, keysDir: join(dir, 'first', 'keys'), keyId: signer.keyId, fingerprint: signer.fingerprint };
});
afterAll(async () => {
  await tdb?.drop();
  await empty?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm run setup and a database whose ledger another key signed', () => {
  it('an empty database, or one signed by trusted keys: a key may be created', async () => {
    expect(await checkSigningKey(empty.db, second())).toEqual({ action: 'create', untrusted: [] });
    expect(await checkSigningKey(tdb.db, { signingKeyFile: join(dir, 'none.pem'), trustedKeysDir: first.keysDir })).toMatchObject({ action: 'create' });
    expect(await checkSigningKey(tdb.db, { signingKeyFile: first.keyFile, trustedKeysDir: join(dir, 'nowhere') })).toMatchObject({ action: 'present', untrusted: [] });
  });

  it('the check refuses a new key and names the foreign key, its records and the ways out', async () => {
    const check = await checkSigningKey(tdb.db, { ...second(), database: 'ernstfall_shared' });
    expect(check.action).toBe('refuse');
    expect(check.untrusted).toEqual([{ keyId: first.keyId, records: 3, tenants: 1, fingerprint: first.fingerprint }]);
    expect(check.message).toContain(first.keyId);
    expect(check.message).toContain('ernstfall_shared');
    expect(check.message).toMatch(/Ways out/);
    expect(check.message).toMatch(/ERNSTFALL_STATE_DIR=<its state folder> npm run setup/);
  });

  it('keys-cli init (what setup.sh runs) exits 3 with the way out and creates no key; with the old public key trusted it creates one', () => {
    const refused = keysInit(second(), tdb.appUrl);
    expect(refused.status, refused.stderr + refused.stdout).toBe(3);
    expect(refused.stderr).toMatch(/refusing to create a new evidence signing key/);
    expect(refused.stderr).toContain(first.keyId);
    expect(existsSync(second().signingKeyFile)).toBe(false);

    // way out 2: the public key of every key listed is trusted
    mkdirSync(second().trustedKeysDir, { recursive: true });
    copyFileSync(join(first.keysDir, `${first.keyId}.pub.pem`), join(second().trustedKeysDir, `${first.keyId}.pub.pem`));
    const created = keysInit(second(), tdb.appUrl);
    expect(created.status, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/created signing key/);
    expect(existsSync(second().signingKeyFile)).toBe(true);
  });

  it('a key already there is kept, with a warning naming the records it does not trust', async () => {
    const own = { signingKeyFile: join(dir, 'third', 'signing-key.pem'), trustedKeysDir: join(dir, 'third', 'keys') };
    initSigningKey(own.signingKeyFile);
    const check = await checkSigningKey(tdb.db, own);
    expect(check).toMatchObject({ action: 'present', untrusted: [{ keyId: first.keyId, records: 3 }] });
    expect(check.message).toMatch(/unknown-key/);
    const run = keysInit(own, tdb.appUrl);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/warning: .* does not trust|does not trust/);
  });
});
