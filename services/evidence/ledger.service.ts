import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { LedgerRepository, type StoredRecord } from '../../db/repositories/ledger.repository.js';
import { addDuration } from '../util/calendar.js';
import { ZERO_HASH, sealCheckpoint, sealRecord, parseCheckpoint, parseEnvelope, type Bundle, type Checkpoint, type CheckpointBody, type LedgerRecord, type RecordKind } from './ledger-format.js';
import { verifyChain, type VerifyResult } from './verify.js';
import { publishPublicKey, trustedKeys, type Signer } from './signing-key.js';
import type { Clock } from '../clock.js';

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

/** A cheap verification trusts what it verified before for at most this long; then the next one is full again. */
export const FULL_VERIFY_EVERY_MS = 60 * 60_000;

/** What this process verified last, per tenant: incremental verification goes on from here. */
interface VerifiedHead {
  seq: number;
  hash: string;
  records: number;
  ledgerId: string | null;
  /** bytes of the checkpoint file already compared */
  cpOffset: number;
  /** the newest own checkpoint seen: a later, shorter chain must still reach it */
  newest: { cp: Checkpoint; seq: number } | null;
  checked: number;
  foreign: VerifyResult['foreign'];
  /** When the chain was last verified in full (monotonic, performance.now()). */
  fullAt: number;
}

export interface LedgerVerifyResult extends VerifyResult {
  /** full: every record from seq 1; incremental: only the records after the last verified head (this process's memory) */
  mode: 'full' | 'incremental';
  /** the first seq whose signature was checked by this call (null: nothing new) */
  verifiedFromSeq: number | null;
}

function readBody(cp: Checkpoint): CheckpointBody | null {
  try {
    return parseCheckpoint(cp);
  } catch {
    return null;
  }
}

