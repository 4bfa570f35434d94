import type { Kysely, Transaction } from 'kysely';
import type { DB, SystemsTable } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

/** What a system's row changes when it is stored. */
export interface SystemValues {
  name: string;
  process: string | null;
  protection_need: SystemsTable['protection_need'];
  tier: number;
  owner: string | null;
  handbook_ref: string | null;
  retired_at: Date | null;
  updated_at: Date;
}

/** The tenant's systems and the restart order (issue #12). */
export class SystemRepository {
  constructor(private readonly db: Kysely<DB>) {}

  get(tenantId: string, id: string, trx: Db = this.db): Promise<SystemsTable | undefined> {
    return trx.selectFrom('systems').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  /** By tier and name; retired ones only when asked. */
  list(tenantId: string, opts: { retired?: boolean } = {}, trx: Db = this.db): Promise<SystemsTable[]> {
    let q = trx.selectFrom('systems').selectAll().where('tenant_id', '=', tenantId);
    if (!opts.retired) q = q.where('retired_at', 'is', null);
    return q.orderBy('tier').orderBy('name').execute();
  }

  /** Whether it exists, and since when it is retired. */
  existing(tenantId: string, id: string, trx: Db = this.db) {
    return trx.selectFrom('systems').select(['id', 'retired_at']).where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  /** Inserts or updates; `retiredAt` is what an existing row's retired_at becomes. */
  upsert(tenantId: string, id: string, values: SystemValues, created: { by: string; at: Date }, retiredAt: Date | null, trx: Db = this.db): Promise<SystemsTable> {
    return trx.insertInto('systems').values({ tenant_id: tenantId, id, ...values, created_by: created.by, created_at: created.at })
      .onConflict((oc) => oc.columns(['tenant_id', 'id']).doUpdateSet({ ...values, retired_at: retiredAt }))
      .returningAll().executeTakeFirstOrThrow();
  }

  /** The tenant's plans with their definitions (which system each names), by id. */
  plans(tenantId: string, trx: Db = this.db) {
    return trx.selectFrom('plans').select(['id', 'title', 'definition']).where('tenant_id', '=', tenantId).orderBy('id').execute();
  }

  /** The newest passed run per plan up to `at` (one row each, however long the history). */
  lastPassedPerPlan(tenantId: string, planIds: string[], at: Date, trx: Db = this.db) {
    return trx.selectFrom('runs').select(['id', 'plan_id', 'origin', 'started_at', 'queued_at']).distinctOn('plan_id')
      .where('tenant_id', '=', tenantId).where('verdict', '=', 'passed').where('plan_id', 'in', planIds).where('queued_at', '<=', at)
      .orderBy('plan_id').orderBy('queued_at', 'desc').execute();
  }
}
