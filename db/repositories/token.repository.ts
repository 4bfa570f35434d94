import type { Kysely } from 'kysely';
import type { DB, Role } from '../schema.js';
import type { Clock } from '../../services/clock.js';

const cols = ['id', 'tenant_id', 'name', 'role', 'user_id', 'created_by', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'] as const;

export class TokenRepository {
  constructor(private readonly db: Kysely<DB>, private readonly clock: Clock) {}

  async insert(t: { id: string; tenantId: string; name: string; role: Role; tokenHash: string; createdBy: string; expiresAt: Date | null; userId?: string | null }): Promise<void> {
    await this.db.insertInto('api_tokens').values({
      id: t.id, tenant_id: t.tenantId, name: t.name, role: t.role, token_hash: t.tokenHash, created_by: t.createdBy, created_at: this.clock(), expires_at: t.expiresAt, user_id: t.userId ?? null,
    }).execute();
  }

  /** A usable token: not revoked, not expired, its user (if it has one) not disabled, its tenant not disabled. */
  byHash(hash: string) {
    return this.db.selectFrom('api_tokens as t').leftJoin('users as u', 'u.id', 't.user_id').innerJoin('tenants as tn', 'tn.id', 't.tenant_id')
      .select(['t.id', 't.tenant_id', 't.name', 't.role', 't.user_id', 'u.email as user_email'])
      .where('t.token_hash', '=', hash).where('t.revoked_at', 'is', null).where('tn.disabled_at', 'is', null)
      .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', this.clock())]))
      .where((eb) => eb.or([eb('t.user_id', 'is', null), eb('u.disabled_at', 'is', null)]))
      .executeTakeFirst();
  }

  /** The tenant's tokens; with userId only that user's. */
  list(tenantId: string, userId?: string) {
    let q = this.db.selectFrom('api_tokens').select(cols).where('tenant_id', '=', tenantId);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    return q.orderBy('created_at').execute();
  }

  /** Revokes a token of the tenant; with userId only if it is that user's. */
  async revoke(tenantId: string, id: string, userId?: string): Promise<boolean> {
    let q = this.db.updateTable('api_tokens').set({ revoked_at: this.clock() })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('revoked_at', 'is', null);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async touch(id: string): Promise<void> {
    await this.db.updateTable('api_tokens').set({ last_used_at: this.clock() }).where('id', '=', id).execute();
  }
}
