import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('signing_keys')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('public_key_pem', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // The ledger: one hash chain per tenant. Rows are immutable for everyone (trigger below).
  await db.schema
    .createTable('ledger_records')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('canonical', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('retain_until', 'date', (c) => c.notNull())
    .addPrimaryKeyConstraint('ledger_records_pk', ['tenant_id', 'seq'])
    .execute();
  await sql`create index ledger_subject on ledger_records (tenant_id, kind, subject_id)`.execute(db);
  await sql`create index ledger_created on ledger_records (tenant_id, kind, created_at)`.execute(db);
  await sql`
    create function ledger_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'the evidence ledger is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  await sql`create trigger ledger_no_update_delete before update or delete on ledger_records for each row execute function ledger_refuse_change()`.execute(db);
  await sql`create trigger ledger_no_truncate before truncate on ledger_records for each statement execute function ledger_refuse_change()`.execute(db);

  // Bulky attachments (raw tool output): content may be pruned after its retention, the hash stays in the record.
  await db.schema
    .createTable('ledger_attachments')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull())
    .addColumn('record_hash', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    .addColumn('content', 'bytea')
    .addColumn('retain_until', 'date', (c) => c.notNull())
    .addColumn('pruned_at', 'timestamptz')
    .addPrimaryKeyConstraint('ledger_attachments_pk', ['tenant_id', 'record_hash', 'name'])
    .execute();
  await sql`create index ledger_attachments_prune on ledger_attachments (retain_until) where content is not null`.execute(db);

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'operator', 'reviewer', 'auditor')`))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('reviews')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id'))
    .addColumn('decision', 'text', (c) => c.notNull().check(sql`decision in ('approved', 'approved-with-deviations', 'rejected')`))
    .addColumn('comment', 'text', (c) => c.notNull())
    .addColumn('reviewer', 'text', (c) => c.notNull())
    .addColumn('record_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index reviews_run on reviews (tenant_id, run_id)`.execute(db);

  await db.schema
    .createTable('measures')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id'))
    .addColumn('review_id', 'uuid', (c) => c.references('reviews.id'))
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('due_date', 'date', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'in-progress', 'done')`))
    .addColumn('closed_by_run_id', 'uuid', (c) => c.references('runs.id'))
    .addColumn('closed_at', 'timestamptz')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index measures_tenant on measures (tenant_id, status, due_date)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['measures', 'reviews', 'api_tokens', 'ledger_attachments', 'ledger_records', 'signing_keys']) {
    await db.schema.dropTable(t).execute();
  }
  await sql`drop function ledger_refuse_change()`.execute(db);
}
