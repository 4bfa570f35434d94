/**
 * `npm run backup [-- --dir <folder>]`: ernstfall's own database (custom
 * format) and the trusted public keys into a folder; the built-in plan
 * `ernstfall-selbsttest` restore-tests the newest dump (docs/operations.md
 * "ernstfall tests its own backup"). Uses DATABASE_OWNER_URL (the owner may
 * read every table); the password goes to pg_dump by environment only.
 */
import { loadConfig, loadEnvFile } from '../config.js';
import { selfBackup } from './self-backup.js';
import { systemClock } from '../clock.js';

loadEnvFile(process.env, { owner: true });
const config = loadConfig(process.env);
const i = process.argv.indexOf('--dir');
const dir = i > 0 ? process.argv[i + 1] : config.selfBackup?.dir;
if (!dir) {
  console.error('backup: no folder: set ERNSTFALL_SELF_BACKUP_DIR (inside ERNSTFALL_BACKUP_ROOTS, so the self-test plan may read it) or pass --dir <folder>');
  process.exit(2);
}
const url = config.database.ownerUrl ?? process.env.DATABASE_OWNER_URL;
if (!url) {
  console.error('backup: DATABASE_OWNER_URL is needed (the owner may read every table, the migrations included); npm run setup writes it to .ernstfall/owner.env');
  process.exit(2);
}
try {
  const r = await selfBackup({ dir, keep: config.selfBackup?.keep ?? 7, databaseUrl: url, trustedKeysDir: config.evidence.trustedKeysDir }, systemClock());
  console.log(`backup: ${r.file} (${r.sizeBytes} bytes, sha256 ${r.sha256})`);
  console.log(`backup: ${r.keys.length} public key(s) in ${dir}/keys${r.removed.length ? `; removed ${r.removed.length} older dump(s)` : ''}`);
} catch (err) {
  console.error(`backup: ${(err as Error).message}`);
  process.exit(1);
}
