import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { BaselineService } from '../../runs/baseline.service.js';
import type { PlanService } from '../../plans/plan.service.js';
import { PlanIdParams } from '../schemas.js';
import { requireRole } from '../plugins/auth.js';
import { auditFrom } from '../audit-hook.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const BaselineSchema = Type.Object({
  planId: Type.String(),
  runId: Type.String({ description: 'the run whose database profile the built-in drift checks compare with' }),
  source: Type.String({ description: 'passed: the last passed run; accepted: a newer run a person accepted as the new baseline' }),
  at: Type.String({ description: 'when the run passed, or when it was accepted' }),
  acceptedBy: nullable(Type.String()),
  reason: nullable(Type.String()),
});

const AcceptBody = Type.Object({
  runId: Type.String({ format: 'uuid' }),
  reason: Type.String({ minLength: 5, maxLength: 500, description: 'why the change is intended, e.g. "Tabelle archiv 2019 planmäßig gelöscht, geprüft von …"' }),
}, { additionalProperties: false });

/** The baseline of the built-in drift checks (schema, volume) and accepting an intended change. */
export async function baselineRoutes(base: FastifyInstance, opts: { baselines: BaselineService; plans: PlanService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/plans/:id/baseline', {
    schema: {
      tags: ['plans'], operationId: 'getPlanBaseline', summary: 'The baseline the built-in drift checks compare with (null before the first passed run)',
      params: PlanIdParams, response: { 200: Type.Object({ baseline: Type.Union([BaselineSchema, Type.Null()]) }), 404: errorRef },
    },
  }, async (req) => {
    await opts.plans.get(req.principal!.tenantId, req.params.id);
    return { baseline: await opts.baselines.current(req.principal!.tenantId, req.params.id) };
  });

  app.post('/plans/:id/baseline', {
    // another tenant's plan is 404 before the body is looked at
    preValidation: [requireRole('reviewer'), async (req) => {
      await opts.plans.get(req.principal!.tenantId, (req.params as { id: string }).id);
    }],
    schema: {
      tags: ['plans'], operationId: 'acceptPlanBaseline',
      summary: 'Accept a finished run\'s database profile as the new baseline (an intended change, e.g. a dropped table); recorded in the ledger with who and why',
      params: PlanIdParams, body: AcceptBody, response: { 201: BaselineSchema, 400: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const a = auditFrom(req);
    const view = await opts.baselines.accept(req.principal!.tenantId, req.params.id, req.body.runId, req.body.reason, {
      actor: a.actor, name: req.principal!.name, ...(a.ip && { ip: a.ip }),
    });
    req.log.info({ planId: req.params.id, runId: req.body.runId, by: req.principal!.name }, 'baseline of the built-in checks accepted');
    return reply.code(201).send(view);
  });
}
