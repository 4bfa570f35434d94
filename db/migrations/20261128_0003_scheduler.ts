import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Scheduler state per plan: the last slot handled (so restarts and downtime neither repeat nor flood slots) and a pause.
  await db.schema
    .createTable('plan_schedules')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull())
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('last_slot', 'timestamptz')
    .addColumn('last_missed_slot', 'timestamptz')
    .addColumn('last_missed_reason', 'text')
    .addColumn('paused_at', 'timestamptz')
    .addColumn('paused_reason', 'text')
    .addColumn('paused_by', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('plan_schedules_pk', ['tenant_id', 'plan_id'])
    .addForeignKeyConstraint('plan_schedules_plan_fk', ['tenant_id', 'plan_id'], 'plans', ['tenant_id', 'id'])
    .addCheckConstraint('plan_schedules_pause_complete', sql`(paused_at is null) = (paused_reason is null) and (paused_at is null) = (paused_by is null)`)
    .execute();

  // Watching the watcher: every scheduler process records each tick, the leader says so.
  await db.schema
    .createTable('scheduler_heartbeats')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('is_leader', 'boolean', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_tick_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_leader_tick_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('scheduler_heartbeats').execute();
  await db.schema.dropTable('plan_schedules').execute();
}
