import { createHash, verify as verifySig, type KeyObject } from 'node:crypto';
import type { LedgerService } from './ledger.service.js';
import { fingerprintOfKey } from './signing-key.js';
import type { StoredRecord } from '../../db/repositories/ledger.repository.js';

export interface RunEvidenceStatus {
  seq: number;
  hash: string;
  keyId: string;
  /** the canonical JSON hashes to the stored hash */
  hashOk: boolean;
  /** the signature verifies with a trusted key */
  signatureOk: boolean;
  trustedKey: boolean;
  fingerprint: string | null;
  createdAt: Date;
  retainUntil: string;
  attachments: { name: string; sha256: string; sizeBytes: number; retainUntil: string; pruned: boolean }[];
  /** the stored record and its trusted key, for callers that show them */
  record: StoredRecord;
  key: KeyObject | undefined;
}

/**
 * The signed record of a finished run and whether it verifies, as
 * GET /api/v1/runs/{id}/evidence computes it; undefined while the run has no
 * record yet. Attachment contents are never read out, only their identity.
 */
export async function runEvidenceStatus(ledger: LedgerService, tenantId: string, runId: string): Promise<RunEvidenceStatus | undefined> {
  const rec = (await ledger.repo.bySubject(tenantId, 'run', runId))[0];
  if (!rec) return undefined;
  const key = ledger.trusted().get(rec.keyId);
  const hashOk = createHash('sha256').update(rec.canonical).digest('hex') === rec.hash;
  let signatureOk = false;
  try {
    signatureOk = key ? verifySig(null, Buffer.from(rec.canonical), key, Buffer.from(rec.signature, 'base64')) : false;
  } catch {
    signatureOk = false;
  }
  const attachments = await ledger.repo.attachments(tenantId, rec.hash);
  return {
    seq: rec.seq, hash: rec.hash, keyId: rec.keyId, hashOk, signatureOk, trustedKey: key !== undefined,
    fingerprint: key ? fingerprintOfKey(key) : null, createdAt: rec.createdAt, retainUntil: rec.retainUntil,
    attachments: attachments.map((a) => ({ name: a.name, sha256: a.sha256, sizeBytes: a.size_bytes, retainUntil: a.retain_until, pruned: a.content === null })),
    record: rec,
    key,
  };
}
