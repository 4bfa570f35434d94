import { sql, type Kysely } from 'kysely';

// Every table that holds plans, runs or evidence carries tenant_id from day one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('slug', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await sql`insert into tenants (id, slug, name) values ('00000000-0000-4000-8000-000000000001', 'default', 'Standard-Mandant')`.execute(db);

  await db.schema
    .createTable('plans')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull().check(sql`origin in ('file', 'api')`))
    .addColumn('source_file', 'text')
    .addColumn('version_hash', 'text', (c) => c.notNull())
    .addColumn('definition', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('plans_pk', ['tenant_id', 'id'])
    .execute();

  // Every version a plan ever had, so a run can always name what it ran.
  await db.schema
    .createTable('plan_versions')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull())
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('definition', 'jsonb', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('source_file', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('plan_versions_pk', ['tenant_id', 'plan_id', 'hash'])
    .addForeignKeyConstraint('plan_versions_plan_fk', ['tenant_id', 'plan_id'], 'plans', ['tenant_id', 'id'])
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('plan_version_hash', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('queued', 'running', 'finished')`))
    .addColumn('verdict', 'text', (c) => c.check(sql`verdict in ('passed', 'failed', 'error', 'cancelled')`))
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('triggered_by', 'text', (c) => c.notNull())
    .addColumn('slot', 'timestamptz')
    .addColumn('queued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('heartbeat_at', 'timestamptz')
    .addColumn('worker_id', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cancel_requested_at', 'timestamptz')
    .addColumn('phases', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('checks', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('findings', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('rto', 'jsonb')
    .addColumn('rpo', 'jsonb')
    .addColumn('backup', 'jsonb')
    .addColumn('sandbox', 'jsonb')
    .addColumn('restore', 'jsonb')
    .addForeignKeyConstraint('runs_plan_version_fk', ['tenant_id', 'plan_id', 'plan_version_hash'], 'plan_versions', ['tenant_id', 'plan_id', 'hash'])
    .execute();

  // Never two runs of one plan at once: at most one queued or running run per plan.
  await sql`create unique index runs_one_active_per_plan on runs (tenant_id, plan_id) where status <> 'finished'`.execute(db);
  // A scheduled slot runs once, whatever the scheduler does.
  await sql`create unique index runs_plan_slot on runs (tenant_id, plan_id, slot) where slot is not null`.execute(db);
  await sql`create index runs_tenant_queued on runs (tenant_id, queued_at desc, id desc)`.execute(db);
  await sql`create index runs_plan_queued on runs (tenant_id, plan_id, queued_at desc, id desc)`.execute(db);
  await sql`create index runs_active on runs (status) where status <> 'finished'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('runs').execute();
  await db.schema.dropTable('plan_versions').execute();
  await db.schema.dropTable('plans').execute();
  await db.schema.dropTable('tenants').execute();
}
