import { sql, type Kysely } from 'kysely';

/**
 * Issue 13, provider scale: one row per plan (plan_states) with everything
 * its status is made of, so the status of 100,000 plans reads one narrow
 * table instead of the plans' definitions and the run history. Kept by
 * triggers in the transaction that changes the source (every way a run
 * ends or a plan is saved, and rows written by hand or by tests, go through
 * them):
 *
 * - on plans (insert, change of definition or created_at; delete): the
 *   plan's creation, zone, requiredEvery, grace (trimmed, as the status
 *   reads them), number of escalation steps and digest recipients;
 * - on runs: the newest decisive run (passed or failed; ordered by the
 *   run's end, then id, as the status rules and the indexes
 *   runs_plan_decisive / runs_plan_passed order them): its time, id and
 *   verdict; the newest passed run: its time, id, end and clock start
 *   (started_at or queued_at: the due clock). A run that arrives replaces
 *   what is there only when it is newer (compared with the row as
 *   committed, so two runs of a plan ending at once cannot leave the older
 *   one in place); a decisive run that changes or goes (never by the app:
 *   no DELETE) makes the row be read again from the two indexes.
 *
 * The due dates are cached in the same row by the reminder tick
 * (db/repositories/plan-status.repository.ts refreshDueDates): next due
 * date, overdue point and the start of the due-soon window, with the inputs
 * they were computed from (`due_key`: requiredEvery|grace|zone,
 * `due_clock_start`); a status query uses them only while both still match
 * the row's current values and computes the rest on the fly. So the cache
 * is never trusted when stale, and nothing has to invalidate it.
 *
 * Backfilled here from plans and runs (one pass over each run index).
 * Plus an index on notifications (run_id): the reminder tick links the
 * failure notifications of a batch of runs to their new alerts in one
 * statement; and statistics on the plan expressions the scheduler filters by.
 */
