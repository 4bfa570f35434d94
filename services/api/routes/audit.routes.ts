import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuditService } from '../../audit/audit.service.js';
import { requireRole } from '../plugins/auth.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const AuditEntrySchema = Type.Object({
  seq: Type.Integer({ description: 'sequence number of the record in the tenant ledger' }),
  at: Type.String({ format: 'date-time' }),
  action: Type.String({ description: 'e.g. plan.changed, run.triggered, export.audit-report, token.created' }),
  actor: nullable(Type.Object({
    name: Type.String(),
    kind: Type.Optional(Type.String({ description: 'session | token | bootstrap | anonymous | system' })),
    userId: Type.Optional(Type.String()),
    viaProviderGrant: Type.Optional(Type.Boolean()),
  })),
  subject: nullable(Type.Object({ type: Type.String(), id: Type.String() })),
  details: Type.Object({}, { additionalProperties: true }),
  ip: nullable(Type.String()),
  recordHash: Type.String({ description: 'hash of the signed ledger record (GET /api/v1/evidence/bundle carries it with its signature)' }),
});

export async function auditRoutes(base: FastifyInstance, opts: { audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/audit', {
    preValidation: requireRole('auditor'),
    schema: {
      tags: ['evidence'],
      summary: "The tenant's audit trail (who did what), newest first, from the signed ledger; cursor pagination",
      querystring: Type.Object({
        action: Type.Optional(Type.String({ maxLength: 64, description: 'only this action' })),
        from: Type.Optional(Type.String({ maxLength: 40, description: 'YYYY-MM-DD or ISO 8601 date-time' })),
        to: Type.Optional(Type.String({ maxLength: 40, description: 'YYYY-MM-DD (inclusive) or ISO 8601 date-time (exclusive)' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        cursor: Type.Optional(Type.String({ maxLength: 40 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(AuditEntrySchema), nextCursor: nullable(Type.String()) }), 400: errorRef, 403: errorRef },
    },
  }, async (req) => opts.audit.list(req.principal!.tenantId, req.query));
}
