import type { Kysely } from 'kysely';
import type { DB, Role } from '../schema.js';

const cols = ['id', 'tenant_id', 'name', 'role', 'user_id', 'created_by', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'] as const;

export class TokenRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(t: { id: string; tenantId: string; name: string; role: Role; tokenHash: string; createdBy: string; expiresAt: Date | null; userId?: string | null }): Promise<void> {
    await this.db.insertInto('api_tokens').values({
      id: t.id, tenant_id: t.tenantId, name: t.name, role: t.role, token_hash: t.tokenHash, created_by: t.createdBy, expires_at: t.expiresAt, user_id: t.userId ?? null,
    }).execute();
  }

  /** A usable token: not revoked, not expired, and its user (if it has one) not disabled. */
  byHash(hash: string) {
    return this.db.selectFrom('api_tokens as t').leftJoin('users as u', 'u.id', 't.user_id')
      .select(['t.id', 't.tenant_id', 't.name', 't.role', 't.user_id', 'u.email as user_email'])
      .where('t.token_hash', '=', hash).where('t.revoked_at', 'is', null)
      .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', new Date())]))
      .where((eb) => eb.or([eb('t.user_id', 'is', null), eb('u.disabled_at', 'is', null)]))
      .executeTakeFirst();
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
