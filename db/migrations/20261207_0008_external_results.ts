import { sql, type Kysely } from 'kysely';

/**
 * Issue #12: results of tests other tools ran (Veeam SureBackup, restic or borg
 * check, a cloud's restore validation) and restore tests people carry out by
 * hand, step by step, become runs like ernstfall's own: `origin` says who
 * tested, `external_id` makes a result that is sent twice one run. Ingest tokens let a backup server report one plan's results and
 * nothing else; only their SHA-256 is stored.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs')
    .addColumn('origin', 'text', (c) => c.notNull().defaultTo('ernstfall').check(sql`origin in ('ernstfall', 'external', 'manual')`))
    .addColumn('external_id', 'text')
    .execute();
  await sql`create unique index runs_external_id on runs (tenant_id, plan_id, external_id) where external_id is not null`.execute(db);
  await db.schema
    .createTable('ingest_tokens')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await sql`create index ingest_tokens_plan on ingest_tokens (tenant_id, plan_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('ingest_tokens').execute();
  await sql`drop index runs_external_id`.execute(db);
  await db.schema.alterTable('runs').dropColumn('external_id').dropColumn('origin').execute();
}
