import { CompiledQuery, type Kysely } from 'kysely';
import { prepared } from '../database.js';
import type { DB, RunStatus, Verdict } from '../schema.js';
import type { PlanStatus } from '../../services/runs/plan-status.js';
import { STATUS_CASE, datedPlansSql } from './plan-status.repository.js';

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

  /** Titles of all plans (for lists of runs, alerts and measures). */
  async planTitles(tenantId: string): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('plans').select(['id', 'title']).where('tenant_id', '=', tenantId).execute();
    return new Map(rows.map((r) => [r.id, r.title]));
  }

  /**
   * One row per plan of the tenant with everything the dashboard shows of it,
   * in one statement: the plan, its status and next due date (the set-based
   * status query, PlanStatusRepository.statusAll), the newest finished run,
   * the newest measured restore time and the queued or running run. Per plan
   * the runs are found by walking the (tenant, plan, queued_at) index
   * backwards to the first match, so the cost follows the number of plans,
   * not the length of their history (one plan has one active run at a time,
   * so queue order is finish order). A prepared statement: planning it
   * costs more than running it.
   */
  async dashboardRows(tenantId: string, now: Date): Promise<DashboardPlanRow[]> {
    const res = await this.db.executeQuery<RawDashboardRow>(CompiledQuery.raw(DASHBOARD_SQL, [now, tenantId]));
    return res.rows.map((r) => ({
      plan: { id: r.id, title: r.title, rto_seconds: r.rto_seconds, scheduled: r.scheduled },
      status: r.status,
      nextDueAt: r.next_due_at === null ? null : new Date(r.next_due_at),
      last: r.last_id === null ? undefined : { plan_id: r.id, id: r.last_id, verdict: r.last_verdict, finished_at: r.last_finished_at, measured_seconds: r.measured_seconds },
      active: r.active_id === null ? undefined : { id: r.active_id, status: r.active_status! },
    }));
  }
}

/** One plan as the dashboard shows it (OverviewRepository.dashboardRows). */
export interface DashboardPlanRow {
  plan: PlanSummaryRow;
  status: PlanStatus;
  nextDueAt: Date | null;
  /** Undefined: no finished run yet. */
  last?: LastRunRow;
  /** The queued or running run. */
  active?: { id: string; status: RunStatus };
}

interface RawDashboardRow extends PlanSummaryRow {
  status: PlanStatus;
  next_due_at: number | null;
  last_id: string | null;
  last_verdict: Verdict | null;
  last_finished_at: Date | null;
  measured_seconds: number | null;
  active_id: string | null;
  active_status: RunStatus | null;
}

/**
 * `$1` now, `$2` the tenant. The plans are found from their status rows
 * (a primary-key lookup each): joined the other way round, PostgreSQL
 * expects a handful of current status rows and compares every plan with
 * every row. A plan without its plan_states row (none: a trigger writes it
 * with the plan) is never-tested without a due date, as the status query
 * says for a plan without runs. The due date travels as epoch milliseconds,
 * as in the status query.
 */
const DASHBOARD_SQL = prepared(`${datedPlansSql('s.tenant_id = $2')},
planned as (
  select p.id, p.title, p.definition, ${STATUS_CASE} as status, d.next_due_at
  from dated d join plans p on p.tenant_id = d.tenant_id and p.id = d.plan_id
  union all
  select p.id, p.title, p.definition, 'never-tested', null from plans p
  where p.tenant_id = $2 and not exists (select 1 from plan_states s where s.tenant_id = p.tenant_id and s.plan_id = p.id)
)
select p.id, p.title,
  (p.definition->'targets'->>'rtoSeconds')::float8 as rto_seconds,
  (p.definition->'cadence'->>'schedule') is not null as scheduled,
  p.status, floor(extract(epoch from p.next_due_at) * 1000)::float8 as next_due_at,
  l.id as last_id, l.verdict as last_verdict, l.finished_at as last_finished_at, m.measured_seconds,
  a.id as active_id, a.status as active_status
from planned p
left join lateral (
  select r.id, r.verdict, r.finished_at from runs r
  where r.tenant_id = $2 and r.plan_id = p.id and r.status = 'finished'
  order by r.queued_at desc, r.id desc limit 1
) l on true
left join lateral (
  select (r.rto->>'measuredSeconds')::float8 as measured_seconds from runs r
  where r.tenant_id = $2 and r.plan_id = p.id and r.status = 'finished' and jsonb_typeof(r.rto->'measuredSeconds') = 'number'
  order by r.queued_at desc, r.id desc limit 1
) m on true
left join (
  select distinct on (r.plan_id) r.plan_id, r.id, r.status from runs r
  where r.tenant_id = $2 and r.status <> 'finished'
  order by r.plan_id, r.queued_at desc, r.id desc
) a on a.plan_id = p.id`);
