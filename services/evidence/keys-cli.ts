/**
 * `npm run keys -- init|rotate|show`: the evidence signing key.
 *   init    create the key if missing (npm run setup does this)
 *   rotate  new key from now on; the old public key stays trusted
 *   show    key id and fingerprint (compare with the ones printed in reports)
 */
import { loadConfig, loadEnvFile } from '../config.js';
import { createDb } from '../../db/database.js';
import { initSigningKey, loadSigner, publishPublicKey, rotateSigningKey, trustedKeys } from './signing-key.js';
import { fingerprintOfKey } from './signing-key.js';
import { checkSigningKey } from './key-check.js';

loadEnvFile();
const hasDatabase = Boolean(process.env.DATABASE_URL || process.env.DATABASE_URL_FILE);
const config = loadConfig(hasDatabase ? process.env : { ...process.env, DATABASE_URL: 'postgres://unused@127.0.0.1/unused' });
const { signingKeyFile, trustedKeysDir } = config.evidence;
const cmd = process.argv[2] ?? 'show';

/** Exit code of `init` when it refuses to make a key for a database whose ledger another key signed. */
const REFUSED = 3;

if (cmd === 'init') {
  // with a database (npm run setup): never a new key for a ledger signed by keys we do not trust
  if (hasDatabase) {
    const db = createDb(config.database.url, 1);
    try {
      const u = new URL(config.database.url);
      const check = await checkSigningKey(db, { signingKeyFile, trustedKeysDir, database: `${u.pathname.slice(1)} on ${u.hostname}:${u.port || 5432}` });
      if (check.action === 'refuse') {
        console.error(check.message);
        process.exit(REFUSED);
      }
      if (check.message) console.error(check.message);
    } finally {
      await db.destroy();
    }
  }
  const created = initSigningKey(signingKeyFile);
  const s = loadSigner(signingKeyFile);
  publishPublicKey(s, trustedKeysDir);
  console.log(`${created ? 'created' : 'present'} signing key ${s.keyId} (${signingKeyFile})`);
} else if (cmd === 'rotate') {
  const r = rotateSigningKey(signingKeyFile, trustedKeysDir);
  console.log(`rotated: new key ${r.newKeyId}; old key ${r.oldKeyId} stays trusted for verification (${trustedKeysDir})`);
  console.log('restart api and workers so they sign with the new key');
} else if (cmd === 'show') {
  const s = loadSigner(signingKeyFile);
  console.log(`current  ${s.keyId}  sha256:${s.fingerprint}`);
  for (const [id, k] of trustedKeys(undefined, trustedKeysDir)) if (id !== s.keyId) console.log(`trusted  ${id}  sha256:${fingerprintOfKey(k)}`);
} else {
  console.error('usage: npm run keys -- init | rotate | show');
  process.exit(2);
}
