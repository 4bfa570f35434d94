import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { DB, Role, TenantsTable } from '../schema.js';
import type { UserRow } from './user.repository.js';
import type { Clock } from '../../services/clock.js';

type Db = Kysely<DB> | Transaction<DB>;

/** SQL of sign-in and user administration that goes beyond plain reads and writes of one row (locks, counters, bulk revocation). */
export class AccountRepository {
  constructor(private readonly db: Kysely<DB>, private readonly clock: Clock) {}

  /** The user row, locked until the transaction ends: two parallel requests cannot both use one code or both miss a failure. */
  lockUser(id: string, trx: Transaction<DB>): Promise<UserRow | undefined> {
    return trx.selectFrom('users').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  }

  tenant(id: string, trx: Db = this.db): Promise<Selectable<TenantsTable> | undefined> {
    return trx.selectFrom('tenants').select(['id', 'slug', 'name', 'created_at', 'disabled_at']).where('id', '=', id).executeTakeFirst();
  }

  /**
   * Admins of a tenant (null: the provider's admins) who can sign in (enabled, with a password or single sign-on;
   * a pending invitation does not count), locked: the "last admin" rule holds under concurrent changes.
   */
  async enabledAdminsForUpdate(tenantId: string | null, trx: Transaction<DB>): Promise<string[]> {
    const rows = await trx.selectFrom('users').select('id')
      .where('tenant_id', tenantId === null ? 'is' : '=', tenantId)
      .where('role', '=', tenantId === null ? 'provider-admin' : 'admin')
      .where('disabled_at', 'is', null)
      .where((eb) => eb.or([eb('password_hash', 'is not', null), eb('oidc_subject', 'is not', null)]))
      .orderBy('id').forUpdate().execute();
    return rows.map((r) => r.id);
  }

  /** Ends a user's sessions except one (password change keeps the session that changed it). */
  async revokeOtherSessions(userId: string, keepSessionId: string, trx: Db = this.db): Promise<number> {
    const r = await trx.updateTable('sessions').set({ revoked_at: this.clock() })
      .where('user_id', '=', userId).where('id', '!=', keepSessionId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Revokes the user's live API tokens whose role is not among `keep` (after a demotion). */
  async revokeTokensExcept(userId: string, keep: Role[], trx: Db = this.db): Promise<number> {
    let q = trx.updateTable('api_tokens').set({ revoked_at: this.clock() }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (keep.length) q = q.where('role', 'not in', keep);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Sets the password of an invited user, if the invitation is still open; the invitation is used up in the same statement. */
  acceptInvite(inviteHash: string, passwordHash: string, trx: Db = this.db): Promise<UserRow | undefined> {
    return trx.updateTable('users')
      .set({ password_hash: passwordHash, invite_token_hash: null, invite_expires_at: null, failed_logins: 0, locked_until: null })
      .where('invite_token_hash', '=', inviteHash).where('invite_expires_at', '>', this.clock()).where('disabled_at', 'is', null)
      .returningAll().executeTakeFirst();
  }

  /** Serialises first-time set-up (two parallel requests cannot both create the first provider admin). */
  async setupLock(trx: Transaction<DB>): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtext('ernstfall:setup-provider-admin'))`.execute(trx);
  }
}
