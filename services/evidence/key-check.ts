/**
 * Before `npm run setup` creates a signing key: is this database's ledger
 * signed by keys this installation trusts? Two checkouts sharing the database
 * `ernstfall` used to make a key each; the second one's ledger then failed
 * verification from record 1 with no hint why (issue #14). A new key is
 * refused while the database holds records of a key that is neither the
 * current one nor in the trusted-keys folder; the message names the way out.
 */
import { existsSync } from 'node:fs';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { LedgerRepository } from '../../db/repositories/ledger.repository.js';
import { loadSigner, trustedKeys } from './signing-key.js';

export interface UntrustedKey {
  keyId: string;
  records: number;
  tenants: number;
  /** from the database's copy of the public key (not trusted, only to find the installation that has it) */
  fingerprint: string | null;
}

export interface KeyCheck {
  /** present: a key exists (untrusted records are a warning); create: no key and nothing speaks against one; refuse: no key and the ledger is someone else's */
  action: 'present' | 'create' | 'refuse';
  untrusted: UntrustedKey[];
  /** what to print: the refusal with the ways out, or the warning */
  message?: string;
}

const groups = (hex: string) => hex.match(/.{1,4}/g)?.join(' ') ?? hex;

export async function checkSigningKey(db: Kysely<DB>, opts: { signingKeyFile: string; trustedKeysDir: string; database?: string }): Promise<KeyCheck> {
  let byKey: Awaited<ReturnType<LedgerRepository['recordsByKey']>>;
  try {
    byKey = await new LedgerRepository(db).recordsByKey();
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') byKey = []; // no ledger table yet: a fresh database
    else throw err;
  }
  const haveKey = existsSync(opts.signingKeyFile);
  const trusted = trustedKeys(haveKey ? loadSigner(opts.signingKeyFile) : undefined, opts.trustedKeysDir);
  const untrusted = byKey.filter((k) => !trusted.has(k.keyId));
  if (untrusted.length === 0) return { action: haveKey ? 'present' : 'create', untrusted };

  const where = opts.database ? `The database ${opts.database}` : 'The database';
  const list = untrusted.map((k) => `    key ${k.keyId}${k.fingerprint ? ` (sha256:${groups(k.fingerprint)})` : ''}: ${k.records} record(s) of ${k.tenants} tenant(s)`).join('\n');
  if (haveKey) {
    return {
      action: 'present', untrusted,
      message: `warning: ${where} holds evidence records signed by key(s) this installation does not trust:\n${list}\n`
        + '  GET /api/v1/evidence/verify will report those records as unknown-key. Is the database shared with another checkout or installation?\n'
        + `  If those records are this installation's own (an older key whose public key went missing), put that key's public key into ${opts.trustedKeysDir}/<keyid>.pub.pem;\n`
        + '  otherwise give each installation a database of its own (docs/operations.md#one-database-one-signing-key).',
    };
  }
  return {
    action: 'refuse', untrusted,
    message: `refusing to create a new evidence signing key (${opts.signingKeyFile}):\n`
      + `  ${where} already holds an evidence ledger signed by key(s) this installation does not have:\n${list}\n`
      + '  A new key would sign records that do not verify together with these: every installation sharing the database would\n'
      + '  see the other one\'s records as unknown-key, and verification would fail from the first record.\n'
      + 'Ways out (one of):\n'
      + '  1. This checkout is (a new home of) the installation that signed them: copy its key and trusted public keys here,\n'
      + `       <its state folder>/secrets/signing-key.pem  ->  ${opts.signingKeyFile}   (mode 600)\n`
      + `       <its state folder>/keys/*.pub.pem          ->  ${opts.trustedKeysDir}/\n`
      + '     or run set-up with its state folder: ERNSTFALL_STATE_DIR=<its state folder> npm run setup\n'
      + '     (`npm run keys -- show` there prints the key id and fingerprint listed above).\n'
      + '  2. The private key is lost, but you have the public key of every key listed (compare the fingerprint with your reports):\n'
      + `     put each as ${opts.trustedKeysDir}/<keyid>.pub.pem and run npm run setup again; a new key then signs from now on\n`
      + '     and the old records still verify.\n'
      + '  3. This checkout is a separate installation (a second checkout, a test copy): give it a PostgreSQL database of its own\n'
      + '     (deploy/README.md, "Manual set-up") instead of sharing `ernstfall` with the other one.',
  };
}
