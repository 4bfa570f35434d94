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
 * Lateral joins that compute `${a}.result` = addDuration(ts, dur, tz) exactly
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
function addDurationSql(ts: string, dur: string, tz: string, a: string): string {
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
    end as iv offset 0) ${a}_i
  cross join lateral (select case when ${a}_k.kind = 'calendar'
      then ((${ts}) at time zone ${tz}) + date_trunc('day', ${a}_i.iv) end as wall offset 0) ${a}_w
  cross join lateral (select ${a}_w.wall at time zone ${tz} as later offset 0) ${a}_c
  cross join lateral (select (${a}_w.wall at time zone 'UTC')
      - ((${a}_c.later - interval '1 day') at time zone ${tz} - (${a}_c.later - interval '1 day') at time zone 'UTC') as earlier offset 0) ${a}_e
  cross join lateral (select case
      when ${a}_k.kind = 'calendar' then
        (case when ${a}_e.earlier < ${a}_c.later and ${a}_e.earlier at time zone ${tz} = ${a}_w.wall then ${a}_e.earlier else ${a}_c.later end)
        + (${a}_i.iv - date_trunc('day', ${a}_i.iv))
      when ${a}_k.kind is not null then (${ts}) + extract(epoch from ${a}_i.iv) * interval '1 second'
    end as result offset 0) ${a}`;
}

const STATUS_SQL = `
with decisive as (
  select distinct on (plan_id) plan_id, verdict
  from runs
  where tenant_id = $1 and status = 'finished' and verdict in ('passed', 'failed')
  order by plan_id, coalesce(finished_at, started_at, queued_at) desc, id desc
), passed as (
  select distinct on (plan_id) plan_id, finished_at, coalesce(started_at, queued_at) as clock_start
  from runs
  where tenant_id = $1 and status = 'finished' and verdict = 'passed'
  order by plan_id, coalesce(finished_at, started_at, queued_at) desc, id desc
), base as (
  select pl.id as plan_id, d.verdict as last_verdict, p.finished_at as last_passed_at,
    coalesce(p.clock_start, pl.created_at) as clock_start,
    coalesce(pl.definition->'cadence'->>'timezone', '${DEFAULT_TZ}') as tz,
    btrim(pl.definition->'cadence'->>'requiredEvery') as every,
    btrim(pl.definition->'cadence'->>'grace') as grace
  from plans pl
  left join decisive d on d.plan_id = pl.id
  left join passed p on p.plan_id = pl.id
  where pl.tenant_id = $1
)
select b.plan_id as "planId", b.last_verdict as "lastVerdict", b.last_passed_at as "lastPassedAt", due.result as "nextDueAt",
  case
    when b.last_verdict = 'failed' then 'failing'
    when due.result is not null and $2::timestamptz > coalesce(od.result, due.result) then 'overdue'
    when b.last_verdict is null then 'never-tested'
    when due.result is not null and extract(epoch from $2::timestamptz) >= extract(epoch from due.result)
      - least((extract(epoch from due.result) - extract(epoch from b.clock_start)) * 0.2, 604800) then 'due-soon'
    else 'ok'
  end as status
from base b
${addDurationSql('b.clock_start', 'b.every', 'b.tz', 'due')}
${addDurationSql('due.result', 'b.grace', 'b.tz', 'od')}
order by b.plan_id`;

/** The status of every plan of a tenant in one set-based query (docs/ARCHITECTURE.md "Plan status"; same rules as planStatus()). */
export class PlanStatusRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async statusAll(tenantId: string, now: Date): Promise<PlanStatusRow[]> {
    const res = await this.db.executeQuery<PlanStatusRow>(CompiledQuery.raw(STATUS_SQL, [tenantId, now]));
    return res.rows;
  }
}
