import { sql, type Kysely } from 'kysely';

/**
 * Issue #10: a reviewed, intended change (a dropped table, an archive purge)
 * becomes the new baseline of the built-in drift checks by accepting the run
 * that showed it. Rows are never changed or deleted: the newest counts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('plan_baselines')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id'))
    .addColumn('accepted_by', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('accepted_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index plan_baselines_plan on plan_baselines (tenant_id, plan_id, accepted_at desc)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('plan_baselines').execute();
}
