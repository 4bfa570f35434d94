import { sql, type Insertable, type Kysely, type Selectable, type Transaction, type Updateable } from 'kysely';
import type { DB, SessionsTable, UsersTable } from '../schema.js';
import type { Clock } from '../../services/clock.js';

type Db = Kysely<DB> | Transaction<DB>;
export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;

export class UserRepository {
  constructor(private readonly db: Kysely<DB>, private readonly clock: Clock) {}

  byId(id: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Within a tenant (null: the provider's own users). */
  inTenant(tenantId: string | null, id: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('id', '=', id)
      .where('tenant_id', tenantId === null ? 'is' : '=', tenantId).executeTakeFirst();
  }

  byEmail(email: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('email', '=', email.trim().toLowerCase()).executeTakeFirst();
  }

  byOidc(issuer: string, subject: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('oidc_issuer', '=', issuer).where('oidc_subject', '=', subject).executeTakeFirst();
  }

  byInvite(hash: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('invite_token_hash', '=', hash).where('invite_expires_at', '>', this.clock()).executeTakeFirst();
  }

  list(tenantId: string | null, trx: Db = this.db): Promise<UserRow[]> {
    return trx.selectFrom('users').selectAll().where('tenant_id', tenantId === null ? 'is' : '=', tenantId).orderBy('email').execute();
  }

  async countProviderAdmins(trx: Db = this.db): Promise<number> {
    const r = await trx.selectFrom('users').select(sql<number>`count(*)::int`.as('n')).where('role', '=', 'provider-admin').executeTakeFirstOrThrow();
    return r.n;
  }

  /** A new user, created now by this repository's clock. */
  insert(u: Omit<Insertable<UsersTable>, 'created_at' | 'sessions_valid_after'>, trx: Db = this.db): Promise<UserRow> {
    const now = this.clock();
    return trx.insertInto('users').values({ ...u, created_at: now, sessions_valid_after: now }).returningAll().executeTakeFirstOrThrow();
  }

  update(id: string, set: Updateable<UsersTable>, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.updateTable('users').set(set).where('id', '=', id).returningAll().executeTakeFirst();
  }

  // ---- sessions ----

  insertSession(s: { tokenHash: string; userId: string; stage: SessionRow['stage']; method: SessionRow['method']; csrfToken: string; expiresAt: Date; ip?: string; userAgent?: string; actingTenantId?: string | null }, trx: Db = this.db): Promise<SessionRow> {
    return trx.insertInto('sessions').values({
      token_hash: s.tokenHash, user_id: s.userId, stage: s.stage, method: s.method, csrf_token: s.csrfToken, expires_at: s.expiresAt, created_at: this.clock(), last_seen_at: this.clock(),
      ip: s.ip ?? null, user_agent: s.userAgent?.slice(0, 300) ?? null, acting_tenant_id: s.actingTenantId ?? null,
    }).returningAll().executeTakeFirstOrThrow();
  }

  /** A live session with its user: not revoked, not expired, not idle too long, user enabled, not logged out everywhere since. */
  async liveSession(tokenHash: string, idleSeconds: number, trx: Db = this.db): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const row = await trx.selectFrom('sessions as s').innerJoin('users as u', 'u.id', 's.user_id')
      .selectAll('s')
      .select(sql<UserRow>`to_jsonb(u.*)`.as('user'))
      .where('s.token_hash', '=', tokenHash)
      .where('s.revoked_at', 'is', null)
      .where('s.expires_at', '>', this.clock())
      .where('s.last_seen_at', '>', new Date(this.clock().getTime() - idleSeconds * 1000))
      .where('u.disabled_at', 'is', null)
      .where(sql<boolean>`s.created_at >= u.sessions_valid_after`)
      .executeTakeFirst();
    if (!row) return undefined;
    const { user, ...session } = row as SessionRow & { user: Record<string, unknown> };
    // to_jsonb turns timestamps into strings
    for (const k of ['totp_enabled_at', 'locked_until', 'sessions_valid_after', 'invite_expires_at', 'created_at', 'disabled_at', 'last_login_at']) {
      if (typeof user[k] === 'string') user[k] = new Date(user[k] as string);
    }
    return { session, user: user as unknown as UserRow };
  }

  async touchSession(id: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('sessions').set({ last_seen_at: this.clock() }).where('id', '=', id).execute();
  }

  updateSession(id: string, set: Partial<Pick<SessionRow, 'stage' | 'token_hash' | 'csrf_token' | 'acting_tenant_id' | 'revoked_at'>>, trx: Db = this.db): Promise<SessionRow | undefined> {
    return trx.updateTable('sessions').set(set).where('id', '=', id).returningAll().executeTakeFirst();
  }

  async revokeAllSessions(userId: string, trx: Db = this.db): Promise<number> {
    const now = this.clock();
    const r = await trx.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    await trx.updateTable('users').set({ sessions_valid_after: now }).where('id', '=', userId).execute();
    return Number(r.numUpdatedRows);
  }

  listSessions(userId: string, trx: Db = this.db): Promise<SessionRow[]> {
    return trx.selectFrom('sessions').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null)
      .where('expires_at', '>', this.clock()).orderBy('created_at', 'desc').execute();
  }
}
