import type { Role, SessionStage, UserRole } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { SessionRow, UserRow } from '../../db/repositories/user.repository.js';
import type { Config } from '../config.js';
import type { Clock } from '../clock.js';
import { randomToken, sha256 } from './crypto.js';

export const SESSION_COOKIE = 'ef_session';
/** Roles that must use a second factor (issue #5: admins and reviewers; the provider's admins too). */
export const MFA_ROLES: readonly UserRole[] = ['provider-admin', 'admin', 'reviewer'];

export interface LiveSession {
  session: SessionRow;
  user: UserRow;
  /** The tenant the request acts in: the user's, or for a provider admin the one that granted access. */
  tenantId: string | null;
  /** The role in that tenant: the user's, or the grant's. */
  role: UserRole;
}

/** What a user must still do after the password: enter a code, set up a second factor, or nothing. */
export function stageAfterPassword(user: Pick<UserRow, 'role' | 'totp_enabled_at'>): SessionStage {
  if (user.totp_enabled_at) return 'password';
  return MFA_ROLES.includes(user.role) ? 'enrol' : 'full';
}

/**
 * Browser sessions in secure, HTTP-only cookies. The cookie holds a random
 * token; the database holds its SHA-256, the stage (password accepted,
 * second factor pending, fully signed in), a CSRF token, an absolute expiry
 * and the last activity (idle timeout). Every change of stage issues a new
 * token (no session fixation). "Log out everywhere" moves the user's
 * sessions_valid_after, which voids every older session at once.
 */
export class SessionService {
  private readonly users: Repositories['users'];
  private readonly providers: Repositories['providers'];

  constructor(repos: Pick<Repositories, 'users' | 'providers'>, private readonly cfg: Config['auth'], private readonly clock: Clock) {
    this.users = repos.users;
    this.providers = repos.providers;
  }

  cookieOptions(maxAgeSeconds = this.cfg.sessionMaxSeconds) {
    return { path: '/', httpOnly: true, secure: this.cfg.cookieSecure, sameSite: 'lax' as const, maxAge: maxAgeSeconds };
  }

  async start(user: UserRow, o: { stage: SessionStage; method: SessionRow['method']; ip?: string; userAgent?: string }): Promise<{ token: string; session: SessionRow }> {
    const token = randomToken('efs_');
    const session = await this.users.insertSession({
      tokenHash: sha256(token), userId: user.id, stage: o.stage, method: o.method, csrfToken: randomToken('', 24),
      expiresAt: new Date(this.clock().getTime() + this.cfg.sessionMaxSeconds * 1000), ip: o.ip, userAgent: o.userAgent,
    });
    return { token, session };
  }

  /** The live session of a cookie value, with the tenant and role it acts with; undefined when not (or no longer) valid. */
  async resolve(token: string | undefined): Promise<LiveSession | undefined> {
    if (!token || !token.startsWith('efs_') || token.length > 100) return undefined;
    const live = await this.users.liveSession(sha256(token), this.cfg.sessionIdleSeconds);
    if (!live) return undefined;
    if (this.clock().getTime() - live.session.last_seen_at.getTime() > 30_000) await this.users.touchSession(live.session.id);
    let tenantId = live.user.tenant_id;
    let role: UserRole = live.user.role;
    if (live.user.role === 'provider-admin' && live.session.acting_tenant_id) {
      // a grant can be revoked or run out at any moment: checked on every request
      const grant = await this.activeGrant(live.session.acting_tenant_id);
      if (grant) {
        tenantId = live.session.acting_tenant_id;
        role = grant.role;
      }
    }
    return { ...live, tenantId, role };
  }

  activeGrant(tenantId: string): Promise<{ id: string; role: Role; expires_at: Date } | undefined> {
    return this.providers.activeGrantOf(tenantId);
  }

  /** Moves the session to another stage (or acting tenant) under a fresh token. */
  async advance(session: SessionRow, set: { stage?: SessionStage; actingTenantId?: string | null }): Promise<string> {
    const token = randomToken('efs_');
    await this.users.updateSession(session.id, {
      token_hash: sha256(token), csrf_token: randomToken('', 24),
      ...(set.stage && { stage: set.stage }), ...(set.actingTenantId !== undefined && { acting_tenant_id: set.actingTenantId }),
    });
    return token;
  }

  async end(sessionId: string): Promise<void> {
    await this.users.updateSession(sessionId, { revoked_at: this.clock() });
  }

  endAll(userId: string): Promise<number> {
    return this.users.revokeAllSessions(userId);
  }
}
