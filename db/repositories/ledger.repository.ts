import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../schema.js';
import type { LedgerRecord } from '../../services/evidence/ledger-format.js';

type Db = Kysely<DB> | Transaction<DB>;

export interface StoredRecord extends LedgerRecord {
  createdAt: Date;
  retainUntil: string;
}

const cols = ['tenant_id', 'seq', 'kind', 'subject_id', 'canonical', 'hash', 'signature', 'key_id', 'created_at', 'retain_until'] as const;

function toRecord(r: { tenant_id: string; seq: number; kind: string; subject_id: string; canonical: string; hash: string; signature: string; key_id: string; created_at: Date; retain_until: string }): StoredRecord {
  return {
    tenantId: r.tenant_id, seq: Number(r.seq), kind: r.kind as LedgerRecord['kind'], subjectId: r.subject_id,
    canonical: r.canonical, hash: r.hash, signature: r.signature, keyId: r.key_id, createdAt: r.created_at, retainUntil: r.retain_until,
  };
}

export class LedgerRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Serialises appends per tenant for the rest of the transaction. */
  async lockTenant(trx: Transaction<DB>, tenantId: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`ernstfall-ledger:${tenantId}`}, 0))`.execute(trx);
  }

  async head(tenantId: string, trx: Db = this.db): Promise<{ seq: number; hash: string } | undefined> {
    const r = await trx.selectFrom('ledger_records').select(['seq', 'hash']).where('tenant_id', '=', tenantId)
      .orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r ? { seq: Number(r.seq), hash: r.hash } : undefined;
  }

  /** The ledger id of the tenant's chain in this database, or undefined before its first record names one. */
  async findLedgerId(tenantId: string, trx: Db = this.db): Promise<string | undefined> {
    const r = await trx.selectFrom('ledger_chains').select('ledger_id').where('tenant_id', '=', tenantId).executeTakeFirst();
    return r?.ledger_id;
  }

  /** The ledger id of the tenant's chain, made (once, never changed) if there is none yet. */
  /** Every tenant chain's ledger id. */
  ledgerIds(trx: Db = this.db): Promise<{ tenant_id: string; ledger_id: string }[]> {
    return trx.selectFrom('ledger_chains').select(['tenant_id', 'ledger_id']).execute();
  }

  async ledgerId(tenantId: string, trx: Db = this.db): Promise<string> {
    await trx.insertInto('ledger_chains').values({ tenant_id: tenantId, ledger_id: randomUUID() })
      .onConflict((oc) => oc.column('tenant_id').doNothing()).execute();
    const id = await this.findLedgerId(tenantId, trx);
    if (!id) throw new Error(`no ledger id for tenant ${tenantId}`);
    return id;
  }

  /** seq → hash of the given records (to compare checkpoints with records verified before). */
  async hashes(tenantId: string, seqs: number[], trx: Db = this.db): Promise<Map<number, string>> {
    if (seqs.length === 0) return new Map();
    const rows = await trx.selectFrom('ledger_records').select(['seq', 'hash']).where('tenant_id', '=', tenantId).where('seq', 'in', seqs).execute();
    return new Map(rows.map((r) => [Number(r.seq), r.hash]));
  }

  /** Records per signing key over all tenants (set-up: is this database's ledger signed by keys we trust?). */
  async recordsByKey(trx: Db = this.db): Promise<{ keyId: string; records: number; tenants: number; fingerprint: string | null }[]> {
    const rows = await trx.selectFrom('ledger_records as r').leftJoin('signing_keys as k', 'k.key_id', 'r.key_id')
      .select(['r.key_id', 'k.fingerprint', sql<string>`count(*)`.as('n'), sql<string>`count(distinct r.tenant_id)`.as('t')])
      .groupBy(['r.key_id', 'k.fingerprint']).orderBy('r.key_id').execute();
    return rows.map((r) => ({ keyId: r.key_id, records: Number(r.n), tenants: Number(r.t), fingerprint: r.fingerprint ?? null }));
  }

  async insert(rec: LedgerRecord, createdAt: Date, retainUntil: string, trx: Db): Promise<void> {
    await trx.insertInto('ledger_records').values({
      tenant_id: rec.tenantId, seq: rec.seq, kind: rec.kind, subject_id: rec.subjectId, canonical: rec.canonical,
      hash: rec.hash, signature: rec.signature, key_id: rec.keyId, created_at: createdAt, retain_until: retainUntil,
    }).execute();
  }

  async list(tenantId: string, opts: { fromSeq?: number; toSeq?: number; kind?: string; from?: Date; to?: Date } = {}, trx: Db = this.db): Promise<StoredRecord[]> {
    let q = trx.selectFrom('ledger_records').select(cols).where('tenant_id', '=', tenantId);
    if (opts.fromSeq !== undefined) q = q.where('seq', '>=', opts.fromSeq);
    if (opts.toSeq !== undefined) q = q.where('seq', '<=', opts.toSeq);
    if (opts.kind) q = q.where('kind', '=', opts.kind);
    if (opts.from) q = q.where('created_at', '>=', opts.from);
    if (opts.to) q = q.where('created_at', '<', opts.to);
    return (await q.orderBy('seq').execute()).map(toRecord);
  }

  /**
   * A page of the tenant's audit records (kind `audit`), newest first; `beforeSeq`
   * is the cursor. The action filter reads the signed envelope itself.
   */
  async auditPage(tenantId: string, q: { action?: string; from?: Date; to?: Date; beforeSeq?: number; limit: number }, trx: Db = this.db): Promise<StoredRecord[]> {
    let s = trx.selectFrom('ledger_records').select(cols).where('tenant_id', '=', tenantId).where('kind', '=', 'audit');
    if (q.action) s = s.where(sql<string>`(canonical::jsonb -> 'payload' ->> 'action')`, '=', q.action);
    if (q.from) s = s.where('created_at', '>=', q.from);
    if (q.to) s = s.where('created_at', '<', q.to);
    if (q.beforeSeq !== undefined) s = s.where('seq', '<', q.beforeSeq);
    return (await s.orderBy('seq', 'desc').limit(q.limit).execute()).map(toRecord);
  }

  async bySubject(tenantId: string, kind: string, subjectId: string, trx: Db = this.db): Promise<StoredRecord[]> {
    return (await trx.selectFrom('ledger_records').select(cols)
      .where('tenant_id', '=', tenantId).where('kind', '=', kind).where('subject_id', '=', subjectId)
      .orderBy('seq').execute()).map(toRecord);
  }

  async addAttachment(a: { tenantId: string; recordHash: string; name: string; sha256: string; content: Buffer; retainUntil: string }, trx: Db): Promise<void> {
    await trx.insertInto('ledger_attachments').values({
      tenant_id: a.tenantId, record_hash: a.recordHash, name: a.name, sha256: a.sha256, size_bytes: a.content.length,
      content: a.content, retain_until: a.retainUntil,
    }).execute();
  }

  async attachments(tenantId: string, recordHash: string, trx: Db = this.db) {
    return trx.selectFrom('ledger_attachments').select(['name', 'sha256', 'size_bytes', 'content', 'retain_until', 'pruned_at'])
      .where('tenant_id', '=', tenantId).where('record_hash', '=', recordHash).execute();
  }

  /** Drops the content of attachments past their retention; the record and the hash stay. */
  async pruneAttachments(now: Date, trx: Db = this.db): Promise<number> {
    const today = now.toISOString().slice(0, 10);
    const res = await trx.updateTable('ledger_attachments').set({ content: null, pruned_at: now })
      .where('retain_until', '<', today as never).where('content', 'is not', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async registerKey(keyId: string, pem: string, fingerprint: string): Promise<void> {
    await this.db.insertInto('signing_keys').values({ key_id: keyId, public_key_pem: pem, fingerprint })
      .onConflict((oc) => oc.column('key_id').doNothing()).execute();
  }

  keys(keyIds: string[]) {
    if (keyIds.length === 0) return Promise.resolve([]);
    return this.db.selectFrom('signing_keys').select(['key_id', 'public_key_pem', 'fingerprint']).where('key_id', 'in', keyIds).execute();
  }
}
