import { CompiledQuery, type Kysely } from 'kysely';
import { prepared } from '../database.js';
import type { DB } from '../schema.js';
import type { PlanStatus } from '../../services/runs/plan-status.js';

export interface PlanStatusRow {
  planId: string;
  status: PlanStatus;
  /** When the next passed run is due (null: the plan has no `requiredEvery`). */
  nextDueAt: Date | null;
  /** When the newest passed run finished (null: never passed). */
  lastPassedAt: Date | null;
  /** The verdict of the newest run that got as far as passed or failed. */
  lastVerdict: 'passed' | 'failed' | null;
}

/** services/util/duration.ts SHORT_RE: units largest first, each at most once. */
const SHORT_RE = String.raw`^(\d+(\.\d+)?w)?(\d+(\.\d+)?d)?(\d+(\.\d+)?h)?(\d+(\.\d+)?m)?(\d+(\.\d+)?s)?(\d+ms)?$`;
/** services/util/calendar.ts: ISO durations whose date part has whole numbers, not all zero, are added on the wall clock. */
const ISO_CALENDAR_RE = String.raw`^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T.*)?$`;

/**
 * Lateral joins that compute `${a}.result` = addDuration(ts, dur, tz) exactly (parseDurationSql, then applyDurationSql)
 * as services/util/calendar.ts does it:
 * - short form (`90s`, `2d`, `1h30m`): elapsed seconds, `2d` is 48 hours;
 * - ISO 8601 with whole Y/M/W/D, at least one of them not zero: years and months, then weeks and days added
 *   to the wall clock in the zone (31 Jan + P1M = end of February), the wall
 *   time resolved back to an instant (a time in the spring-forward gap moves
 *   forward by the gap, as PostgreSQL does; an ambiguous autumn time means its
 *   FIRST occurrence, where PostgreSQL alone would pick the second), then the
 *   time part (`T…`) added as elapsed time;
 * - other ISO (time only like PT6H, fractional date parts): elapsed, with PostgreSQL's nominal lengths.
 * `ts`, `dur`, `tz` and `a` are SQL written in this file, never user input.
 */
function parseDurationSql(dur: string, a: string): string {
  return `
  cross join lateral (select case
      when ${dur} is null or ${dur} = '' then null
      when upper(${dur}) ~ '${ISO_CALENDAR_RE}' and upper(${dur}) ~ '^P[^T]*[1-9]' then 'calendar'
      when upper(${dur}) ~ '^P' then 'iso-elapsed'
      when ${dur} ~ '${SHORT_RE}' then 'short'
    end as kind offset 0) ${a}_k
  cross join lateral (select case ${a}_k.kind
      when 'calendar' then replace(upper(${dur}), ',', '.')::interval
      when 'iso-elapsed' then replace(upper(${dur}), ',', '.')::interval
      when 'short' then regexp_replace(${dur}, '([a-z]+)', '\\1 ', 'g')::interval
    end as iv offset 0) ${a}_i`;
}

/** The second half (see above): `kind` and `iv` as parseDurationSql made them (parsed once per distinct duration). */
function applyDurationSql(ts: string, kind: string, iv: string, tz: string, a: string): string {
  return `
  cross join lateral (select case when ${kind} = 'calendar'
      then ((${ts}) at time zone ${tz}) + date_trunc('day', ${iv}) end as wall offset 0) ${a}_w
  cross join lateral (select ${a}_w.wall at time zone ${tz} as later offset 0) ${a}_c
  cross join lateral (select (${a}_w.wall at time zone 'UTC')
      - ((${a}_c.later - interval '1 day') at time zone ${tz} - (${a}_c.later - interval '1 day') at time zone 'UTC') as earlier offset 0) ${a}_e
  cross join lateral (select case
      when ${kind} = 'calendar' then
        (case when ${a}_e.earlier < ${a}_c.later and ${a}_e.earlier at time zone ${tz} = ${a}_w.wall then ${a}_e.earlier else ${a}_c.later end)
        + (${iv} - date_trunc('day', ${iv}))
      when ${kind} is not null then (${ts}) + extract(epoch from ${iv}) * interval '1 second'
    end as result offset 0) ${a}`;
}

/**
 * The plans with what their status is made of, from plan_states alone (one
 * narrow row per plan, db/migrations/20261208_0015_plan_states.ts): triggers
 * keep in it the newest decisive and passed run (on runs) and the plan's
 * creation, zone, requiredEvery and grace (on plans), in the transaction
 * that changes them; the plan definitions are not read. The due dates cached
 * there count only while they were computed from the row's current
 * requiredEvery|grace|zone (`key`) and due clock start (`stale` otherwise).
 * `where` selects the plans (SQL of this file, on `s`).
 */
