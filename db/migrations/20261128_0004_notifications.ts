import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // An alert is one problem episode of a plan (overdue or failing): it opens once, escalates until someone
  // acknowledges it, can be snoozed, and is resolved when the plan is fine again (then the all-clear goes out).
  await db.schema
    .createTable('alerts')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'uuid', (c) => c.notNull())
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('overdue', 'failing')`))
    // when the condition began (due date + grace; the failed run's end), the base of the escalation delays
    .addColumn('since', 'timestamptz', (c) => c.notNull())
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
    .addColumn('run_id', 'uuid')
    .addColumn('escalation_level', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('acknowledged_at', 'timestamptz')
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_reason', 'text')
    .addColumn('snoozed_until', 'timestamptz')
    .addColumn('snoozed_by', 'text')
    .addColumn('snoozed_reason', 'text')
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('resolved_by_run', 'uuid')
    .addForeignKeyConstraint('alerts_plan_fk', ['tenant_id', 'plan_id'], 'plans', ['tenant_id', 'id'])
    .addCheckConstraint('alerts_ack_complete', sql`(acknowledged_at is null) = (acknowledged_by is null)`)
    .execute();
  // at most one open alert per plan: a second scheduler or a retry cannot open another
  await sql`create unique index alerts_one_open on alerts (tenant_id, plan_id) where resolved_at is null`.execute(db);
  await sql`create index alerts_tenant_opened on alerts (tenant_id, opened_at desc)`.execute(db);

  // The outbox: every notification is written (in the transaction that decided it) before anything is sent.
  // dedupe_key makes it one notification per event and recipient, across restarts and schedulers.
  await db.schema
    .createTable('notifications')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('plan_id', 'text')
    .addColumn('alert_id', 'uuid', (c) => c.references('alerts.id'))
    .addColumn('run_id', 'uuid')
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('message', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending').check(sql`status in ('pending', 'sending', 'sent', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('locked_until', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addUniqueConstraint('notifications_dedupe', ['tenant_id', 'dedupe_key'])
    .execute();
  await sql`create index notifications_due on notifications (next_attempt_at) where status in ('pending', 'sending')`.execute(db);
  await sql`create index notifications_alert on notifications (alert_id) where alert_id is not null`.execute(db);
  await sql`create index notifications_tenant_created on notifications (tenant_id, created_at desc)`.execute(db);

  // iCalendar feeds: calendar clients cannot send a bearer token, so the secret is in the URL; stored hashed, revocable.
  await db.schema
    .createTable('calendar_feeds')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('lang', 'text', (c) => c.notNull().defaultTo('de'))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('calendar_feeds').execute();
  await db.schema.dropTable('notifications').execute();
  await db.schema.dropTable('alerts').execute();
}
