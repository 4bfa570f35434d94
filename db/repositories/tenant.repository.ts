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

  bySlug(slug: string, trx: Db = this.db): Promise<TenantRow | undefined> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name', 'created_at', 'disabled_at']).where('slug', '=', slug).executeTakeFirst();
  }
}
