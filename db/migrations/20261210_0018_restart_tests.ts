import { sql, type Kysely } from 'kysely';

/**
 * Issue #15, item 2 (docs/decisions/024-restart-tests.md): the restart order
 * tested. `processes` holds a business process's RTO (the time until the
 * process works again, from the business impact analysis); systems name their
 * process by its name. A `restart_tests` row is one test of a process: its
 * systems' plans with services restored tier by tier, the next tier only when
 * every run of the one before passed. The row is the state; whichever process
 * advances it holds it only for one transaction (FOR UPDATE SKIP LOCKED).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('processes')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('rto_seconds', 'integer', (c) => c.check(sql`rto_seconds > 0`))
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('processes_pk', ['tenant_id', 'name'])
    .execute();
  await db.schema
    .createTable('restart_tests')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('process', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('running', 'finished')`))
    .addColumn('verdict', 'text', (c) => c.check(sql`verdict in ('passed', 'failed', 'error', 'cancelled')`))
    .addColumn('rto_seconds', 'integer')
    .addColumn('current_tier', 'integer', (c) => c.notNull())
    .addColumn('tiers', 'jsonb', (c) => c.notNull())
    .addColumn('not_tested', 'jsonb', (c) => c.notNull())
    .addColumn('findings', 'jsonb', (c) => c.notNull())
    .addColumn('result', 'jsonb')
    .addColumn('cancel_requested_at', 'timestamptz')
    .addColumn('triggered_by', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('restart_tests_process_idx').on('restart_tests').columns(['tenant_id', 'process', 'started_at desc']).execute();
  await sql`create index restart_tests_running_idx on restart_tests (started_at) where status = 'running'`.execute(db);
  await sql`create unique index restart_tests_one_running on restart_tests (tenant_id, process) where status = 'running'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('restart_tests').execute();
  await db.schema.dropTable('processes').execute();
}
