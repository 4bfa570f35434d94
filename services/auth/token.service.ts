import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB, Role } from '../../db/schema.js';
import { TokenRepository } from '../../db/repositories/token.repository.js';
import { Invalid, NotFound } from '../errors.js';

export const ROLES: Role[] = ['admin', 'operator', 'reviewer', 'auditor'];
export const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

/**
 * Named API tokens with a role, stored only as SHA-256 and shown once. The
 * token name is the acting person or system: reviews compare it with who
 * triggered a run (four-eyes). Users with passwords and 2FA come later.
 */
export class TokenService {
  readonly repo: TokenRepository;
  constructor(db: Kysely<DB>) {
    this.repo = new TokenRepository(db);
  }

  async create(tenantId: string, input: { name: string; role: Role; expiresAt?: string }, createdBy: string) {
    const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
    if (expiresAt && (Number.isNaN(expiresAt.getTime()) || expiresAt <= new Date())) {
      throw new Invalid('invalid token', [{ path: 'expiresAt', message: 'must be a date-time in the future' }]);
    }
    const token = `ef_${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    await this.repo.insert({ id, tenantId, name: input.name, role: input.role, tokenHash: hashToken(token), createdBy, expiresAt });
    return { id, name: input.name, role: input.role, expiresAt: expiresAt?.toISOString() ?? null, token };
  }

  async revoke(tenantId: string, id: string): Promise<void> {
    if (!(await this.repo.revoke(tenantId, id))) throw new NotFound(`token ${id}`);
  }
}
