/**
 * The evidence ledger's record format (docs/decisions/006-evidence-ledger.md):
 * sealing records and checkpoints and reading their envelopes. Pure: no I/O.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../util/canonical-json.js';

export type RecordKind = 'run' | 'review' | 'measure' | 'audit' | 'restart-test';
export const RECORD_KINDS: readonly RecordKind[] = ['run', 'review', 'measure', 'audit', 'restart-test'];

/** A record as stored, exported and verified. */
export interface LedgerRecord {
  tenantId: string;
  seq: number;
  kind: RecordKind;
  subjectId: string;
  /** the envelope in canonical JSON; hash and signature cover its UTF-8 bytes */
  canonical: string;
  /** sha256 hex of canonical */
  hash: string;
  /** base64 Ed25519 signature over canonical */
  signature: string;
  /** first 16 hex chars of sha256 over the signing key's SPKI DER */
  keyId: string;
}

/** What `canonical` contains. */
export interface Envelope {
  v: 1;
  tenantId: string;
  seq: number;
  kind: RecordKind;
  subjectId: string;
  /** ISO 8601 UTC */
  createdAt: string;
  /** YYYY-MM-DD */
  retainUntil: string;
  /** hash of the record seq - 1; ZERO_HASH for seq 1 */
  prevHash: string;
  /**
   * The ledger this record belongs to: a uuid made once per database and tenant
   * chain (table ledger_chains). Records written before migration 0016 have none;
   * from the first record that has one, every later record carries the same.
   * docs/decisions/015-ledger-id.md
   */
  ledgerId?: string;
  payload: Record<string, unknown>;
}

/** The signed chain head, kept outside the database (one per line in <state>/checkpoints/<tenantId>.jsonl). */
export interface Checkpoint {
  canonical: string;
  signature: string;
  keyId: string;
}

export interface CheckpointBody {
  v: 1;
  type: 'checkpoint';
  tenantId: string;
  /** The ledger the checkpoint vouches for (absent in checkpoints written before migration 0016). */
  ledgerId?: string;
  seq: number;
  hash: string;
  at: string;
}

export interface BundleKey {
  keyId: string;
  pem: string;
}

export interface BundleAttachment {
  recordHash: string;
  name: string;
  sha256: string;
  sizeBytes: number;
}

/** A chain segment with keys and checkpoints, for offline verification (`npm run evidence:verify`). */
export interface Bundle {
  format: 'ernstfall-evidence-bundle';
  version: 1;
  tenantId: string;
  /** The ledger the records belong to (absent in bundles exported before migration 0016). */
  ledgerId?: string;
  exportedAt: string;
  /** prevHash expected for the first record; ZERO_HASH when the segment starts at seq 1 */
  anchorPrevHash: string;
  records: LedgerRecord[];
  publicKeys: BundleKey[];
  checkpoints: Checkpoint[];
  attachments: BundleAttachment[];
}

export const BUNDLE_FORMAT = 'ernstfall-evidence-bundle';
export const ZERO_HASH = '0'.repeat(64);

/** A record or checkpoint that cannot be read (not JSON, not an object, wrong shape). */
export class LedgerFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerFormatError';
  }
}

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

const spkiDer = (publicKey: KeyObject): Buffer => publicKey.export({ type: 'spki', format: 'der' });

/** Full sha256 hex over the public key's SPKI DER (what `openssl pkey -pubin -outform DER | sha256sum` prints). */
export function fingerprintOf(publicKey: KeyObject): string {
  return sha256Hex(spkiDer(publicKey));
}

/** First 16 hex chars of the fingerprint. */
export function keyIdOf(publicKey: KeyObject): string {
  return fingerprintOf(publicKey).slice(0, 16);
}

/** Canonical JSON of the envelope, its hash and its Ed25519 signature. */
export function sealRecord(env: Envelope, privateKey: KeyObject, keyId: string): LedgerRecord {
  const canonical = canonicalJson(env);
  const bytes = Buffer.from(canonical, 'utf8');
  return {
    tenantId: env.tenantId, seq: env.seq, kind: env.kind, subjectId: env.subjectId,
    canonical, hash: sha256Hex(bytes), signature: sign(null, bytes, privateKey).toString('base64'), keyId,
  };
}

export function sealCheckpoint(head: { tenantId: string; ledgerId?: string; seq: number; hash: string; at: string }, privateKey: KeyObject, keyId: string): Checkpoint {
  const body: CheckpointBody = { v: 1, type: 'checkpoint', tenantId: head.tenantId, ledgerId: head.ledgerId, seq: head.seq, hash: head.hash, at: head.at };
  const canonical = canonicalJson(body);
  return { canonical, signature: sign(null, Buffer.from(canonical, 'utf8'), privateKey).toString('base64'), keyId };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseObject(text: unknown, what: string): Record<string, unknown> {
  if (typeof text !== 'string') throw new LedgerFormatError(`${what}: canonical is not a string`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new LedgerFormatError(`${what}: canonical is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(v)) throw new LedgerFormatError(`${what}: canonical is not a JSON object`);
  return v;
}

/**
 * The envelope inside a record. Throws LedgerFormatError when `canonical` is
 * not a JSON object; whether it matches the record is verifyChain's job.
 */
export function parseEnvelope(record: Pick<LedgerRecord, 'canonical'> & { seq?: number }): Envelope {
  const what = record.seq === undefined ? 'record' : `record ${record.seq}`;
  const env = parseObject(record.canonical, what);
  if (!isObject(env.payload)) throw new LedgerFormatError(`${what}: envelope has no payload object`);
  return env as unknown as Envelope;
}

/** The body of a checkpoint; throws LedgerFormatError unless it has the checkpoint shape. */
export function parseCheckpoint(cp: Pick<Checkpoint, 'canonical'>): CheckpointBody {
  const b = parseObject(cp.canonical, 'checkpoint');
  if (b.v !== 1 || b.type !== 'checkpoint' || typeof b.tenantId !== 'string' || !Number.isSafeInteger(b.seq) || (b.seq as number) < 1
    || typeof b.hash !== 'string' || typeof b.at !== 'string' || (b.ledgerId !== undefined && typeof b.ledgerId !== 'string')) {
    throw new LedgerFormatError('checkpoint: not a v1 checkpoint {v, type, tenantId, ledgerId?, seq, hash, at}');
  }
  return b as unknown as CheckpointBody;
}