/** What plan_states copies of the plan (`pl`: a row with `definition` and `created_at`); the same expressions as the status query used. */
const PLAN_COLUMNS = 'plan_created_at, tz, every, grace, esc_steps, digest';
const PLAN_VALUES = `pl.created_at, coalesce(pl.definition->'cadence'->>'timezone', 'Europe/Berlin'),
  btrim(pl.definition->'cadence'->>'requiredEvery'), btrim(pl.definition->'cadence'->>'grace'),
  case when jsonb_typeof(pl.definition->'notify'->'escalate') = 'array' then jsonb_array_length(pl.definition->'notify'->'escalate') else 0 end,
  case when jsonb_typeof(pl.definition->'notify'->'digest') = 'array' and pl.definition->'notify'->'digest' <> '[]'::jsonb
    then array(select jsonb_array_elements_text(pl.definition->'notify'->'digest')) end`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table plan_states (
    tenant_id uuid not null,
    plan_id text not null,
    plan_created_at timestamptz not null,
    tz text not null,
    every text,
    grace text,
    esc_steps integer not null default 0,
    digest text[],
    decisive_at timestamptz,
    decisive_id uuid,
    last_verdict text,
    passed_at timestamptz,
    passed_id uuid,
    passed_finished_at timestamptz,
    passed_clock_start timestamptz,
    due_key text,
    due_clock_start timestamptz,
    next_due_at timestamptz,
    overdue_at timestamptz,
    due_soon_epoch numeric,
    primary key (tenant_id, plan_id)
  )`.execute(db);

  // a plan's row read again from the two partial indexes (a decisive run changed or went)
  await sql`create function plan_states_recompute(t uuid, p text) returns void language sql as $fn$
    insert into plan_states as s (tenant_id, plan_id, ${sql.raw(PLAN_COLUMNS)}, decisive_at, decisive_id, last_verdict, passed_at, passed_id, passed_finished_at, passed_clock_start)
    select t, p, ${sql.raw(PLAN_VALUES)}, d.ord, d.id, d.verdict, pa.ord, pa.id, pa.finished_at, pa.clock_start
    from plans pl
    left join lateral (
      select coalesce(r.finished_at, r.started_at, r.queued_at) as ord, r.id, r.verdict from runs r
      where r.tenant_id = t and r.plan_id = p and r.status = 'finished' and r.verdict in ('passed', 'failed')
      order by coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc limit 1) d on true
    left join lateral (
      select coalesce(r.finished_at, r.started_at, r.queued_at) as ord, r.id, r.finished_at, coalesce(r.started_at, r.queued_at) as clock_start from runs r
      where r.tenant_id = t and r.plan_id = p and r.status = 'finished' and r.verdict = 'passed'
      order by coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc limit 1) pa on true
    where pl.tenant_id = t and pl.id = p
    on conflict (tenant_id, plan_id) do update set
      decisive_at = excluded.decisive_at, decisive_id = excluded.decisive_id, last_verdict = excluded.last_verdict,
      passed_at = excluded.passed_at, passed_id = excluded.passed_id, passed_finished_at = excluded.passed_finished_at,
      passed_clock_start = excluded.passed_clock_start
  $fn$`.execute(db);

  await sql`create function plan_states_from_runs() returns trigger language plpgsql as $fn$
    declare
      new_counts boolean := tg_op <> 'DELETE' and new.status = 'finished' and new.verdict in ('passed', 'failed');
      old_counts boolean := tg_op <> 'INSERT' and old.status = 'finished' and old.verdict in ('passed', 'failed');
      ts timestamptz;
    begin
      if old_counts then
        if new_counts and new.tenant_id = old.tenant_id and new.plan_id = old.plan_id and new.id = old.id and new.verdict = old.verdict
          and new.finished_at is not distinct from old.finished_at and new.started_at is not distinct from old.started_at
          and new.queued_at is not distinct from old.queued_at then
          return null; -- nothing the status reads changed
        end if;
        perform plan_states_recompute(old.tenant_id, old.plan_id);
        if new_counts and (new.tenant_id, new.plan_id) <> (old.tenant_id, old.plan_id) then
          perform plan_states_recompute(new.tenant_id, new.plan_id);
        end if;
        return null;
      end if;
      if not new_counts then
        return null;
      end if;
      ts := coalesce(new.finished_at, new.started_at, new.queued_at);
      insert into plan_states as s (tenant_id, plan_id, ${sql.raw(PLAN_COLUMNS)}, decisive_at, decisive_id, last_verdict, passed_at, passed_id, passed_finished_at, passed_clock_start)
      select new.tenant_id, new.plan_id, ${sql.raw(PLAN_VALUES)}, ts, new.id, new.verdict,
        case when new.verdict = 'passed' then ts end, case when new.verdict = 'passed' then new.id end,
        case when new.verdict = 'passed' then new.finished_at end, case when new.verdict = 'passed' then coalesce(new.started_at, new.queued_at) end
      from plans pl where pl.tenant_id = new.tenant_id and pl.id = new.plan_id
      on conflict (tenant_id, plan_id) do update set
        decisive_at = case when (s.decisive_id is null or (excluded.decisive_at, excluded.decisive_id) > (s.decisive_at, s.decisive_id))
          then excluded.decisive_at else s.decisive_at end,
        decisive_id = case when (s.decisive_id is null or (excluded.decisive_at, excluded.decisive_id) > (s.decisive_at, s.decisive_id))
          then excluded.decisive_id else s.decisive_id end,
        last_verdict = case when (s.decisive_id is null or (excluded.decisive_at, excluded.decisive_id) > (s.decisive_at, s.decisive_id))
          then excluded.last_verdict else s.last_verdict end,
        passed_at = case when (excluded.passed_id is not null and (s.passed_id is null or (excluded.passed_at, excluded.passed_id) > (s.passed_at, s.passed_id)))
          then excluded.passed_at else s.passed_at end,
        passed_id = case when (excluded.passed_id is not null and (s.passed_id is null or (excluded.passed_at, excluded.passed_id) > (s.passed_at, s.passed_id)))
          then excluded.passed_id else s.passed_id end,
        passed_finished_at = case when (excluded.passed_id is not null and (s.passed_id is null or (excluded.passed_at, excluded.passed_id) > (s.passed_at, s.passed_id)))
          then excluded.passed_finished_at else s.passed_finished_at end,
        passed_clock_start = case when (excluded.passed_id is not null and (s.passed_id is null or (excluded.passed_at, excluded.passed_id) > (s.passed_at, s.passed_id)))
          then excluded.passed_clock_start else s.passed_clock_start end;
      return null;
    end
  $fn$`.execute(db);

  await sql`create trigger runs_plan_states_insert after insert on runs for each row
    when (new.status = 'finished') execute function plan_states_from_runs()`.execute(db);
  await sql`create trigger runs_plan_states_update after update on runs for each row
    when (old.status = 'finished' or new.status = 'finished') execute function plan_states_from_runs()`.execute(db);
  await sql`create trigger runs_plan_states_delete after delete on runs for each row
    when (old.status = 'finished') execute function plan_states_from_runs()`.execute(db);
  await sql`create function plan_states_truncate() returns trigger language plpgsql as $fn$
    begin
      update plan_states set decisive_at = null, decisive_id = null, last_verdict = null,
        passed_at = null, passed_id = null, passed_finished_at = null, passed_clock_start = null;
      return null;
    end
  $fn$`.execute(db);
  await sql`create trigger runs_plan_states_truncate after truncate on runs for each statement execute function plan_states_truncate()`.execute(db);

  // the plan's side: created with the plan, its cadence (and escalation steps) copied on every change of the definition
  await sql`create function plan_states_from_plans() returns trigger language plpgsql as $fn$
    begin
      if tg_op = 'DELETE' then
        delete from plan_states where tenant_id = old.tenant_id and plan_id = old.id;
        return null;
      end if;
      insert into plan_states as s (tenant_id, plan_id, ${sql.raw(PLAN_COLUMNS)})
      select new.tenant_id, new.id, ${sql.raw(PLAN_VALUES)} from (select new.definition, new.created_at) pl
      on conflict (tenant_id, plan_id) do update set
        plan_created_at = excluded.plan_created_at, tz = excluded.tz, every = excluded.every, grace = excluded.grace,
        esc_steps = excluded.esc_steps, digest = excluded.digest;
      return null;
    end
  $fn$`.execute(db);
  await sql`create trigger plans_plan_states after insert or update of definition, created_at on plans for each row execute function plan_states_from_plans()`.execute(db);
  await sql`create trigger plans_plan_states_delete after delete on plans for each row execute function plan_states_from_plans()`.execute(db);

  // backfill: one pass over each of the two indexes (DISTINCT ON in index order)
  await sql`insert into plan_states (tenant_id, plan_id, ${sql.raw(PLAN_COLUMNS)}, decisive_at, decisive_id, last_verdict, passed_at, passed_id, passed_finished_at, passed_clock_start)
    select pl.tenant_id, pl.id, ${sql.raw(PLAN_VALUES)}, d.ord, d.id, d.verdict, pa.ord, pa.id, pa.finished_at, pa.clock_start
    from plans pl
    left join (
      select distinct on (r.tenant_id, r.plan_id) r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) as ord, r.id, r.verdict from runs r
      where r.status = 'finished' and r.verdict in ('passed', 'failed')
      order by r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc
    ) d on d.tenant_id = pl.tenant_id and d.plan_id = pl.id
    left join (
      select distinct on (r.tenant_id, r.plan_id) r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) as ord, r.id, r.finished_at,
        coalesce(r.started_at, r.queued_at) as clock_start from runs r
      where r.status = 'finished' and r.verdict = 'passed'
      order by r.tenant_id, r.plan_id, coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc
    ) pa on pa.tenant_id = pl.tenant_id and pa.plan_id = pl.id`.execute(db);

  await sql`create index notifications_run on notifications (tenant_id, run_id) where run_id is not null`.execute(db);
  // the scheduler's query filters plans by these expressions: without statistics on them the planner guesses
  // ~200 of 100,000 rows and joins plan_schedules by 40,000 index lookups instead of one hash join
  await sql`create statistics if not exists plans_cadence_stats on ((definition->'cadence'->>'schedule')), ((definition->>'kind')) from plans`.execute(db);
  await sql`analyze plans`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop statistics if exists plans_cadence_stats`.execute(db);
  await sql`drop index if exists notifications_run`.execute(db);
  await sql`drop trigger if exists plans_plan_states_delete on plans`.execute(db);
  await sql`drop trigger if exists plans_plan_states on plans`.execute(db);
  await sql`drop function if exists plan_states_from_plans()`.execute(db);
  await sql`drop trigger if exists runs_plan_states_truncate on runs`.execute(db);
  await sql`drop trigger if exists runs_plan_states_delete on runs`.execute(db);
  await sql`drop trigger if exists runs_plan_states_update on runs`.execute(db);
  await sql`drop trigger if exists runs_plan_states_insert on runs`.execute(db);
  await sql`drop function if exists plan_states_truncate()`.execute(db);
  await sql`drop function if exists plan_states_from_runs()`.execute(db);
  await sql`drop function if exists plan_states_recompute(uuid, text)`.execute(db);
  await sql`drop table if exists plan_states`.execute(db);
}