function baseSql(where: string): string {
  return `
  select x.*, (x.due_key is distinct from x.key or x.due_clock_start is distinct from x.clock_start) as stale from (
    select s.tenant_id, s.plan_id, s.last_verdict, s.passed_finished_at as last_passed_at, s.decisive_id, s.passed_id,
      coalesce(s.passed_clock_start, s.plan_created_at) as clock_start, s.tz, s.every, s.grace,
      coalesce(s.every, '') || '|' || coalesce(s.grace, '') || '|' || s.tz as key,
      s.due_key, s.due_clock_start, s.next_due_at, s.overdue_at, s.due_soon_epoch,
      -- for the reminder tick: how many escalation steps the plan has
      s.esc_steps
    from plan_states s
    where ${where}
  ) x`;
}

/**
 * The due dates of the rows of `stale` (a CTE with baseSql's columns), as the
 * cache holds them: next due date, overdue point (due date + grace) and the
 * start of the due-soon window in epoch seconds (numeric, exactly as the
 * status compares it). Each distinct duration (`P1D`, `PT6H` …; a handful
 * however many plans) is parsed once, not once per plan.
 */
function dueDatesSql(stale: string): string {
  return `
durations as materialized (
  -- a handful of rows; the limit only tells the planner so (a CTE has no statistics), so it hashes them
  select x.dur, x_k.kind, x_i.iv from (select every as dur from ${stale} union select grace from ${stale}) x
  ${parseDurationSql('x.dur', 'x')}
  where x.dur is not null
  limit 10000
), computed as (
  select b.tenant_id, b.plan_id, b.key, b.clock_start, due.result as next_due_at, coalesce(od.result, due.result) as overdue_at,
    case when due.result is not null then extract(epoch from due.result)
      - least((extract(epoch from due.result) - extract(epoch from b.clock_start)) * 0.2, 604800) end as due_soon_epoch
  from ${stale} b
  left join durations de on de.dur = b.every
  left join durations dg on dg.dur = b.grace
  ${applyDurationSql('b.clock_start', 'de.kind', 'de.iv', 'b.tz', 'due')}
  ${applyDurationSql('due.result', 'dg.kind', 'dg.iv', 'b.tz', 'od')}
)`;
}

/** The status from the due dates (same rules as planStatus()): `$1` is now. */
export const STATUS_CASE = `case
    when d.last_verdict = 'failed' then 'failing'
    when d.overdue_at is not null and $1::timestamptz > d.overdue_at then 'overdue'
    when d.last_verdict is null then 'never-tested'
    when d.due_soon_epoch is not null and extract(epoch from $1::timestamptz) >= d.due_soon_epoch then 'due-soon'
    else 'ok'
  end`;

/**
 * The status query: cached due dates where they are current, the rest
 * computed here (after an upgrade, a changed plan, a new passed run).
 * Extra columns (`extra`) for the reminder tick.
 */
/**
 * `with base …, dated as (…)`: every plan `where` selects with its last
 * verdict, last passed run, decisive and passed run ids and its due dates
 * (cached where current, computed otherwise). Follow with `, x as (…)` or a
 * select from `dated d` (STATUS_CASE gives the status; `$1` is now). `base`
 * is read twice rather than collected: the current rows stream straight
 * from plan_states, only the stale ones are collected (few, once cached).
 */
export function datedPlansSql(where: string): string {
  return `
with base as not materialized (${baseSql(where)}
), stale as materialized (select * from base where stale),
${dueDatesSql('stale')},
dated as (
  select b.tenant_id, b.plan_id, b.last_verdict, b.last_passed_at, b.decisive_id, b.passed_id, b.esc_steps, b.next_due_at, b.overdue_at, b.due_soon_epoch
  from base b where not b.stale
  union all
  select b.tenant_id, b.plan_id, b.last_verdict, b.last_passed_at, b.decisive_id, b.passed_id, b.esc_steps, c.next_due_at, c.overdue_at, c.due_soon_epoch
  from stale b join computed c on c.tenant_id = b.tenant_id and c.plan_id = b.plan_id
)`;
}

/** `${a}.result` = addDuration(ts, dur, tz), for a few rows (each duration parsed per row): lateral joins, SQL of the caller. */
export function addDurationSql(ts: string, dur: string, tz: string, a: string): string {
  return `${parseDurationSql(dur, a)}
  ${applyDurationSql(ts, `${a}_k.kind`, `${a}_i.iv`, tz, a)}`;
}

/**
 * The status query: cached due dates where they are current, the rest
 * computed here (after an upgrade, a changed plan, a new passed run).
 * Extra columns (`extra`) for the reminder tick.
 */
