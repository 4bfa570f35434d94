import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DB, PlanBaselinesTable } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;
export type BaselineRow = Selectable<PlanBaselinesTable>;

export class BaselineRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(row: BaselineRow, trx: Db = this.db): Promise<void> {
    await trx.insertInto('plan_baselines').values(row).execute();
  }

  /** The newest accepted baseline of a plan. */
  latest(tenantId: string, planId: string, trx: Db = this.db): Promise<BaselineRow | undefined> {
    return trx.selectFrom('plan_baselines').select(['id', 'tenant_id', 'plan_id', 'run_id', 'accepted_by', 'reason', 'accepted_at'])
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId)
      .orderBy('accepted_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  }
}
