import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import * as OTPAuth from 'otpauth';

// ---- passwords: Node's scrypt, never stored plain -------------------------------------------------

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const;
const MAXMEM = 128 * SCRYPT.N * SCRYPT.r * 2;

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((res, rej) => scrypt(password.normalize('NFC'), salt, keylen, { N, r, p, maxmem: MAXMEM }, (err, key) => (err ? rej(err) : res(key))));
}

/** `scrypt$N$r$p$salt$hash` (salt and hash base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A stored hash that no password matches: verifying against it costs the same time as a real one (no user enumeration by timing). */
const DUMMY = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? DUMMY).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), Number(n), Number(r), Number(p), expected.length);
  return stored !== null && timingSafeEqual(key, expected);
}

/** What the password rules say about a password, or null when it is acceptable (BSI ORP.4: length over complexity). */
export function passwordProblem(password: string, email?: string): string | null {
  if (password.length < 12) return 'at least 12 characters';
  if (password.length > 256) return 'at most 256 characters';
  if (new Set(password).size < 5) return 'too few different characters';
  if (email && password.toLowerCase().includes(email.split('@')[0]!.toLowerCase())) return 'must not contain the e-mail name';
  return null;
}

// ---- secrets at rest (TOTP secrets): AES-256-GCM under a key derived from ERNSTFALL_SECRET_KEY -----

export class SecretBox {
  private readonly key: Buffer;
  constructor(material: Buffer, purpose: string) {
    this.key = Buffer.from(hkdfSync('sha256', material, 'ernstfall', purpose, 32));
  }
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64url')}.${body.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
  }
  open(sealed: string): string {
    const [v, iv, body, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || body === undefined || !tag) throw new Error('not a sealed secret');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
  }
}

// ---- TOTP (RFC 6238; what every authenticator app speaks) ---------------------------------------

export const TOTP_PERIOD = 30;

export function newTotpSecret(): string {
  return new OTPAuth.Secret({ size: 20 }).base32;
}

export function totpUri(secretBase32: string, account: string, issuer = 'ernstfall'): string {
  return new OTPAuth.TOTP({ issuer, label: account, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD, secret: OTPAuth.Secret.fromBase32(secretBase32) }).toString();
}

/** The code for a moment (tests compute codes exactly like an authenticator app). */
export function totpCode(secretBase32: string, at: Date): string {
  return new OTPAuth.TOTP({ algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD, secret: OTPAuth.Secret.fromBase32(secretBase32) }).generate({ timestamp: at.getTime() });
}

/**
 * The 30-second step the code belongs to (±1 step of clock drift), or null.
 * The caller accepts it only if it is newer than the last step accepted for
 * the user: a code works once.
 */
export function totpStep(secretBase32: string, code: string, at: Date): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const totp = new OTPAuth.TOTP({ algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD, secret: OTPAuth.Secret.fromBase32(secretBase32) });
  const delta = totp.validate({ token: code, timestamp: at.getTime(), window: 1 });
  return delta === null ? null : Math.floor(at.getTime() / 1000 / TOTP_PERIOD) + delta;
}

// ---- recovery codes and random tokens -----------------------------------------------------------

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
export const randomToken = (prefix: string, bytes = 32) => `${prefix}${randomBytes(bytes).toString('base64url')}`;

const RC_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten single-use codes like `k7m2-x9qp-4hrt`; shown once, stored as SHA-256. */
export function newRecoveryCodes(n = 10): string[] {
  return Array.from({ length: n }, () => {
    const b = randomBytes(12);
    const chars = [...b].map((x) => RC_ALPHABET[x % RC_ALPHABET.length]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
  });
}

export const normaliseRecoveryCode = (code: string) => code.trim().toLowerCase().replace(/[\s-]/g, '').replace(/(.{4})(.{4})(.{4})/, '$1-$2-$3');

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}
