import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Signer {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  fingerprint: string;
  publicPem: string;
}

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
export const fingerprintOfKey = (k: KeyObject): string => createHash('sha256').update(spki(k)).digest('hex');
export const keyIdOfKey = (k: KeyObject): string => fingerprintOfKey(k).slice(0, 16);

export class SigningKeyError extends Error {}

/** Loads the Ed25519 signing key; never logs or returns the private part as text. */
export function loadSigner(file: string): Signer {
  if (!existsSync(file)) {
    throw new SigningKeyError(`signing key ${file} does not exist; create it with \`npm run keys -- init\` (npm run setup does)`);
  }
  const privateKey = createPrivateKey(readFileSync(file));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`signing key ${file} is not an Ed25519 key`);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey, publicKey, keyId: keyIdOfKey(publicKey), fingerprint: fingerprintOfKey(publicKey),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Stands in for the key in a process that must not sign (a worker-only process,
 * central signing): every use throws, so nothing is signed there by mistake.
 */
export function noSigner(why: string): Signer {
  const refuse = (): never => {
    throw new SigningKeyError(why);
  };
  return {
    get privateKey() { return refuse(); },
    get publicKey() { return refuse(); },
    get keyId() { return refuse(); },
    get fingerprint() { return refuse(); },
    get publicPem() { return refuse(); },
  };
}

/** Writes the public key into the trusted-keys folder, so it stays trusted after a rotation. */
export function publishPublicKey(signer: Signer, trustedDir: string): void {
  mkdirSync(trustedDir, { recursive: true });
  const f = join(trustedDir, `${signer.keyId}.pub.pem`);
  if (!existsSync(f)) writeFileSync(f, signer.publicPem, { mode: 0o644 });
}

/**
 * Keys trusted for verification: the current one and every *.pub.pem in the
 * folder. The database's copy of keys is never trusted: whoever can write the
 * database could add a key of their own.
 */
export function trustedKeys(signer: Signer | undefined, trustedDir: string): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  if (signer) keys.set(signer.keyId, signer.publicKey);
  if (existsSync(trustedDir)) {
    for (const f of readdirSync(trustedDir).filter((n) => n.endsWith('.pub.pem'))) {
      const k = createPublicKey(readFileSync(join(trustedDir, f)));
      keys.set(keyIdOfKey(k), k);
    }
  }
  return keys;
}

/** Creates a key if there is none (idempotent). Returns whether one was created. */
export function initSigningKey(file: string): boolean {
  if (existsSync(file)) return false;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  return true;
}

/**
 * A new key signs from now on; the old public key stays trusted (in the
 * folder), the old private key is destroyed so it cannot sign again.
 */
export function rotateSigningKey(file: string, trustedDir: string): { oldKeyId: string; newKeyId: string } {
  const old = loadSigner(file);
  publishPublicKey(old, trustedDir);
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.new`;
  writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  renameSync(tmp, file);
  const fresh = loadSigner(file);
  publishPublicKey(fresh, trustedDir);
  return { oldKeyId: old.keyId, newKeyId: fresh.keyId };
}
