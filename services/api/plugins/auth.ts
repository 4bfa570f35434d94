import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DEFAULT_TENANT_ID, type Role } from '../../../db/schema.js';
import { Forbidden, Unauthorized } from '../../errors.js';
import { hashToken, type TokenService } from '../../auth/token.service.js';

export interface Principal {
  tenantId: string;
  /** The acting person or system, as named on the token. */
  name: string;
  role: Role;
  kind: 'bootstrap' | 'token';
  tokenId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Routes that need no token (health, docs). */
    public?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** preValidation hook (before body validation, so a wrong role is 403, not 400): the principal must have one of these roles (admin always may). */
export function requireRole(...roles: Role[]) {
  return async (req: FastifyRequest) => {
    const p = req.principal;
    if (!p) throw new Unauthorized();
    if (p.role !== 'admin' && !roles.includes(p.role)) throw new Forbidden(`this needs the role ${roles.join(' or ')}; the token has ${p.role}`);
  };
}

/**
 * Bearer tokens: ERNSTFALL_BOOTSTRAP_TOKEN (admin of the default tenant, for
 * first set-up) or a named API token from the database.
 */
export default fp(async function auth(app: FastifyInstance, opts: { bootstrapToken?: string; tokens?: TokenService }) {
  const expected = opts.bootstrapToken ? digest(opts.bootstrapToken) : undefined;
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    // deny by default: only routes marked public go without a token (never decide by the raw URL, it may be percent-encoded)
    if (req.routeOptions.config?.public) return;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new Unauthorized();
    const presented = m[1]!;
    if (expected && timingSafeEqual(digest(presented), expected)) {
      req.principal = { tenantId: DEFAULT_TENANT_ID, name: 'bootstrap-token', role: 'admin', kind: 'bootstrap' };
      return;
    }
    const row = presented.startsWith('ef_') && opts.tokens ? await opts.tokens.repo.byHash(hashToken(presented)) : undefined;
    if (!row) throw new Unauthorized();
    req.principal = { tenantId: row.tenant_id, name: row.name, role: row.role, kind: 'token', tokenId: row.id };
    void opts.tokens!.repo.touch(row.id).catch(() => undefined);
  });
}, { name: 'auth' });
