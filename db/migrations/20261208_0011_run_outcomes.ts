import { sql, type Kysely } from 'kysely';

/**
 * Issue #13, central signing: a worker holds no signing key. It hands the
 * outcome of a test to this table; a process that holds the key (API or
 * scheduler role) ends the run and appends its signed record, in one
 * transaction that also marks the outcome signed. Never deleted (the app
 * role has no DELETE): once signed, the outcome gives up its content, which
 * is then in the run row and the ledger.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('run_outcomes')
    .addColumn('run_id', 'uuid', (c) => c.primaryKey().references('runs.id'))
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    // the worker that reported it (a claimed run's holder, or the one that found the run lost)
    .addColumn('worker_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'jsonb')
    .addColumn('submitted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('signed_at', 'timestamptz')
    .execute();
  await sql`create index run_outcomes_unsigned on run_outcomes (submitted_at) where signed_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('run_outcomes').execute();
}
