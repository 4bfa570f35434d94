import { sql, type Kysely } from 'kysely';

/**
 * Issue #12: a tenant's systems as their own objects (Fachverfahren, file
 * server, e-mail …): process, protection need, restart tier, owner and where
 * the emergency manual describes it. Plans name a system by its id; the
 * dashboard and the audit report group by it and show the restart order.
 * Systems are retired, never deleted (their plans' evidence names them).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('systems')
    .addColumn('tenant_id', 'uuid', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('process', 'text')
    .addColumn('protection_need', 'text', (c) => c.check(sql`protection_need in ('normal', 'hoch', 'sehr hoch')`))
    .addColumn('tier', 'integer', (c) => c.notNull().check(sql`tier between 1 and 9`))
    .addColumn('owner', 'text')
    .addColumn('handbook_ref', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('retired_at', 'timestamptz')
    .addPrimaryKeyConstraint('systems_pk', ['tenant_id', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('systems').execute();
}
