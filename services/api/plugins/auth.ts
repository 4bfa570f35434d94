import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DEFAULT_TENANT_ID, type UserRole } from '../../../db/schema.js';
import { Forbidden, Unauthorized } from '../../errors.js';
import type { TokenService } from '../../auth/token.service.js';
import { SESSION_COOKIE, type LiveSession, type SessionService } from '../../auth/session.service.js';
import { safeEqual } from '../../auth/crypto.js';
import { INGEST_PREFIX, type IngestTokenService } from '../../external/external.service.js';
import type { Principal } from '../../auth/principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Routes that need no authentication (health, docs, login pages, calendar feeds). */
    public?: boolean;
    /** Routes a provider admin may use outside any tenant (tenants, grants, their own account). */
    provider?: boolean;
    /** Routes open to a session that has passed the password but not yet the second factor (the second-factor steps). */
    partialSession?: boolean;
    /** Browser page: a missing login redirects to /login instead of answering 401. */
    page?: boolean;
    /** The one route a plan's ingest token (`efi_…`) opens: reporting that plan's results. */
    ingest?: boolean;
    /** A page form that takes a file (multipart): the only routes where an uploaded file is read at all. */
    upload?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** preValidation hook (before body validation, so a wrong role is 403, not 400): the principal must have one of these roles (admin always may, inside its tenant). */
export function requireRole(...roles: UserRole[]) {
  return async (req: FastifyRequest) => {
    const p = req.principal;
    if (!p) throw new Unauthorized();
    const allowed: readonly UserRole[] = roles;
    const adminOk = p.role === 'admin' && allowed.some((r) => r !== 'provider-admin');
    if (!adminOk && !allowed.includes(p.role)) throw new Forbidden(`this needs the role ${roles.join(' or ')}; you have ${p.role}`);
  };
}

/** The cookie session of a request (also for public pages that show "signed in as"). */
export async function sessionOf(req: FastifyRequest, sessions: SessionService | undefined): Promise<LiveSession | undefined> {
  const token = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[SESSION_COOKIE];
  return sessions?.resolve(token);
}

/**
 * Who is asking. A bearer token (API clients: ERNSTFALL_BOOTSTRAP_TOKEN, an
 * `ef_` token of a user or a named service token), or else the session
 * cookie (browsers). Deny by default: only routes marked public go without.
 * A cookie session that changes something must also send its CSRF token
 * (header `x-csrf-token` or form field `_csrf`); bearer tokens are not sent
 * by browsers on their own and need none.
 */
export default fp(async function auth(app: FastifyInstance, opts: { bootstrapToken?: string; tokens?: TokenService; sessions?: SessionService; ingestTokens?: IngestTokenService }) {
  const expected = opts.bootstrapToken ? digest(opts.bootstrapToken) : undefined;
  app.decorateRequest('principal', undefined);

  const deny = (req: FastifyRequest, reply: FastifyReply) => {
    if (req.routeOptions.config?.page && req.method === 'GET') {
      return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    }
    throw new Unauthorized();
  };

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    // never decide by the raw URL, it may be percent-encoded: only the matched route's config counts
    const cfg = req.routeOptions.config ?? {};
    if (cfg.public) return;
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      if (!m) throw new Unauthorized();
      const presented = m[1]!;
      if (expected && timingSafeEqual(digest(presented), expected)) {
        req.principal = { tenantId: DEFAULT_TENANT_ID, name: 'bootstrap-token', role: 'admin', kind: 'bootstrap' };
        return;
      }
      if (presented.startsWith(INGEST_PREFIX)) {
        // an ingest token reports one plan's results and opens nothing else, not even a read
        const ingest = cfg.ingest && opts.ingestTokens ? await opts.ingestTokens.resolve(presented) : undefined;
        if (!ingest) throw new Unauthorized();
        req.principal = { tenantId: ingest.tenantId, name: `ingest:${ingest.name}`, role: 'auditor', kind: 'ingest', tokenId: ingest.id, ingestPlanId: ingest.planId };
        return;
      }
      const row = presented.startsWith('ef_') && opts.tokens ? await opts.tokens.resolve(presented) : undefined;
      if (!row) throw new Unauthorized();
      req.principal = { tenantId: row.tenant_id, name: row.user_email ?? row.name, role: row.role, kind: 'token', tokenId: row.id, ...(row.user_id && { userId: row.user_id }) };
      void opts.tokens!.touch(row.id).catch(() => undefined);
      return;
    }
    const live = await sessionOf(req, opts.sessions);
    if (!live) return deny(req, reply);
    if (live.session.stage !== 'full' && !cfg.partialSession) {
      if (cfg.page && req.method === 'GET') return reply.redirect(live.session.stage === 'enrol' ? '/login/enrol' : '/login/code', 303);
      throw new Unauthorized('the second factor is still missing');
    }
    req.principal = { tenantId: live.tenantId ?? '', name: live.user.email, role: live.role, kind: 'session', userId: live.user.id, session: live };
    if (!live.tenantId && !cfg.provider && !cfg.partialSession) {
      throw new Forbidden('provider admins see a tenant\'s data only when the tenant grants access; choose a tenant first');
    }
  });

  // after the body is parsed (a form's _csrf field), before validation and role checks
  app.addHook('preValidation', async (req: FastifyRequest) => {
    const live = req.principal?.session;
    if (!live || !UNSAFE.has(req.method)) return;
    const header = req.headers['x-csrf-token'];
    const field = (req.body as { _csrf?: unknown } | undefined)?._csrf;
    const sent = typeof header === 'string' ? header : typeof field === 'string' ? field : '';
    if (!safeEqual(sent, live.session.csrf_token)) throw new Forbidden('missing or wrong CSRF token; reload the page and try again');
  });
}, { name: 'auth' });
