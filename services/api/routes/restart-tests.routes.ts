import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { requireRole } from '../plugins/auth.js';
import { auditFrom } from '../audit-hook.js';
import type { AuditService } from '../../audit/audit.service.js';
import type { RestartTestService } from '../../systems/restart-test.service.js';

const errorRef = { $ref: 'Error#' };
const ProcessParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200, description: 'the process\'s name as its systems give it (URL-encoded), e.g. Meldewesen' }) });
const IdParams = Type.Object({ id: Type.String({ description: 'the restart test\'s id' }) });
const ProcessBody = Type.Object({
  rto: Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Null()], { description: 'the process\'s RTO: how long until it works again after a total loss (90m, 4h, PT8H); null clears it' }),
}, { additionalProperties: false });

const ProcessOut = Type.Object({ name: Type.String(), rtoSeconds: Type.Union([Type.Integer(), Type.Null()]), updatedAt: Type.String(), updatedBy: Type.String() });
// tiers, runs, findings and result as RestartTestJson (services/systems/restart-test.service.ts) describes them
const RestartTestOut = Type.Object({
  id: Type.String(), process: Type.String(), status: Type.String(), verdict: Type.Union([Type.String(), Type.Null()]),
  rtoSeconds: Type.Union([Type.Integer(), Type.Null()]), currentTier: Type.Union([Type.Integer(), Type.Null()]),
  tiers: Type.Array(Type.Unknown()), notTested: Type.Array(Type.Unknown()), findings: Type.Array(Type.Unknown()), result: Type.Unknown(),
  triggeredBy: Type.String(), startedAt: Type.String(), finishedAt: Type.Union([Type.String(), Type.Null()]), cancelRequestedAt: Type.Union([Type.String(), Type.Null()]),
});

/** Processes' RTOs and restart tests (issue #15 item 2; docs/systems.md#restart-tests). */
export async function restartTestRoutes(base: FastifyInstance, opts: { restartTests: RestartTestService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/processes', {
    schema: { tags: ['systems'], summary: 'The business processes the systems name, each with its RTO, its systems by tier and its newest restart test' },
  }, async (req) => ({ items: await opts.restartTests.processes(req.principal!.tenantId) }));

  app.put('/processes/:name', {
    preValidation: requireRole('operator'),
    schema: { tags: ['systems'], summary: 'Set or clear a process\'s RTO (operator, admin)', params: ProcessParams, body: ProcessBody, response: { 200: ProcessOut, 201: ProcessOut, 400: errorRef, 403: errorRef } },
  }, async (req, reply) => {
    const a = auditFrom(req);
    const { process, created } = await opts.restartTests.putProcess(req.principal!.tenantId, req.params.name, req.body, a.actor.name);
    await opts.audit.record({ ...a, action: 'process.changed', subject: { type: 'process', id: process.name }, details: { rtoSeconds: process.rto_seconds } });
    return reply.status(created ? 201 : 200).send({ name: process.name, rtoSeconds: process.rto_seconds, updatedAt: process.updated_at.toISOString(), updatedBy: process.updated_by });
  });

  app.post('/processes/:name/restart-tests', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['systems'], summary: 'Start a restart test of the process: its systems\' plans with services restored tier by tier (operator, admin)',
      params: ProcessParams, response: { 202: RestartTestOut, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const a = auditFrom(req);
    const t = await opts.restartTests.start(req.principal!.tenantId, req.params.name, a.actor.name);
    await opts.audit.record({ ...a, action: 'restart-test.started', subject: { type: 'restart-test', id: t.id }, details: { process: t.process } });
    return reply.status(202).header('location', `/api/v1/restart-tests/${t.id}`).send(t);
  });

  app.get('/restart-tests', {
    schema: {
      tags: ['systems'], summary: 'Restart tests, newest first',
      querystring: Type.Object({ process: Type.Optional(Type.String({ maxLength: 200 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })) }, { additionalProperties: false }),
    },
  }, async (req) => ({ items: await opts.restartTests.list(req.principal!.tenantId, req.query) }));

  app.get('/restart-tests/:id', {
    schema: { tags: ['systems'], summary: 'One restart test: tiers with their runs and times, systems not tested, findings, verdict', params: IdParams, response: { 200: RestartTestOut, 404: errorRef } },
  }, async (req) => opts.restartTests.get(req.principal!.tenantId, req.params.id));

  app.post('/restart-tests/:id/cancel', {
    preValidation: requireRole('operator'),
    schema: { tags: ['systems'], summary: 'Cancel a running restart test: its current tier\'s runs are cancelled, no further tier starts', params: IdParams, response: { 202: RestartTestOut, 403: errorRef, 404: errorRef, 409: errorRef } },
  }, async (req, reply) => {
    const a = auditFrom(req);
    const t = await opts.restartTests.cancel(req.principal!.tenantId, req.params.id);
    await opts.audit.record({ ...a, action: 'restart-test.cancelled', subject: { type: 'restart-test', id: t.id }, details: { process: t.process } });
    return reply.status(202).send(t);
  });
}
