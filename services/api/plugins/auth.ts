import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DEFAULT_TENANT_ID } from '../../../db/schema.js';
import { Unauthorized } from '../../errors.js';

export interface Principal {
  tenantId: string;
  name: string;
  kind: 'bootstrap';
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

/**
 * Bearer tokens. For now only ERNSTFALL_BOOTSTRAP_TOKEN (users, roles and
 * per-user tokens come with the users issue); it acts on the default tenant.
 */
export default fp(async function auth(app: FastifyInstance, opts: { bootstrapToken?: string }) {
  const expected = opts.bootstrapToken ? digest(opts.bootstrapToken) : undefined;
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (req.routeOptions.config?.public) return;
    if (!req.url.startsWith('/api/')) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !expected || !timingSafeEqual(digest(m[1]!), expected)) throw new Unauthorized();
    req.principal = { tenantId: DEFAULT_TENANT_ID, name: 'bootstrap-token', kind: 'bootstrap' };
  });
}, { name: 'auth' });
