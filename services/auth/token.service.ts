import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Role, UserRole } from '../../db/schema.js';
import type { TokenRepository } from '../../db/repositories/token.repository.js';
import type { Clock } from '../clock.js';
import { Forbidden, Invalid, NotFound } from '../errors.js';
import type { Principal } from './principal.js';

export const ROLES: Role[] = ['admin', 'operator', 'reviewer', 'auditor'];
export const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

/** A user's token may carry the user's own role; an admin's any tenant role (admin > operator, reviewer, auditor; those three are peers). */
export function tokenRoleAllowed(userRole: UserRole, tokenRole: Role): boolean {
  return userRole === 'admin' || userRole === tokenRole;
}

/**
 * Whose token a request creates: a signed-in user's own (its role at most the
 * user's: admins any tenant role, everyone else only their own role), or for
 * the bootstrap token and tokens without a user, an unowned one (admin only).
 */
export function tokenOwner(p: Principal, role: Role): string | undefined {
  if (!p.userId) {
    if (p.role !== 'admin') throw new Forbidden(`this needs the role admin; you have ${p.role}`);
    return undefined;
  }
  // a token would outlive the grant it was made under
  if (p.session?.user.role === 'provider-admin') throw new Forbidden('provider admins cannot create API tokens inside a tenant');
  if (!tokenRoleAllowed(p.role, role)) throw new Forbidden(`your role ${p.role} may create tokens with the role ${p.role} only`);
  return p.userId;
}

/** Which tokens a request sees and may revoke: all of the tenant (admins, unowned admin tokens), or a user's own. */
export function tokenScope(p: Principal): { userId?: string } {
  if (p.role === 'admin') return {};
  if (!p.userId) throw new Forbidden(`this needs the role admin; you have ${p.role}`);
  return { userId: p.userId };
}

/**
 * Named API tokens with a role, stored only as SHA-256 and shown once. The
 * token name is the acting person or system: reviews compare it with who
 * triggered a run (four-eyes). Users with passwords and 2FA come later.
 */
export class TokenService {
  constructor(private readonly repo: TokenRepository, private readonly clock: Clock) {}

  /** The live token (not revoked, not expired, its user not disabled) a bearer value names, or undefined. */
  resolve(presented: string) {
    return this.repo.byHash(hashToken(presented));
  }

  /** Records that the token was used (last_used_at). */
  touch(id: string): Promise<void> {
    return this.repo.touch(id);
  }

  /** The tenant's tokens (never their values); with userId only that user's. */
  list(tenantId: string, userId?: string) {
    return this.repo.list(tenantId, userId);
  }

  /**
   * A signed-in user's personal token: like create, but tied to the user with
   * the user's own role, so it acts as them and dies with their account.
   * `expiresAt` is the start of a day (UTC), or null.
   */
  async createPersonal(tenantId: string, user: { id: string; email: string; role: Role }, name: string, expiresAt: Date | null): Promise<{ id: string; token: string }> {
    const token = `ef_${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    await this.repo.insert({ id, tenantId, name, role: user.role, tokenHash: hashToken(token), createdBy: user.email, expiresAt, userId: user.id });
    return { id, token };
  }

  /** With userId the token belongs to that user (who answers for it; it stops working when the user is disabled). */
  async create(tenantId: string, input: { name: string; role: Role; expiresAt?: string }, createdBy: string, userId?: string) {
    const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
    if (expiresAt && (Number.isNaN(expiresAt.getTime()) || expiresAt <= this.clock())) {
      throw new Invalid('invalid token', [{ path: 'expiresAt', message: 'must be a date-time in the future' }]);
    }
    const token = `ef_${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    await this.repo.insert({ id, tenantId, name: input.name, role: input.role, tokenHash: hashToken(token), createdBy, expiresAt, userId });
    return { id, name: input.name, role: input.role, expiresAt: expiresAt?.toISOString() ?? null, token };
  }

  async revoke(tenantId: string, id: string, userId?: string): Promise<void> {
    if (!(await this.repo.revoke(tenantId, id, userId))) throw new NotFound(`token ${id}`);
  }
}
