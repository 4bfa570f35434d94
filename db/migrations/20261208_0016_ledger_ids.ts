import { sql, type Kysely } from 'kysely';

/**
 * Issue #14, item 2: every tenant chain gets a ledger id, made once per
 * database when the chain's first record after this migration is appended
 * (not here: test databases are cloned from a template, and a copy made now
 * would share it). Records and checkpoints name it, so a checkpoint of another
 * database's chain with the same tenant id is recognised as foreign instead of
 * reading as tampering (docs/decisions/015-ledger-id.md). Like the ledger, the
 * row is never changed or deleted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table ledger_chains (
      tenant_id uuid primary key references tenants (id),
      ledger_id uuid not null unique,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create trigger ledger_chains_no_update_delete before update or delete on ledger_chains for each row execute function ledger_refuse_change()`.execute(db);
  await sql`create trigger ledger_chains_no_truncate before truncate on ledger_chains for each statement execute function ledger_refuse_change()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists ledger_chains`.execute(db);
}
