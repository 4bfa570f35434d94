import { sql, type Kysely } from 'kysely';

/**
 * Issue #13, worker pools: a run waits in its pool's queue (the plan's
 * `sandbox.pool`, taken when the run is queued) until a worker of that pool
 * takes it. Existing runs belong to the default pool.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table runs add column pool text not null default 'default'`.execute(db);
  await sql`create index runs_active_by_pool on runs (pool, status) where status in ('queued', 'running')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists runs_active_by_pool`.execute(db);
  await sql`alter table runs drop column pool`.execute(db);
}
