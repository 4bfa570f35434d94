import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // People. A provider admin belongs to no tenant; everyone else to exactly one.
  await db.schema
    .createTable('users')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'uuid', (c) => c.references('tenants.id'))
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('provider-admin', 'admin', 'operator', 'reviewer', 'auditor')`))
    // scrypt$N$r$p$salt$hash (base64); null for single-sign-on users and invited users before they set one
    .addColumn('password_hash', 'text')
    // AES-256-GCM under a key derived from ERNSTFALL_SECRET_KEY_FILE; never stored plain
    .addColumn('totp_secret_enc', 'text')
    .addColumn('totp_enabled_at', 'timestamptz')
    // the newest 30-second step accepted: a code is accepted once only
    .addColumn('totp_last_step', 'bigint')
    .addColumn('recovery_codes', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'timestamptz')
    // "log out everywhere": sessions created before this are void
    .addColumn('sessions_valid_after', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('oidc_issuer', 'text')
    .addColumn('oidc_subject', 'text')
    .addColumn('invite_token_hash', 'text', (c) => c.unique())
    .addColumn('invite_expires_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('last_login_at', 'timestamptz')
    .addCheckConstraint('users_provider_has_no_tenant', sql`(tenant_id is null) = (role = 'provider-admin')`)
    .addCheckConstraint('users_email_lower', sql`email = lower(email)`)
    .addUniqueConstraint('users_oidc_identity', ['oidc_issuer', 'oidc_subject'])
    .execute();
  await sql`create index users_tenant on users (tenant_id)`.execute(db);

  // Browser sessions: the cookie holds a random token, the database only its SHA-256.
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id'))
    // the tenant a provider admin acts in (by grant); null otherwise
    .addColumn('acting_tenant_id', 'uuid', (c) => c.references('tenants.id'))
    // password: password accepted, second factor missing; enrol: must set up TOTP first; full: signed in
    .addColumn('stage', 'text', (c) => c.notNull().check(sql`stage in ('password', 'enrol', 'full')`))
    .addColumn('method', 'text', (c) => c.notNull().check(sql`method in ('password', 'oidc')`))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await sql`create index sessions_user on sessions (user_id) where revoked_at is null`.execute(db);

  // API tokens belong to a user (who answers for them); older tokens created by the bootstrap token have none.
  await db.schema.alterTable('api_tokens').addColumn('user_id', 'uuid', (c) => c.references('users.id')).execute();

  // A tenant lets its service provider in: provider admins see nothing of a tenant's evidence without a grant.
  await db.schema
    .createTable('provider_grants')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'operator', 'reviewer', 'auditor')`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('granted_by', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await sql`create index provider_grants_tenant on provider_grants (tenant_id)`.execute(db);

  await db.schema.alterTable('tenants').addColumn('disabled_at', 'timestamptz').execute();
  // the service provider's own evidence chain (audit records that belong to no tenant); never listed as a tenant
  await sql`insert into tenants (id, slug, name) values ('00000000-0000-4000-8000-000000000000', '_provider', 'Dienstleister / service provider')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from tenants where id = '00000000-0000-4000-8000-000000000000'`.execute(db);
  await db.schema.alterTable('tenants').dropColumn('disabled_at').execute();
  await db.schema.dropTable('provider_grants').execute();
  await db.schema.alterTable('api_tokens').dropColumn('user_id').execute();
  await db.schema.dropTable('sessions').execute();
  await db.schema.dropTable('users').execute();
}
