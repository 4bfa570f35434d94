import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, PlanRow } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

export interface PlanUpsert {
  tenantId: string;
  id: string;
  title: string;
  origin: 'file' | 'api';
  sourceFile: string | null;
  versionHash: string;
  definition: unknown;
  /** Business time of the change (the service's clock, not the database's now()). */
  at: Date;
}

const planColumns = [
  'tenant_id', 'id', 'title', 'origin', 'source_file', 'version_hash', 'definition', 'created_at', 'updated_at',
] as const;

export class PlanRepository {
  constructor(private readonly db: Kysely<DB>) {}

  get(tenantId: string, id: string, trx: Db = this.db): Promise<PlanRow | undefined> {
    return trx.selectFrom('plans').select(planColumns).where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  list(tenantId: string, trx: Db = this.db): Promise<PlanRow[]> {
    return trx.selectFrom('plans').select(planColumns).where('tenant_id', '=', tenantId).orderBy('id').execute();
  }

  /** Serialises writers of one (possibly new) plan id until the transaction ends. */
  async lockId(tenantId: string, id: string, trx: Transaction<DB>): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`ernstfall-plan:${tenantId}:${id}`}, 0))`.execute(trx);
  }

  /** Plans of every tenant that come from files, with their file. */
  fromFiles(trx: Db = this.db): Promise<{ id: string; source_file: string | null }[]> {
    return trx.selectFrom('plans').select(['id', 'source_file']).where('origin', '=', 'file').execute();
  }

  /** The external plans (kind: external) of an enabled tenant that name this Veeam job (external.veeamJob). */
  externalByVeeamJob(tenantSlug: string, jobName: string, trx: Db = this.db): Promise<{ tenant_id: string; id: string }[]> {
    return trx.selectFrom('plans as p').innerJoin('tenants as t', 't.id', 'p.tenant_id')
      .select(['p.tenant_id', 'p.id'])
      .where('t.slug', '=', tenantSlug).where('t.disabled_at', 'is', null)
      .where(sql<boolean>`p.definition->>'kind' = 'external'`)
      .where(sql<boolean>`p.definition->'external'->>'veeamJob' = ${jobName}`)
      .execute();
  }

  /** Locks the plan row for the rest of the transaction. */
  getForUpdate(tenantId: string, id: string, trx: Transaction<DB>): Promise<PlanRow | undefined> {
    return trx.selectFrom('plans').select(planColumns).where('tenant_id', '=', tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
  }

  /**
   * Inserts or updates the plan and records the version. Returns whether the
   * content changed (a new version was created).
   */
  async upsert(p: PlanUpsert, trx: Db = this.db): Promise<{ created: boolean; changed: boolean }> {
    const existing = await trx
      .selectFrom('plans').select(['version_hash', 'origin', 'source_file'])
      .where('tenant_id', '=', p.tenantId).where('id', '=', p.id).executeTakeFirst();
    const definition = JSON.stringify(p.definition);
    if (!existing) {
      await trx.insertInto('plans').values({
        tenant_id: p.tenantId, id: p.id, title: p.title, origin: p.origin, source_file: p.sourceFile,
        version_hash: p.versionHash, definition, created_at: p.at, updated_at: p.at,
      }).execute();
    } else if (existing.version_hash === p.versionHash && existing.origin === p.origin) {
      // same content: a moved file changes where it lives, not the plan's version
      if (existing.source_file !== p.sourceFile) {
        await trx.updateTable('plans').set({ source_file: p.sourceFile, updated_at: p.at })
          .where('tenant_id', '=', p.tenantId).where('id', '=', p.id).execute();
      }
      return { created: false, changed: false };
    } else {
      await trx.updateTable('plans').set({
        title: p.title, origin: p.origin, source_file: p.sourceFile, version_hash: p.versionHash, definition,
        updated_at: p.at,
      }).where('tenant_id', '=', p.tenantId).where('id', '=', p.id).execute();
    }
    await trx.insertInto('plan_versions').values({
      tenant_id: p.tenantId, plan_id: p.id, hash: p.versionHash, definition, origin: p.origin, source_file: p.sourceFile, created_at: p.at,
    }).onConflict((oc) => oc.columns(['tenant_id', 'plan_id', 'hash']).doNothing()).execute();
    return { created: !existing, changed: true };
  }

  async getVersion(tenantId: string, planId: string, hash: string, trx: Db = this.db): Promise<unknown | undefined> {
    const row = await trx.selectFrom('plan_versions').select('definition')
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('hash', '=', hash).executeTakeFirst();
    return row?.definition;
  }
}
