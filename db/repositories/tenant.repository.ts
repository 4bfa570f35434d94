import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DB, TenantsTable } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;
export type TenantRow = Selectable<TenantsTable>;

/** The provider's own pseudo-tenant (its evidence chain): never a tenant anyone signs in to. */
export const PROVIDER_TENANT_SLUG = '_provider';

export class TenantRepository {
  constructor(private readonly db: Kysely<DB>) {}

  byId(id: string, trx: Db = this.db): Promise<TenantRow | undefined> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name', 'created_at', 'disabled_at']).where('id', '=', id).executeTakeFirst();
  }

  /** Id of every tenant by slug, the provider's pseudo-tenant left out. */
  async idsBySlug(trx: Db = this.db): Promise<Map<string, string>> {
    const rows = await trx.selectFrom('tenants').select(['id', 'slug']).where('slug', '!=', PROVIDER_TENANT_SLUG).execute();
    return new Map(rows.map((t) => [t.slug, t.id]));
  }

  /** The tenant's display name; fails for an unknown tenant. */
  async name(id: string, trx: Db = this.db): Promise<string> {
    return (await trx.selectFrom('tenants').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name;
  }

  /** Slug and name, as messages name the tenant; fails for an unknown tenant. */
  names(id: string, trx: Db = this.db): Promise<{ slug: string; name: string }> {
    return trx.selectFrom('tenants').select(['slug', 'name']).where('id', '=', id).executeTakeFirstOrThrow();
  }

  bySlug(slug: string, trx: Db = this.db): Promise<TenantRow | undefined> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name', 'created_at', 'disabled_at']).where('slug', '=', slug).executeTakeFirst();
  }
}
