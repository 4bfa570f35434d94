import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../schema.js';
import { STATUS_CASE, addDurationSql, datedPlansSql, type PlanStatusRow } from './plan-status.repository.js';
import type { AlertRow } from './notification.repository.js';
import type { PlanNotify } from '../../services/plans/plan.types.js';

type Db = Kysely<DB> | Transaction<DB>;

/** What the reminders read of a plan's definition and schedule. */
export interface ReminderPlanFacts {
  title: string;
  system_name: string | null;
  timezone: string | null;
  grace: string | null;
  notify: PlanNotify | null;
  paused: boolean;
}

/** A plan that needs a decision (candidates()): its status, plan, tenant and open alert. */
export interface ReminderCandidate extends ReminderPlanFacts {
  tenant_id: string;
  plan_id: string;
  status: PlanStatusRow['status'];
  next_due_at: Date | null;
  last_passed_at: Date | null;
  last_verdict: 'passed' | 'failed' | null;
  /** The newest passed or failed run: a failing plan's newest failed run. */
  decisive_id: string | null;
  /** The newest passed run. */
  passed_id: string | null;
  alert_id: string | null;
  slug: string;
  tenant_name: string;
  action: 'open' | 'plan';
  total: string;
}

const PROBLEM = `('overdue', 'failing')`;

