import { type Kysely, type Selectable, type Transaction } from 'kysely';
import type { DB, ProviderGrantsTable, Role, TenantsTable } from '../schema.js';
import type { Clock } from '../../services/clock.js';

type Db = Kysely<DB> | Transaction<DB>;
export type GrantRow = Selectable<ProviderGrantsTable>;
export type TenantRow = Selectable<TenantsTable>;
export type TenantWithGrant = TenantRow & { grant_id: string | null; grant_role: Role | null; grant_expires_at: Date | null };
export type GrantWithTenant = GrantRow & { tenant_slug: string; tenant_name: string };

/** The provider's own pseudo-tenant (its audit chain); never listed, never entered. */
const PROVIDER_ROW = '00000000-0000-4000-8000-000000000000';
const tenantCols = ['t.id', 't.slug', 't.name', 't.created_at', 't.disabled_at'] as const;
const grantCols = ['g.id', 'g.tenant_id', 'g.role', 'g.reason', 'g.granted_by', 'g.granted_at', 'g.expires_at', 'g.revoked_at'] as const;

/** Tenants and the grants by which a tenant lets its service provider in. */
export class ProviderRepository {
  constructor(private readonly db: Kysely<DB>, private readonly clock: Clock) {}

  insertTenant(t: { slug: string; name: string }, trx: Db = this.db): Promise<TenantRow> {
    return trx.insertInto('tenants').values({ slug: t.slug, name: t.name, created_at: this.clock() })
      .returning(['id', 'slug', 'name', 'created_at', 'disabled_at']).executeTakeFirstOrThrow();
  }

  async slugTaken(slug: string, trx: Db = this.db): Promise<boolean> {
    return !!(await trx.selectFrom('tenants').select('id').where('slug', '=', slug).executeTakeFirst());
  }

  /** A real tenant (never the provider's own row). */
  tenant(id: string, trx: Db = this.db): Promise<TenantRow | undefined> {
    return trx.selectFrom('tenants as t').select(tenantCols).where('t.id', '=', id).where('t.id', '!=', PROVIDER_ROW).executeTakeFirst();
  }

  /** Every tenant with its active grant to the provider, if any. */
  listTenants(trx: Db = this.db): Promise<TenantWithGrant[]> {
    return trx.selectFrom('tenants as t')
      .leftJoin('provider_grants as g', (j) => j.onRef('g.tenant_id', '=', 't.id').on('g.revoked_at', 'is', null).on('g.expires_at', '>', this.clock()))
      .select([...tenantCols, 'g.id as grant_id', 'g.role as grant_role', 'g.expires_at as grant_expires_at'])
      .where('t.id', '!=', PROVIDER_ROW).orderBy('t.slug').orderBy('g.granted_at', 'desc')
      .execute()
      // a tenant with more than one active grant (should not happen: a new grant replaces the old) is listed once
      .then((rows) => rows.filter((r, i) => i === 0 || rows[i - 1]!.id !== r.id));
  }

  updateTenant(id: string, set: { name?: string; disabled_at?: Date | null }, trx: Db = this.db): Promise<TenantRow | undefined> {
    return trx.updateTable('tenants').set(set).where('id', '=', id).where('id', '!=', PROVIDER_ROW)
      .returning(['id', 'slug', 'name', 'created_at', 'disabled_at']).executeTakeFirst();
  }

  /** Ends every session of the tenant's users and every provider session acting in it (tenant disabled). */
  async endTenantSessions(tenantId: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('sessions').set({ revoked_at: this.clock() }).where('revoked_at', 'is', null)
      .where((eb) => eb.or([
        eb('acting_tenant_id', '=', tenantId),
        eb('user_id', 'in', eb.selectFrom('users').select('id').where('tenant_id', '=', tenantId)),
      ])).execute();
  }

  /** Provider sessions acting in the tenant fall back to "no tenant" (grant revoked or replaced). */
  async leaveTenantSessions(tenantId: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('sessions').set({ acting_tenant_id: null }).where('acting_tenant_id', '=', tenantId).where('revoked_at', 'is', null).execute();
  }

  insertGrant(g: { tenantId: string; role: Role; reason: string; grantedBy: string; expiresAt: Date }, trx: Db = this.db): Promise<GrantRow> {
    return trx.insertInto('provider_grants')
      .values({ tenant_id: g.tenantId, role: g.role, reason: g.reason, granted_by: g.grantedBy, expires_at: g.expiresAt, granted_at: this.clock() })
      .returningAll().executeTakeFirstOrThrow();
  }

  /** Revokes the tenant's active grants; returns their ids. */
  async revokeActiveGrants(tenantId: string, trx: Db = this.db): Promise<string[]> {
    const rows = await trx.updateTable('provider_grants').set({ revoked_at: this.clock() })
      .where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).where('expires_at', '>', this.clock())
      .returning('id').execute();
    return rows.map((r) => r.id);
  }

  /** The tenant's newest grant that is neither revoked nor expired. */
  activeGrantOf(tenantId: string, trx: Db = this.db): Promise<{ id: string; role: Role; expires_at: Date } | undefined> {
    return trx.selectFrom('provider_grants').select(['id', 'role', 'expires_at'])
      .where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).where('expires_at', '>', this.clock())
      .orderBy('granted_at', 'desc').limit(1).executeTakeFirst();
  }

  grant(tenantId: string, id: string, trx: Db = this.db): Promise<GrantRow | undefined> {
    return trx.selectFrom('provider_grants').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  revokeGrant(id: string, trx: Db = this.db): Promise<GrantRow | undefined> {
    return trx.updateTable('provider_grants').set({ revoked_at: this.clock() }).where('id', '=', id).where('revoked_at', 'is', null)
      .returningAll().executeTakeFirst();
  }

  /** A tenant's grants, newest first (also revoked and expired ones: the tenant's record of who was let in). */
  grantsOf(tenantId: string, limit = 200, trx: Db = this.db): Promise<GrantWithTenant[]> {
    return trx.selectFrom('provider_grants as g').innerJoin('tenants as t', 't.id', 'g.tenant_id')
      .select([...grantCols, 't.slug as tenant_slug', 't.name as tenant_name'])
      .where('g.tenant_id', '=', tenantId).orderBy('g.granted_at', 'desc').limit(limit).execute();
  }

  /** Grants in force across all enabled tenants (what provider admins may enter). */
  activeGrants(trx: Db = this.db): Promise<GrantWithTenant[]> {
    return trx.selectFrom('provider_grants as g').innerJoin('tenants as t', 't.id', 'g.tenant_id')
      .select([...grantCols, 't.slug as tenant_slug', 't.name as tenant_name'])
      .where('g.revoked_at', 'is', null).where('g.expires_at', '>', this.clock()).where('t.disabled_at', 'is', null)
      .orderBy('t.slug').orderBy('g.granted_at', 'desc').execute();
  }
}
