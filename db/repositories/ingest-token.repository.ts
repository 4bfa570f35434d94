import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

/** Per-plan ingest tokens (plans with kind: external), stored as SHA-256 only. */
export class IngestTokenRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(t: { id: string; tenantId: string; planId: string; name: string; tokenHash: string; createdBy: string; createdAt: Date }, trx: Db = this.db): Promise<void> {
    await trx.insertInto('ingest_tokens').values({
      id: t.id, tenant_id: t.tenantId, plan_id: t.planId, name: t.name, token_hash: t.tokenHash, created_by: t.createdBy, created_at: t.createdAt,
    }).execute();
  }

  /** A plan's tokens (never their values), newest first. */
  list(tenantId: string, planId: string, trx: Db = this.db) {
    return trx.selectFrom('ingest_tokens').select(['id', 'plan_id', 'name', 'created_by', 'created_at', 'revoked_at', 'last_used_at'])
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).orderBy('created_at', 'desc').execute();
  }

  /** Revokes a live token of the plan; false if there is none of that id. */
  async revoke(tenantId: string, planId: string, id: string, at: Date, trx: Db = this.db): Promise<boolean> {
    const r = await trx.updateTable('ingest_tokens').set({ revoked_at: at })
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) !== 0;
  }

  /** The live (not revoked) token with this hash. */
  byHash(hash: string, trx: Db = this.db) {
    return trx.selectFrom('ingest_tokens').select(['id', 'tenant_id', 'plan_id', 'name'])
      .where('token_hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst();
  }

  async touch(id: string, at: Date, trx: Db = this.db): Promise<void> {
    await trx.updateTable('ingest_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
