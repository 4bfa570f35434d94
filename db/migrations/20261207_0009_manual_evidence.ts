import { sql, type Kysely } from 'kysely';

/**
 * Issue #12: what people hand in while they carry out a manual restore test or
 * an exercise — screenshots, logs, minutes — is kept with the open run until
 * the run is completed; then it is hashed into the run's signed record (the
 * ledger's attachments) and the copy here gives up its content (never
 * deleted: the app role has no DELETE). Exercises are runs of their own
 * origin.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('run_uploads')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id'))
    .addColumn('step_index', 'integer')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    .addColumn('content', 'bytea')
    .addColumn('uploaded_by', 'text', (c) => c.notNull())
    .addColumn('uploaded_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('run_uploads_name', ['tenant_id', 'run_id', 'name'])
    .execute();
  await sql`alter table runs drop constraint if exists runs_origin_check`.execute(db);
  await sql`alter table runs add constraint runs_origin_check check (origin in ('ernstfall', 'external', 'manual', 'exercise'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table runs drop constraint if exists runs_origin_check`.execute(db);
  await sql`alter table runs add constraint runs_origin_check check (origin in ('ernstfall', 'external', 'manual'))`.execute(db);
  await db.schema.dropTable('run_uploads').execute();
}
