import { sql, type Kysely } from 'kysely';

/**
 * Issue #14, item 1 (one clock): business times come from the application's
 * injected clock (services/clock.ts), never from the database's `now()`. The
 * defaults below were a silent second clock: an insert that forgot the time got
 * the database's, and a test with a fixed clock then compared two clocks. Without
 * them such an insert fails loudly (NOT NULL). Lease columns keep their defaults:
 * the notification outbox, the outcome hand-over, scheduler heartbeats and the
 * ledger id (docs/decisions/018-one-clock.md).
 */
const BUSINESS_COLUMNS: [table: string, column: string][] = [
  ['tenants', 'created_at'],
  ['plans', 'created_at'], ['plans', 'updated_at'],
  ['plan_versions', 'created_at'],
  ['plan_schedules', 'updated_at'],
  ['runs', 'queued_at'],
  ['reviews', 'created_at'],
  ['measures', 'created_at'], ['measures', 'updated_at'],
  ['api_tokens', 'created_at'],
  ['calendar_feeds', 'created_at'],
  ['users', 'created_at'], ['users', 'sessions_valid_after'],
  ['sessions', 'created_at'], ['sessions', 'last_seen_at'],
  ['provider_grants', 'granted_at'],
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [table, column] of BUSINESS_COLUMNS) {
    await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} drop default`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const [table, column] of BUSINESS_COLUMNS) {
    await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} set default now()`.execute(db);
  }
}
