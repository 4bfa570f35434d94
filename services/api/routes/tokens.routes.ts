import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { tokenOwner, tokenScope, type TokenService } from '../../auth/token.service.js';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';

export async function tokenRoutes(base: FastifyInstance, opts: { tokens: TokenService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/tokens', {
    // signed-in users create their own tokens (role capped by theirs, checked below); otherwise admin only, before the body
    preValidation: async (req) => (req.principal?.userId ? undefined : requireRole('admin')(req)),
    schema: {
      tags: ['tokens'], summary: 'Create an API token with a role (a signed-in user\'s own: at most their role); the token is shown once and stored only as a hash',
      body: Type.Object({
        name: Type.String({ minLength: 2, maxLength: 100, description: 'the person or system acting with it (used for four-eyes checks)' }),
        role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('reviewer'), Type.Literal('auditor')]),
        expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
      }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    const created = await opts.tokens.create(req.principal!.tenantId, req.body, req.principal!.name, tokenOwner(req.principal!, req.body.role));
    // name, role and expiry only: the token value never goes into the ledger
    await opts.audit.record({
      ...auditFrom(req), action: 'token.created', subject: { type: 'token', id: created.id },
      details: { name: created.name, role: created.role, expiresAt: created.expiresAt },
    });
    return reply.status(201).send(created);
  });

  app.get('/tokens', { schema: { tags: ['tokens'], summary: 'Tokens (never their values): admins see all of the tenant, users their own' } }, async (req) => ({
    items: (await opts.tokens.list(req.principal!.tenantId, tokenScope(req.principal!).userId)).map((t) => ({
      id: t.id, name: t.name, role: t.role, userId: t.user_id, createdBy: t.created_by, createdAt: t.created_at.toISOString(),
      expiresAt: t.expires_at?.toISOString() ?? null, revokedAt: t.revoked_at?.toISOString() ?? null, lastUsedAt: t.last_used_at?.toISOString() ?? null,
    })),
  }));

  app.post('/tokens/:id/revoke', {
    preValidation: async (req) => void tokenScope(req.principal!),
    schema: { tags: ['tokens'], summary: 'Revoke a token at once (admins: any of the tenant; users: their own)', params: Type.Object({ id: Type.String({ format: 'uuid' }) }) },
  }, async (req, reply) => {
    await opts.tokens.revoke(req.principal!.tenantId, req.params.id, tokenScope(req.principal!).userId);
    await opts.audit.record({ ...auditFrom(req), action: 'token.revoked', subject: { type: 'token', id: req.params.id } });
    return reply.status(204).send();
  });
}
