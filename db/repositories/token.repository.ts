import type { Kysely } from 'kysely';
import type { DB, Role } from '../schema.js';

const cols = ['id', 'tenant_id', 'name', 'role', 'created_by', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'] as const;

export class TokenRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(t: { id: string; tenantId: string; name: string; role: Role; tokenHash: string; createdBy: string; expiresAt: Date | null }): Promise<void> {
    await this.db.insertInto('api_tokens').values({
      id: t.id, tenant_id: t.tenantId, name: t.name, role: t.role, token_hash: t.tokenHash, created_by: t.createdBy, expires_at: t.expiresAt,
    }).execute();
  }

  /** A usable token: not revoked, not expired. */
  byHash(hash: string) {
    return this.db.selectFrom('api_tokens').select(cols).where('token_hash', '=', hash).where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())])).executeTakeFirst();
  }

  list(tenantId: string) {
    return this.db.selectFrom('api_tokens').select(cols).where('tenant_id', '=', tenantId).orderBy('created_at').execute();
  }

  async revoke(tenantId: string, id: string): Promise<boolean> {
    const r = await this.db.updateTable('api_tokens').set({ revoked_at: new Date() })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async touch(id: string): Promise<void> {
    await this.db.updateTable('api_tokens').set({ last_used_at: new Date() }).where('id', '=', id).execute();
  }
}
