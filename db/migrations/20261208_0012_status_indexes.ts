import { sql, type Kysely } from 'kysely';

/**
 * Issue 13, provider scale (100,000 plans, 500,000 runs): the plan status
 * (db/repositories/plan-status.repository.ts) reads per plan the newest
 * decisive run (passed or failed) and the newest passed run, ordered by the
 * run's end. These two partial indexes hold exactly those runs in that
 * order, with the columns the status reads, so each lookup is one step of
 * an index-only scan instead of a sort of the tenant's whole history.
 *
 * The scheduler keeps each plan's next slot (and the schedule and zone it
 * was computed for) in plan_schedules: a tick asks the database for the
 * plans whose next slot has come (or is not known yet), instead of running
 * cron arithmetic for every scheduled plan every minute.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index runs_plan_decisive on runs (tenant_id, plan_id, (coalesce(finished_at, started_at, queued_at)) desc, id desc)
    include (verdict, finished_at, started_at, queued_at) where status = 'finished' and verdict in ('passed', 'failed')`.execute(db);
  await sql`create index runs_plan_passed on runs (tenant_id, plan_id, (coalesce(finished_at, started_at, queued_at)) desc, id desc)
    include (finished_at, started_at, queued_at) where status = 'finished' and verdict = 'passed'`.execute(db);
  await sql`alter table plan_schedules add column next_slot timestamptz, add column next_slot_key text`.execute(db);
  await sql`create index plan_schedules_next_slot on plan_schedules (next_slot)`.execute(db);
  // the reminder tick asks once for today's digest keys of all tenants (a prefix search), not once per tenant
  await sql`create index notifications_key_prefix on notifications (dedupe_key text_pattern_ops)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists notifications_key_prefix`.execute(db);
  await sql`alter table plan_schedules drop column if exists next_slot, drop column if exists next_slot_key`.execute(db);
  await sql`drop index if exists runs_plan_passed`.execute(db);
  await sql`drop index if exists runs_plan_decisive`.execute(db);
}
