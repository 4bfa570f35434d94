import { CompiledQuery, type Kysely } from 'kysely';
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

/** Same default as the plan parser, for definitions written before it set one. */
const DEFAULT_TZ = 'Europe/Berlin';
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
 * The status query. `where` selects the plans (SQL of this file).
 * - One tenant (`lateral`): per plan, the newest decisive run (passed or
 *   failed) and the newest passed run are one step each down an index
 *   (db/migrations/20261208_0012: runs_plan_decisive, runs_plan_passed, both
 *   ordered by the run's end and carrying the columns read: index-only), so
 *   the cost follows the plans, not the length of their history.
 * - All tenants: the same indexes read once from end to end (DISTINCT ON in
 *   index order, merged with the plans by key): cheaper than 200,000 single
 *   lookups.
 * Each distinct duration (`P1D`, `PT6H` …; a handful however many plans) is
 * parsed once, not once per plan.
 */
function statusSql(where: string, mode: 'lateral' | 'scan'): string {
  const runs = mode === 'lateral'
    ? `
  left join lateral (
    select r.verdict from runs r
    where r.tenant_id = pl.tenant_id and r.plan_id = pl.id and r.status = 'finished' and r.verdict in ('passed', 'failed')
    order by coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc limit 1
  ) d on true
  left join lateral (
    select r.finished_at, coalesce(r.started_at, r.queued_at) as clock_start from runs r
    where r.tenant_id = pl.tenant_id and r.plan_id = pl.id and r.status = 'finished' and r.verdict = 'passed'
    order by coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc limit 1
  ) p on true`
    : `
  left join (
    select distinct on (r.tenant_id, r.plan_id) r.tenant_id, r.plan_id, r.verdict from runs r
    where r.status = 'finished' and r.verdict in ('passed', 'failed')
    order by r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc
  ) d on d.tenant_id = pl.tenant_id and d.plan_id = pl.id
  left join (
    select distinct on (r.tenant_id, r.plan_id) r.tenant_id, r.plan_id, r.finished_at, coalesce(r.started_at, r.queued_at) as clock_start from runs r
    where r.status = 'finished' and r.verdict = 'passed'
    order by r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc
  ) p on p.tenant_id = pl.tenant_id and p.plan_id = pl.id`;
  return `
with base as materialized (
  select pl.tenant_id, pl.id as plan_id, d.verdict as last_verdict, p.finished_at as last_passed_at,
    coalesce(p.clock_start, pl.created_at) as clock_start,
    coalesce(pl.definition->'cadence'->>'timezone', '${DEFAULT_TZ}') as tz,
    btrim(pl.definition->'cadence'->>'requiredEvery') as every,
    btrim(pl.definition->'cadence'->>'grace') as grace
  from plans pl${runs}
  where ${where}
), durations as materialized (
  -- a handful of rows; the limit only tells the planner so (a CTE has no statistics), so it hashes them
  select x.dur, x_k.kind, x_i.iv from (select every as dur from base union select grace from base) x
  ${parseDurationSql('x.dur', 'x')}
  where x.dur is not null
  limit 10000
)
select ${mode === 'scan' ? 'b.tenant_id as "tenantId", ' : ''}b.plan_id as "planId", b.last_verdict as "lastVerdict", b.last_passed_at as "lastPassedAt", due.result as "nextDueAt",
  case
    when b.last_verdict = 'failed' then 'failing'
    when due.result is not null and $1::timestamptz > coalesce(od.result, due.result) then 'overdue'
    when b.last_verdict is null then 'never-tested'
    when due.result is not null and extract(epoch from $1::timestamptz) >= extract(epoch from due.result)
      - least((extract(epoch from due.result) - extract(epoch from b.clock_start)) * 0.2, 604800) then 'due-soon'
    else 'ok'
  end as status
from base b
left join durations de on de.dur = b.every
left join durations dg on dg.dur = b.grace
${applyDurationSql('b.clock_start', 'de.kind', 'de.iv', 'b.tz', 'due')}
${applyDurationSql('due.result', 'dg.kind', 'dg.iv', 'b.tz', 'od')}
${mode === 'scan' ? '' : 'order by b.plan_id'}`;
}

const STATUS_SQL = statusSql('pl.tenant_id = $2', 'lateral');
const STATUS_ALL_TENANTS_SQL = statusSql('true', 'scan');

/** The status of every plan of a tenant in one set-based query (docs/ARCHITECTURE.md "Plan status"; same rules as planStatus()). */
export class PlanStatusRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async statusAll(tenantId: string, now: Date): Promise<PlanStatusRow[]> {
    const res = await this.db.executeQuery<PlanStatusRow>(CompiledQuery.raw(STATUS_SQL, [now, tenantId]));
    return res.rows;
  }

  /**
   * Every plan of every tenant in one query (the reminder tick), in no
   * particular order. Without JIT compilation: for this one big query it
   * costs more than it saves (measured: 2.2 s with, 1.4 s without, 100,000 plans).
   */
  statusAllTenants(now: Date): Promise<(PlanStatusRow & { tenantId: string })[]> {
    return this.db.transaction().execute(async (trx) => {
      await trx.executeQuery(CompiledQuery.raw('set local jit = off'));
      return (await trx.executeQuery<PlanStatusRow & { tenantId: string }>(CompiledQuery.raw(STATUS_ALL_TENANTS_SQL, [now]))).rows;
    });
  }
}