/** JS toISOString() of a timestamptz (the due-soon key). */
const ISO = (ts: string) => `to_char(${ts} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * candidates(): $1 now, $2 limit. The status of every plan comes from
 * plan_states (cached due dates, the rest computed), so a steady minute
 * compares stored values and returns nothing; plans and alerts are read
 * into the process only for the plans returned.
 */
const CANDIDATES_SQL = `${datedPlansSql('true')},
c1 as materialized (
  -- from the stored values only (no plan definition): the plans that may need a decision, and which kind (only these are collected)
  select * from (select x.*,
    (x.alert_id is not null and x.status not in ${PROBLEM})
      or (not x.paused and x.alert_id is null and x.status in ${PROBLEM})
      or (not x.paused and x.alert_id is not null and x.status = 'failing' and x.decisive_id is distinct from x.alert_run_id) as decide,
    not x.paused and x.status = 'due-soon' and x.next_due_at is not null as soon,
    not x.paused and x.alert_id is not null and x.status in ${PROBLEM} and x.acknowledged_at is null
      and (x.snoozed_until is null or x.snoozed_until <= $1::timestamptz) and x.escalation_level < x.esc_steps as esc
  from (
    select d.tenant_id, d.plan_id, ${STATUS_CASE} as status, d.next_due_at, d.last_passed_at, d.last_verdict, d.decisive_id, d.passed_id, d.esc_steps,
      a.id as alert_id, a.run_id as alert_run_id, a.since as alert_since, a.escalation_level, a.acknowledged_at, a.snoozed_until,
      ps.paused_at is not null as paused
    from dated d
    left join alerts a on a.tenant_id = d.tenant_id and a.plan_id = d.plan_id and a.resolved_at is null
    left join plan_schedules ps on ps.tenant_id = d.tenant_id and ps.plan_id = d.plan_id
  ) x) f
  where f.decide or f.soon or f.esc
),
checked as (
  -- due-soon and escalation need the plan's notify block: read for those few plans only
  -- (lateral: one index step per plan, never a pass over all plans)
  select c.* from (select * from c1 where not c1.decide and c1.soon) c
  cross join lateral (select pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
  where exists (
    select 1 from jsonb_array_elements_text(case when jsonb_typeof(coalesce(nullif(p.definition->'notify'->'dueSoon', 'null'::jsonb), p.definition->'notify'->'overdue')) = 'array'
      then coalesce(nullif(p.definition->'notify'->'dueSoon', 'null'::jsonb), p.definition->'notify'->'overdue') else '[]'::jsonb end) r(recipient)
    where not exists (select 1 from notifications n where n.tenant_id = c.tenant_id
      and n.dedupe_key = 'due-soon:' || c.plan_id || ':' || ${ISO('c.next_due_at')} || '|' || r.recipient))
  union all
  select c.* from (select * from c1 where not c1.decide and not c1.soon and c1.esc) c
  cross join lateral (select pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
  ${addDurationSql('c.alert_since', `btrim(p.definition->'notify'->'escalate'->c.escalation_level->>'after')`, `coalesce(p.definition->'cadence'->>'timezone', 'Europe/Berlin')`, 'esc')}
  -- the next step due within the hour (or not computable here): plan() decides with addDuration
  where esc.result is null or esc.result <= $1::timestamptz + interval '1 hour'
),
picked as (
  select c.*, count(*) over () as total from (
    select c1.* from c1 where c1.decide
    union all
    select * from checked
  ) c
  order by (c.alert_id is null and c.status in ${PROBLEM}), c.tenant_id, c.plan_id
  limit $2
)
select c.tenant_id, c.plan_id, c.status, c.next_due_at, c.last_passed_at, c.last_verdict, c.decisive_id, c.passed_id, c.alert_id,
  p.title, p.definition->'system'->>'name' as system_name, p.definition->'cadence'->>'timezone' as timezone,
  p.definition->'cadence'->>'grace' as grace, p.definition->'notify' as notify, c.paused, t.slug, t.name as tenant_name,
  case when c.alert_id is null and c.status in ${PROBLEM} then 'open' else 'plan' end as action, c.total
from picked c
cross join lateral (select pl.title, pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
cross join lateral (select tn.slug, tn.name from tenants tn where tn.id = c.tenant_id offset 0) t
order by (c.alert_id is null and c.status in ${PROBLEM}), c.tenant_id, c.plan_id`;

/** A plan as the daily digest (and every reminder) reads it. */
export interface DigestPlanRow extends ReminderPlanFacts {
  tenant_id: string;
  id: string;
}

/** What the reminder engine (services/notify/reminders.ts) reads and writes besides the outbox and the plan status. */
export class ReminderRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /**
   * The plans that need a decision now, at most `limit`, openings last; see
   * CANDIDATES_SQL. JIT off: the query is planned anew each tick and small.
   */
  async candidates(now: Date, limit: number): Promise<ReminderCandidate[]> {
    const res = await this.db.transaction().execute(async (trx) => {
      await sql`set local jit = off`.execute(trx);
      return trx.executeQuery<ReminderCandidate>(CompiledQuery.raw(CANDIDATES_SQL, [now, limit]));
    });
    return res.rows;
  }

  alertsByIds(ids: string[], trx: Db = this.db): Promise<AlertRow[]> {
    return ids.length ? trx.selectFrom('alerts').selectAll().where('id', 'in', ids).execute() : Promise.resolve([]);
  }

  /** Each open alert's run becomes the given one (a newer failed run joins its alert). */
  async setAlertRuns(links: { alertId: string; runId: string }[], trx: Db = this.db): Promise<void> {
    await sql`update alerts a set run_id = x.r from unnest(${links.map((l) => l.alertId)}::uuid[], ${links.map((l) => l.runId)}::uuid[]) as x(a, r)
      where a.id = x.a and a.resolved_at is null`.execute(trx);
  }

  async setAlertRun(alertId: string, runId: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('alerts').set({ run_id: runId }).where('id', '=', alertId).execute();
  }

  /** Those of the runs that failed, with what a failure message names. */
  failedRuns(ids: string[], trx: Db = this.db) {
    return ids.length
      ? trx.selectFrom('runs').select(['id', 'verdict', 'finished_at', 'findings']).where('id', 'in', ids).where('verdict', '=', 'failed').execute()
      : Promise.resolve([]);
  }

  /**
   * Opens these alerts in one statement; a plan with an open alert already is
   * skipped (unique partial index). Returns the alerts opened.
   */
  async openAlerts(rows: { tenantId: string; planId: string; kind: string; since: Date; runId: string | null }[], openedAt: Date, trx: Db = this.db): Promise<AlertRow[]> {
    const opened = await sql<AlertRow>`
        insert into alerts (tenant_id, plan_id, kind, since, opened_at, run_id)
        select t, p, k, s, ${openedAt}::timestamptz, r from unnest(${rows.map((x) => x.tenantId)}::uuid[], ${rows.map((x) => x.planId)}::text[],
          ${rows.map((x) => x.kind)}::text[], ${rows.map((x) => x.since.toISOString())}::timestamptz[], ${rows.map((x) => x.runId)}::uuid[]) as x(t, p, k, s, r)
        on conflict (tenant_id, plan_id) where resolved_at is null do nothing
        returning *`.execute(trx);
    return opened.rows;
  }

  tenants(trx: Db = this.db): Promise<{ id: string; slug: string; name: string }[]> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name']).execute();
  }

  /**
   * The tenants and recipients without today's digest (`prefix`: digest:DATE|):
   * one query over plan_states, whose trigger copies each plan's notify.digest;
   * none in a steady tick.
   */
  async missingDigests(prefix: string, trx: Db = this.db): Promise<{ tenant_id: string; recipient: string }[]> {
    const missing = await sql<{ tenant_id: string; recipient: string }>`
      select w.tenant_id, w.recipient from (
        select distinct s.tenant_id, r.recipient from plan_states s cross join lateral unnest(s.digest) as r(recipient) where s.digest is not null
      ) w
      where not exists (select 1 from notifications n where n.tenant_id = w.tenant_id and n.dedupe_key = ${prefix} || w.recipient)`.execute(trx);
    return missing.rows;
  }

  tenantsByIds(ids: string[], trx: Db = this.db): Promise<{ id: string; slug: string; name: string }[]> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name']).where('id', 'in', ids).orderBy('id').execute();
  }

  /** The plans of these tenants as the digest reads them. */
  digestPlans(tenantIds: string[], trx: Db = this.db): Promise<DigestPlanRow[]> {
    return trx.selectFrom('plans as p')
      .leftJoin('plan_schedules as s', (j) => j.onRef('s.tenant_id', '=', 'p.tenant_id').onRef('s.plan_id', '=', 'p.id'))
      .select([
        'p.tenant_id', 'p.id', 'p.title',
        sql<string | null>`p.definition->'system'->>'name'`.as('system_name'),
        sql<string | null>`p.definition->'cadence'->>'timezone'`.as('timezone'),
        sql<string | null>`p.definition->'cadence'->>'grace'`.as('grace'),
        sql<PlanNotify | null>`p.definition->'notify'`.as('notify'),
        sql<boolean>`s.paused_at is not null`.as('paused'),
      ])
      .where('p.tenant_id', 'in', tenantIds)
      .execute();
  }
}
