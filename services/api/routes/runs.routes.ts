import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RunService } from '../../runs/run.service.js';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';
import { toRunJson } from '../../runs/run.view.js';
import { ListRunsQuery, RunIdParams, RunList } from '../schemas.js';

const errorRef = { $ref: 'Error#' };

export async function runRoutes(base: FastifyInstance, opts: { runs: RunService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/runs', {
    schema: { tags: ['runs'], summary: 'Runs, newest first, with filters and cursor pagination', querystring: ListRunsQuery, response: { 200: RunList, 400: errorRef } },
  }, async (req) => {
    const page = await opts.runs.list(req.principal!.tenantId, req.query);
    return { items: page.items.map(toRunJson), nextCursor: page.nextCursor };
  });

  app.get('/runs/:id', {
    schema: { tags: ['runs'], summary: 'One run: phases, RTO/RPO, checks, backup, findings, verdict', params: RunIdParams, response: { 200: { $ref: 'Run#' }, 404: errorRef } },
  }, async (req) => toRunJson(await opts.runs.get(req.principal!.tenantId, req.params.id)));

  app.post('/runs/:id/cancel', {
    preValidation: requireRole('operator'),
    schema: { tags: ['runs'], summary: 'Cancel a queued or running run', params: RunIdParams, response: { 202: { $ref: 'Run#' }, 404: errorRef, 409: errorRef } },
  }, async (req, reply) => {
    const run = await opts.runs.cancel(req.principal!.tenantId, req.params.id);
    await opts.audit.record({ ...auditFrom(req), action: 'run.cancelled', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id } });
    return reply.status(202).send(toRunJson(run));
  });

}
