import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TokenService } from '../../auth/token.service.js';
import { requireRole } from '../plugins/auth.js';

export async function tokenRoutes(base: FastifyInstance, opts: { tokens: TokenService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/tokens', {
    preValidation: requireRole('admin'),
    schema: {
      tags: ['tokens'], summary: 'Create a named API token with a role; the token is shown once and stored only as a hash',
      body: Type.Object({
        name: Type.String({ minLength: 2, maxLength: 100, description: 'the person or system acting with it (used for four-eyes checks)' }),
        role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('reviewer'), Type.Literal('auditor')]),
        expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
      }, { additionalProperties: false }),
    },
  }, async (req, reply) => reply.status(201).send(await opts.tokens.create(req.principal!.tenantId, req.body, req.principal!.name)));

  app.get('/tokens', { preValidation: requireRole('admin'), schema: { tags: ['tokens'], summary: 'Tokens (never their values)' } }, async (req) => ({
    items: (await opts.tokens.repo.list(req.principal!.tenantId)).map((t) => ({
      id: t.id, name: t.name, role: t.role, createdBy: t.created_by, createdAt: t.created_at.toISOString(),
      expiresAt: t.expires_at?.toISOString() ?? null, revokedAt: t.revoked_at?.toISOString() ?? null, lastUsedAt: t.last_used_at?.toISOString() ?? null,
    })),
  }));

  app.post('/tokens/:id/revoke', {
    preValidation: requireRole('admin'),
    schema: { tags: ['tokens'], summary: 'Revoke a token at once', params: Type.Object({ id: Type.String({ format: 'uuid' }) }) },
  }, async (req, reply) => {
    await opts.tokens.revoke(req.principal!.tenantId, req.params.id);
    return reply.status(204).send();
  });
}