function statusSql(where: string, o: { tenant: boolean; order: boolean; extra?: boolean }): string {
  return `${datedPlansSql(where)}
select ${o.tenant ? 'd.tenant_id as "tenantId", ' : ''}d.plan_id as "planId", d.last_verdict as "lastVerdict",
  floor(extract(epoch from d.last_passed_at) * 1000)::float8 as "lastPassedAt", floor(extract(epoch from d.next_due_at) * 1000)::float8 as "nextDueAt",
  ${STATUS_CASE} as status${o.extra ? ', d.decisive_id as "decisiveRunId", d.passed_id as "passedRunId"' : ''}
from dated d
${o.order ? 'order by d.plan_id' : ''}`;
}

// one tenant's status is asked for on every plan list: planned once per connection (prepared), not on every call
const STATUS_SQL = prepared(statusSql('s.tenant_id = $2', { tenant: false, order: true }));
const STATUS_ALL_TENANTS_SQL = statusSql('true', { tenant: true, order: false });
const STATUS_OF_TENANTS_SQL = statusSql('s.tenant_id = any($2::uuid[])', { tenant: true, order: false, extra: true });

/**
 * Stores the due dates of up to $1 plans whose cache is missing or stale
 * (only the due_* columns: what the triggers keep is not touched). A run or
 * an edit meanwhile only makes the row stale again: the inputs the dates
 * were computed from are stored with them.
 */
const REFRESH_SQL = `
with stale as materialized (select * from (${baseSql('true')}) b where b.stale limit $1),
${dueDatesSql('stale')}
update plan_states s set due_key = c.key, due_clock_start = c.clock_start,
  next_due_at = c.next_due_at, overdue_at = c.overdue_at, due_soon_epoch = c.due_soon_epoch
from computed c where s.tenant_id = c.tenant_id and s.plan_id = c.plan_id`;

/**
 * The two times arrive as epoch milliseconds (float8) and become Dates here:
 * for 100,000 rows a third cheaper than parsing timestamp text (same value:
 * milliseconds, rounded down as the driver does).
 */
function dates<T extends PlanStatusRow>(rows: T[]): T[] {
  for (const r of rows) {
    const x = r as unknown as { lastPassedAt: number | Date | null; nextDueAt: number | Date | null };
    if (typeof x.lastPassedAt === 'number') x.lastPassedAt = new Date(x.lastPassedAt);
    if (typeof x.nextDueAt === 'number') x.nextDueAt = new Date(x.nextDueAt);
  }
  return rows;
}

/** A status row with the runs it was decided from (the reminder tick). */
export interface PlanStatusDetail extends PlanStatusRow {
  tenantId: string;
  /** The newest passed or failed run (for a failing plan: its newest failed run). */
  decisiveRunId: string | null;
  /** The newest passed run. */
  passedRunId: string | null;
}

/** The status of every plan of a tenant in one set-based query (docs/ARCHITECTURE.md "Plan status"; same rules as planStatus()). */
export class PlanStatusRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async statusAll(tenantId: string, now: Date): Promise<PlanStatusRow[]> {
    const res = await this.db.executeQuery<PlanStatusRow>(CompiledQuery.raw(STATUS_SQL, [now, tenantId]));
    return dates(res.rows);
  }

  /**
   * Every plan of every tenant in one query, in no particular order.
   * Without JIT compilation: for this one big query it costs more than it
   * saves (measured: 2.2 s with, 1.4 s without, 100,000 plans).
   */
  statusAllTenants(now: Date): Promise<(PlanStatusRow & { tenantId: string })[]> {
    return this.noJit(STATUS_ALL_TENANTS_SQL, [now]);
  }

  /** Every plan of these tenants, with the runs the status was decided from. */
  statusOfTenants(tenantIds: string[], now: Date): Promise<PlanStatusDetail[]> {
    if (!tenantIds.length) return Promise.resolve([]);
    return this.noJit(STATUS_OF_TENANTS_SQL, [now, tenantIds]);
  }

  /**
   * Computes and stores the due dates of at most `limit` plans whose cached
   * ones are missing or stale (the reminder tick, before it decides); the
   * number stored. Status queries are right without it, only slower.
   */
  async refreshDueDates(limit: number): Promise<number> {
    const res = await this.db.transaction().execute(async (trx) => {
      await trx.executeQuery(CompiledQuery.raw('set local jit = off'));
      return trx.executeQuery(CompiledQuery.raw(REFRESH_SQL, [limit]));
    });
    return Number(res.numAffectedRows ?? 0);
  }

  private noJit<T extends PlanStatusRow>(text: string, params: unknown[]): Promise<T[]> {
    return this.db.transaction().execute(async (trx) => {
      await trx.executeQuery(CompiledQuery.raw('set local jit = off'));
      return dates((await trx.executeQuery<T & PlanStatusRow>(CompiledQuery.raw(text, params))).rows);
    });
  }
}
