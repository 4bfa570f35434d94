import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { LedgerRepository, type StoredRecord } from '../../db/repositories/ledger.repository.js';
import { addDuration } from '../util/calendar.js';
import { ZERO_HASH, sealCheckpoint, sealRecord, parseEnvelope, type Bundle, type Checkpoint, type LedgerRecord, type RecordKind } from './ledger-format.js';
import { verifyChain, type VerifyResult } from './verify.js';
import { publishPublicKey, trustedKeys, type Signer } from './signing-key.js';

export interface EvidenceConfig {
  trustedKeysDir: string;
  checkpointDir: string;
  recordRetention: string;
  attachmentRetention: string;
}

export interface Attachment {
  name: string;
  content: Buffer;
  /** Kept as long as the record itself (a person's evidence of a manual test), not only the attachment retention (tool output). */
  retain?: 'record';
}

const day = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The per-tenant, append-only, hash-chained and signed evidence ledger.
 * Appends happen inside the caller's transaction (so a run and its record are
 * stored together); the chain head is anchored outside the database in a
 * signed checkpoint file after every commit.
 */
export class LedgerService {
  readonly repo: LedgerRepository;
  constructor(
    private readonly db: Kysely<DB>,
    private readonly signer: Signer,
    private readonly cfg: EvidenceConfig,
    private readonly log: Logger,
  ) {
    this.repo = new LedgerRepository(db);
  }

  /** Publishes the current public key (trusted folder and database copy). Call once at start. */
  async init(): Promise<void> {
    publishPublicKey(this.signer, this.cfg.trustedKeysDir);
    await this.repo.registerKey(this.signer.keyId, this.signer.publicPem, this.signer.fingerprint);
  }

  get keyId(): string {
    return this.signer.keyId;
  }

  async append(
    trx: Transaction<DB>,
    e: { tenantId: string; kind: RecordKind; subjectId: string; payload: Record<string, unknown>; attachments?: Attachment[]; now?: Date },
  ): Promise<LedgerRecord> {
    await this.repo.lockTenant(trx, e.tenantId);
    const head = await this.repo.head(e.tenantId, trx);
    const now = e.now ?? new Date();
    const retainUntil = day(addDuration(now, this.cfg.recordRetention, 'Europe/Berlin'));
    const attachmentRetainUntil = day(addDuration(now, this.cfg.attachmentRetention, 'Europe/Berlin'));
    const attachments = (e.attachments ?? []).map((a) => ({
      name: a.name, content: a.content, sha256: createHash('sha256').update(a.content).digest('hex'), retainUntil: a.retain === 'record' ? retainUntil : attachmentRetainUntil,
    }));
    const payload = attachments.length
      ? { ...e.payload, attachments: attachments.map((a) => ({ name: a.name, sha256: a.sha256, sizeBytes: a.content.length, retainUntil: a.retainUntil })) }
      : e.payload;
    const record = sealRecord({
      v: 1, tenantId: e.tenantId, seq: (head?.seq ?? 0) + 1, kind: e.kind, subjectId: e.subjectId,
      createdAt: now.toISOString(), retainUntil, prevHash: head?.hash ?? ZERO_HASH, payload,
    }, this.signer.privateKey, this.signer.keyId);
    await this.repo.insert(record, now, retainUntil, trx);
    for (const a of attachments) {
      await this.repo.addAttachment({ tenantId: e.tenantId, recordHash: record.hash, name: a.name, sha256: a.sha256, content: a.content, retainUntil: a.retainUntil }, trx);
    }
    return record;
  }

  /** Appends in a transaction of its own and anchors the new head. */
  async appendNow(e: Parameters<LedgerService['append']>[1]): Promise<LedgerRecord> {
    const rec = await this.db.transaction().execute((trx) => this.append(trx, e));
    this.checkpoint(rec);
    return rec;
  }

  private checkpointFile(tenantId: string): string {
    return join(this.cfg.checkpointDir, `${tenantId}.jsonl`);
  }

  /** Writes the signed chain head outside the database. Failing to write is logged loudly, never silent. */
  checkpoint(rec: Pick<LedgerRecord, 'tenantId' | 'seq' | 'hash'>): Checkpoint | undefined {
    try {
      mkdirSync(this.cfg.checkpointDir, { recursive: true });
      const cp = sealCheckpoint({ tenantId: rec.tenantId, seq: rec.seq, hash: rec.hash, at: new Date().toISOString() }, this.signer.privateKey, this.signer.keyId);
      appendFileSync(this.checkpointFile(rec.tenantId), `${JSON.stringify(cp)}\n`);
      return cp;
    } catch (err) {
      this.log.error({ err: (err as Error).message, tenantId: rec.tenantId }, 'could not write evidence checkpoint');
      return undefined;
    }
  }

  /** The chain head as it is in the database now, signed (not written anywhere): for checkpoints sent out of the server. */
  async signedHead(tenantId: string): Promise<Checkpoint | null> {
    const head = await this.repo.head(tenantId);
    if (!head) return null;
    return sealCheckpoint({ tenantId, seq: head.seq, hash: head.hash, at: new Date().toISOString() }, this.signer.privateKey, this.signer.keyId);
  }

  checkpoints(tenantId: string): Checkpoint[] {
    const f = this.checkpointFile(tenantId);
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Checkpoint);
  }

  newestCheckpoint(tenantId: string): { seq: number; hash: string; at: string; keyId: string } | null {
    const all = this.checkpoints(tenantId);
    const last = all.at(-1);
    if (!last) return null;
    const body = JSON.parse(last.canonical) as { seq: number; hash: string; at: string };
    return { seq: body.seq, hash: body.hash, at: body.at, keyId: last.keyId };
  }

  trusted() {
    return trustedKeys(this.signer, this.cfg.trustedKeysDir);
  }

  async verify(tenantId: string): Promise<VerifyResult> {
    const records = await this.repo.list(tenantId);
    return verifyChain(records, { trustedKeys: this.trusted(), checkpoints: this.checkpoints(tenantId), tenantId });
  }

  /** A contiguous chain segment with keys and checkpoints, verifiable offline. */
  async bundle(tenantId: string, opts: { fromSeq?: number; toSeq?: number } = {}): Promise<Bundle> {
    const records = await this.repo.list(tenantId, opts);
    const first = records[0];
    const anchorPrevHash = first ? parseEnvelope(first).prevHash : ZERO_HASH;
    const keyIds = [...new Set([...records.map((r) => r.keyId), this.signer.keyId])];
    const keys = await this.repo.keys(keyIds);
    const attachments = [];
    for (const r of records) {
      for (const a of await this.repo.attachments(tenantId, r.hash)) attachments.push({ recordHash: r.hash, name: a.name, sha256: a.sha256, sizeBytes: a.size_bytes });
    }
    return {
      format: 'ernstfall-evidence-bundle', version: 1, tenantId, exportedAt: new Date().toISOString(), anchorPrevHash,
      records: records.map(stripStored), publicKeys: keys.map((k) => ({ keyId: k.key_id, pem: k.public_key_pem })),
      // checkpoints beyond the segment would (rightly) read as deleted records: a partial export leaves them out
      checkpoints: this.checkpoints(tenantId).filter((cp) => opts.toSeq === undefined || (JSON.parse(cp.canonical) as { seq: number }).seq <= opts.toSeq), attachments,
    } as Bundle;
  }
}

export function stripStored(r: StoredRecord): LedgerRecord {
  return { tenantId: r.tenantId, seq: r.seq, kind: r.kind, subjectId: r.subjectId, canonical: r.canonical, hash: r.hash, signature: r.signature, keyId: r.keyId };
}
