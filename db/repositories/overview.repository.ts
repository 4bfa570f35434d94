import { sql, type Kysely } from 'kysely';
import type { DB, RunStatus, Verdict } from '../schema.js';

/** A plan as the dashboard needs it: no definition beyond the RTO target and whether it has a schedule. */
export interface PlanSummaryRow {
  id: string;
  title: string;
  rto_seconds: number | null;
  scheduled: boolean;
}

export interface LastRunRow {
  plan_id: string;
  id: string;
  verdict: Verdict | null;
  finished_at: Date | null;
  /** measured RTO of the newest finished run that measured one */
  measured_seconds: number | null;
}

/**
 * Read models of the overviews (dashboard, lists) that the other repositories
 * do not have. Every method answers for all plans of a tenant in one query, so
 * a page's query count does not grow with the number of plans or runs.
 */
export class OverviewRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async tenantName(tenantId: string): Promise<string | undefined> {
    if (!tenantId) return undefined;
    const row = await this.db.selectFrom('tenants').select('name').where('id', '=', tenantId).executeTakeFirst();
    return row?.name;
  }

  planSummaries(tenantId: string): Promise<PlanSummaryRow[]> {
    return this.db.selectFrom('plans')
      .select([
        'id', 'title',
        sql<number | null>`(definition->'targets'->>'rtoSeconds')::float8`.as('rto_seconds'),
        sql<boolean>`(definition->'cadence'->>'schedule') is not null`.as('scheduled'),
      ])
      .where('tenant_id', '=', tenantId).orderBy('title').orderBy('id').execute();
  }

  /** Titles of all plans (for lists of runs, alerts and measures). */
  async planTitles(tenantId: string): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('plans').select(['id', 'title']).where('tenant_id', '=', tenantId).execute();
    return new Map(rows.map((r) => [r.id, r.title]));
  }

  /**
   * Per plan: the newest finished run, and the newest measured restore time.
   * One query for all plans; per plan it walks the (tenant, plan, queued_at)
   * index backwards and stops at the first match, so the cost follows the
   * number of plans, not the length of their history. One plan has one
   * active run at a time, so queue order is finish order.
   */
  async lastRunsAll(tenantId: string): Promise<LastRunRow[]> {
    const res = await sql<LastRunRow>`
      select p.id as plan_id, l.id, l.verdict, l.finished_at, m.measured_seconds
      from plans p
      cross join lateral (
        select r.id, r.verdict, r.finished_at from runs r
        where r.tenant_id = p.tenant_id and r.plan_id = p.id and r.status = 'finished'
        order by r.queued_at desc, r.id desc limit 1
      ) l
      left join lateral (
        select (r.rto->>'measuredSeconds')::float8 as measured_seconds from runs r
        where r.tenant_id = p.tenant_id and r.plan_id = p.id and r.status = 'finished' and jsonb_typeof(r.rto->'measuredSeconds') = 'number'
        order by r.queued_at desc, r.id desc limit 1
      ) m on true
      where p.tenant_id = ${tenantId}`.execute(this.db);
    return res.rows;
  }

  /** Queued and running runs (at most one per plan). */
  activeRuns(tenantId: string): Promise<{ plan_id: string; id: string; status: RunStatus }[]> {
    return this.db.selectFrom('runs').select(['plan_id', 'id', 'status'])
      .where('tenant_id', '=', tenantId).where('status', '<>', 'finished').execute();
  }
}