/** The last `n` bytes of a file ending at `end`. */
function readTail(fd: number, end: number, n: number): Buffer {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const r = readSync(fd, buf, got, n - got, end - n + got);
    if (r === 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}

function parseLine(line: string): Checkpoint {
  try {
    const v = JSON.parse(line) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Checkpoint;
  } catch { /* reported by verification as an unreadable checkpoint */ }
  return { canonical: line, signature: '', keyId: '' };
}

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
    /** Business time: a record's `at`, a checkpoint's, a bundle's `exportedAt` (services/clock.ts). */
    private readonly clock: Clock,
  ) {
    this.repo = new LedgerRepository(db);
  }

  /** Publishes the current public key (trusted folder and database copy). Call once at start. */
  async init(): Promise<void> {
    publishPublicKey(this.signer, this.cfg.trustedKeysDir);
    await this.repo.registerKey(this.signer.keyId, this.signer.publicPem, this.signer.fingerprint);
    // which ledger each tenant's chain is, so newestCheckpoint() leaves other ledgers' checkpoints out from the start
    for (const r of await this.repo.ledgerIds()) this.ledgerIds.set(r.tenant_id, r.ledger_id);
  }

  /** Drops the content of attachments past their retention (today by this ledger's clock); the records and hashes stay. */
  pruneAttachments(): Promise<number> {
    return this.repo.pruneAttachments(this.clock());
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
    const ledgerId = await this.repo.ledgerId(e.tenantId, trx);
    const now = e.now ?? this.clock();
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
      createdAt: now.toISOString(), retainUntil, prevHash: head?.hash ?? ZERO_HASH, ledgerId, payload,
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

  /** Ledger ids of committed records this process has seen (the checkpoint writer and readers use them). */
  private readonly ledgerIds = new Map<string, string>();
  private readonly verified = new Map<string, VerifiedHead>();
  private readonly verifying = new Map<string, Promise<LedgerVerifyResult>>();

  /**
   * Writes the signed chain head outside the database, naming its ledger.
   * Several processes append to the same file: each line is one write(2) with
   * O_APPEND, so lines never interleave, but they may be out of seq order
   * (readers take the highest seq, not the last line). Failing to write is
   * logged loudly, never silent.
   */
  checkpoint(rec: Pick<LedgerRecord, 'tenantId' | 'seq' | 'hash'> & { canonical?: string }): Checkpoint | undefined {
    try {
      mkdirSync(this.cfg.checkpointDir, { recursive: true });
      let ledgerId: string | undefined;
      if (rec.canonical !== undefined) ledgerId = parseEnvelope(rec as Pick<LedgerRecord, 'canonical'>).ledgerId;
      if (ledgerId) this.ledgerIds.set(rec.tenantId, ledgerId);
      else ledgerId = this.ledgerIds.get(rec.tenantId);
      const cp = sealCheckpoint({ tenantId: rec.tenantId, ledgerId, seq: rec.seq, hash: rec.hash, at: this.clock().toISOString() }, this.signer.privateKey, this.signer.keyId);
      const line = Buffer.from(`${JSON.stringify(cp)}\n`, 'utf8');
      const fd = openSync(this.checkpointFile(rec.tenantId), 'a+', 0o644); // O_RDWR | O_CREAT | O_APPEND (read: to cut a fragment)
      try {
        const n = writeSync(fd, line, 0, line.length);
        if (n !== line.length) {
          // a full disk takes part of a line: cut it off again, or the next line would be glued to it and
          // read as an unreadable checkpoint (only when the file ends with exactly this fragment: another writer's line stays)
          const end = fstatSync(fd).size;
          if (n > 0 && end >= n && readTail(fd, end, n).equals(line.subarray(0, n))) ftruncateSync(fd, end - n);
          throw new Error(`short write (${n} of ${line.length} bytes): disk full?`);
        }
      } finally {
        closeSync(fd);
      }
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
    const ledgerId = await this.repo.ledgerId(tenantId);
    return sealCheckpoint({ tenantId, ledgerId, seq: head.seq, hash: head.hash, at: this.clock().toISOString() }, this.signer.privateKey, this.signer.keyId);
  }

  /** Complete lines of the tenant's checkpoint file from byte `from` on; `end` is where the next read starts, `size` the file's size. */
  private readCheckpoints(tenantId: string, from = 0): { checkpoints: Checkpoint[]; end: number; size: number } {
    const f = this.checkpointFile(tenantId);
    if (!existsSync(f)) return { checkpoints: [], end: 0, size: 0 };
    const fd = openSync(f, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= from) return { checkpoints: [], end: from, size };
      const buf = Buffer.alloc(size - from);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, from + got);
        if (n === 0) break;
        got += n;
      }
      // a line still being written (no newline yet) is read next time
      const last = buf.lastIndexOf(0x0a, got - 1);
      if (last < 0) return { checkpoints: [], end: from, size };
      const text = buf.subarray(0, last + 1).toString('utf8');
      return { checkpoints: text.split('\n').filter((l) => l.trim()).map(parseLine), end: from + last + 1, size };
    } finally {
      closeSync(fd);
    }
  }

  /** Every checkpoint in the tenant's file, of any ledger, in file order. */
  checkpoints(tenantId: string): Checkpoint[] {
    return this.readCheckpoints(tenantId).checkpoints;
  }

  /**
   * The checkpoint with the highest seq (not the last line: processes append
   * out of order) among this chain's own: checkpoints naming another ledger
   * are left out once this process knows its ledger id.
   */
  newestCheckpoint(tenantId: string): { seq: number; hash: string; at: string; keyId: string; ledgerId: string | null } | null {
    const own = this.ledgerIds.get(tenantId) ?? this.verified.get(tenantId)?.ledgerId ?? undefined;
    let best: { seq: number; hash: string; at: string; keyId: string; ledgerId: string | null } | null = null;
    for (const cp of this.checkpoints(tenantId)) {
      const b = readBody(cp);
      if (!b || b.tenantId !== tenantId || (own !== undefined && b.ledgerId !== undefined && b.ledgerId !== own)) continue;
      if (!best || b.seq >= best.seq) best = { seq: b.seq, hash: b.hash, at: b.at, keyId: cp.keyId, ledgerId: b.ledgerId ?? null };
    }
    return best;
  }

  trusted() {
    return trustedKeys(this.signer, this.cfg.trustedKeysDir);
  }

  /**
   * Verifies the tenant's chain. By default incrementally: records after the
   * head this process verified last (and checkpoints written since) are
   * checked, the rest is trusted from that verification for at most
   * FULL_VERIFY_EVERY_MS; `full` verifies every record from seq 1. Calls for
   * the same tenant at the same time share one verification.
   */
  verify(tenantId: string, opts: { full?: boolean } = {}): Promise<LedgerVerifyResult> {
    const key = `${tenantId}:${opts.full ? 'full' : 'auto'}`;
    const running = this.verifying.get(key);
    if (running) return running;
    const p = this.verifyNow(tenantId, opts.full === true).finally(() => this.verifying.delete(key));
    this.verifying.set(key, p);
    return p;
  }

  /** Forgets what this process verified (the next verification is full). */
  forgetVerified(tenantId?: string): void {
    if (tenantId) this.verified.delete(tenantId);
    else this.verified.clear();
  }

  private async verifyNow(tenantId: string, full: boolean): Promise<LedgerVerifyResult> {
    const cached = this.verified.get(tenantId);
    if (!full && cached && performance.now() - cached.fullAt < FULL_VERIFY_EVERY_MS) {
      const r = await this.verifyIncrementally(tenantId, cached);
      if (r) return r;
    }
    // checkpoints first: every checkpoint read then names a record committed before the records are read
    const cps = this.readCheckpoints(tenantId);
    const records = await this.repo.list(tenantId);
    const ledgerId = await this.repo.findLedgerId(tenantId);
    const r = verifyChain(records, { trustedKeys: this.trusted(), checkpoints: cps.checkpoints, tenantId, ledgerId });
    if (r.ok) this.remember(tenantId, r, cps.checkpoints, cps.end, null, performance.now());
    else this.verified.delete(tenantId);
    return { ...r, mode: 'full', verifiedFromSeq: records.length ? records[0]!.seq : null };
  }

  /** Verifies what came after `c`; undefined when that cannot be done (something below changed): then a full verification follows. */
  private async verifyIncrementally(tenantId: string, c: VerifiedHead): Promise<LedgerVerifyResult | undefined> {
    const cps = this.readCheckpoints(tenantId, c.cpOffset);
    if (cps.size < c.cpOffset) return undefined; // the checkpoint file was cut or replaced
    const records = await this.repo.list(tenantId, { fromSeq: c.seq });
    const anchor = records[0];
    if (!anchor || anchor.seq !== c.seq || anchor.hash !== c.hash) return undefined; // the verified head changed or is gone
    const fresh = records.slice(1);
    const prior = new Set<number>([c.seq]);
    if (c.newest) prior.add(c.newest.seq);
    for (const cp of cps.checkpoints) {
      const b = readBody(cp);
      if (b && b.seq <= c.seq) prior.add(b.seq);
    }
    const priorHashes = await this.repo.hashes(tenantId, [...prior]);
    const ledgerId = await this.repo.findLedgerId(tenantId);
    const r = verifyChain(fresh, {
      trustedKeys: this.trusted(), anchorPrevHash: c.hash, firstSeq: c.seq + 1, tenantId, ledgerId, knownLedgerId: c.ledgerId ?? undefined, priorHashes,
      // the newest checkpoint seen before still counts: the chain must reach it
      checkpoints: [...(c.newest ? [c.newest.cp] : []), ...cps.checkpoints],
    });
    const newCps = cps.checkpoints;
    const foreign = mergeForeign(c.foreign, r.foreign);
    const merged: LedgerVerifyResult = {
      ...r,
      records: c.records + fresh.length,
      headSeq: fresh.length ? r.headSeq : c.seq,
      headHash: fresh.length ? r.headHash : c.hash,
      checkpoints: {
        checked: c.checked + r.checkpoints.checked - (c.newest && priorHashes.has(c.newest.seq) ? 1 : 0),
        newestSeq: r.checkpoints.newestSeq ?? c.newest?.seq ?? null,
        foreign: foreign.reduce((n, f) => n + f.count, 0),
      },
      ledgerId: r.ledgerId ?? c.ledgerId,
      foreign,
      mode: 'incremental',
      verifiedFromSeq: fresh.length ? c.seq + 1 : null,
    };
    if (merged.ok) this.remember(tenantId, merged, newCps, cps.end, c.newest, c.fullAt);
    else this.verified.delete(tenantId);
    return merged;
  }

  private remember(tenantId: string, r: VerifyResult, cps: Checkpoint[], cpEnd: number, newest: VerifiedHead['newest'], fullAt: number): void {
    if (r.headSeq === null || r.headHash === null) return; // an empty chain: nothing to go on from
    const own = r.ledgerId ?? undefined;
    let best = newest;
    for (const cp of cps) {
      const b = readBody(cp);
      if (!b || b.tenantId !== tenantId || (own !== undefined && b.ledgerId !== undefined && b.ledgerId !== own)) continue;
      if (!best || b.seq >= best.seq) best = { cp, seq: b.seq };
    }
    if (r.ledgerId) this.ledgerIds.set(tenantId, r.ledgerId);
    this.verified.set(tenantId, {
      seq: r.headSeq, hash: r.headHash, records: r.records, ledgerId: r.ledgerId, cpOffset: cpEnd, newest: best,
      checked: r.checkpoints.checked, foreign: r.foreign, fullAt,
    });
  }

  /** A contiguous chain segment with keys and checkpoints, verifiable offline. */
  async bundle(tenantId: string, opts: { fromSeq?: number; toSeq?: number } = {}): Promise<Bundle> {
    const cps = this.checkpoints(tenantId);
    const records = await this.repo.list(tenantId, opts);
    const ledgerId = await this.repo.findLedgerId(tenantId);
    const first = records[0];
    const anchorPrevHash = first ? parseEnvelope(first).prevHash : ZERO_HASH;
    const keyIds = [...new Set([...records.map((r) => r.keyId), this.signer.keyId])];
    const keys = await this.repo.keys(keyIds);
    const attachments = [];
    for (const r of records) {
      for (const a of await this.repo.attachments(tenantId, r.hash)) attachments.push({ recordHash: r.hash, name: a.name, sha256: a.sha256, sizeBytes: a.size_bytes });
    }
    return {
      format: 'ernstfall-evidence-bundle', version: 1, tenantId, ...(ledgerId && { ledgerId }), exportedAt: this.clock().toISOString(), anchorPrevHash,
      records: records.map(stripStored), publicKeys: keys.map((k) => ({ keyId: k.key_id, pem: k.public_key_pem })),
      // checkpoints beyond the segment would (rightly) read as deleted records: a partial export leaves them out
      // and checkpoints of other ledgers (another database's chain of the same tenant id) are none of this chain's
      checkpoints: cps.filter((cp) => {
        const b = readBody(cp);
        if (!b) return true; // unreadable: the verifier says so
        return (opts.toSeq === undefined || b.seq <= opts.toSeq) && (ledgerId === undefined || b.ledgerId === undefined || b.ledgerId === ledgerId);
      }), attachments,
    } as Bundle;
  }
}

export function stripStored(r: StoredRecord): LedgerRecord {
  return { tenantId: r.tenantId, seq: r.seq, kind: r.kind, subjectId: r.subjectId, canonical: r.canonical, hash: r.hash, signature: r.signature, keyId: r.keyId };
}

function mergeForeign(a: VerifyResult['foreign'], b: VerifyResult['foreign']): VerifyResult['foreign'] {
  const out = new Map(a.map((f) => [f.ledgerId, { ...f }]));
  for (const f of b) {
    const known = out.get(f.ledgerId);
    if (!known) out.set(f.ledgerId, { ...f });
    else {
      known.count += f.count;
      known.newestSeq = Math.max(known.newestSeq, f.newestSeq);
      known.message = f.message.replace(/^\d+ checkpoint\(s\) up to seq \d+/, `${known.count} checkpoint(s) up to seq ${known.newestSeq}`);
    }
  }
  return [...out.values()];
}
