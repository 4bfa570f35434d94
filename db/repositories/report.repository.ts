import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

const PROGRAMME_RUN_COLUMNS = ['id', 'plan_id', 'verdict', 'started_at', 'queued_at', 'finished_at'] as const;

/** What the reports (audit report, year's programme, calendar feeds) read besides the ledger. */
export class ReportRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Every plan of the tenant with its definition and creation, by id (the audit report). */
  plans(tenantId: string, trx: Db = this.db) {
    return trx.selectFrom('plans').select(['id', 'title', 'definition', 'created_at']).where('tenant_id', '=', tenantId).orderBy('id').execute();
  }

  /** Every plan of the tenant with its schedule's last slot and pause, by id (the year's programme). */
  programmePlans(tenantId: string, trx: Db = this.db) {
    return trx.selectFrom('plans as p')
      .leftJoin('plan_schedules as s', (j) => j.onRef('s.tenant_id', '=', 'p.tenant_id').onRef('s.plan_id', '=', 'p.id'))
      .select(['p.id', 'p.title', 'p.definition', 'p.created_at', 's.last_slot', 's.paused_at'])
      .where('p.tenant_id', '=', tenantId).orderBy('p.id').execute();
  }

  /**
   * The runs a programme of [from, to] needs, bounded by the period whatever
   * the history: the period's finished runs, and per plan the newest passed
   * run before it (where the period's first due date counts from) and the
   * newest decisive one up to `statusAt` (for the status).
   */
  programmeRuns(tenantId: string, from: Date, to: Date, statusAt: Date, trx: Db = this.db) {
    return Promise.all([
      trx.selectFrom('runs').select(PROGRAMME_RUN_COLUMNS).where('tenant_id', '=', tenantId).where('status', '=', 'finished')
        .where('finished_at', '>=', from).where('finished_at', '<=', to).orderBy('queued_at').execute(),
      trx.selectFrom('runs').select(PROGRAMME_RUN_COLUMNS).distinctOn('plan_id').where('tenant_id', '=', tenantId).where('status', '=', 'finished')
        .where('verdict', '=', 'passed').where('finished_at', '<', from).orderBy('plan_id').orderBy('queued_at', 'desc').execute(),
      trx.selectFrom('runs').select(PROGRAMME_RUN_COLUMNS).distinctOn('plan_id').where('tenant_id', '=', tenantId).where('status', '=', 'finished')
        .where('verdict', 'in', ['passed', 'failed']).where('finished_at', '<=', statusAt).orderBy('plan_id').orderBy('queued_at', 'desc').execute(),
    ]);
  }
}
