import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { toPlanView, type PlanService } from '../../plans/plan.service.js';
import type { PlanOverview, PlanOverviewService } from '../../plans/plan-overview.service.js';
import type { RunService } from '../../runs/run.service.js';
import { PlanIdParams } from '../schemas.js';
import { requireRole } from '../plugins/auth.js';
import { pausedView } from '../../scheduling/schedule.service.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';

const errorRef = { $ref: 'Error#' };

/** A plan as the API shows it (schema `Plan`). */
function planJson(o: PlanOverview) {
  return {
    ...toPlanView(o.row),
    status: o.status,
    nextDueAt: o.nextDueAt?.toISOString() ?? null,
    nextScheduledAt: o.nextScheduledAt?.toISOString() ?? null,
    paused: pausedView(o.schedule),
    // watching the watcher: a schedule nobody ticks looks exactly like one that is fine
    scheduler: o.scheduler ? { lastTickAt: o.scheduler.lastTickAt?.toISOString() ?? null, healthy: o.scheduler.healthy } : null,
    lastRun: o.lastRun ? { id: o.lastRun.id, verdict: o.lastRun.verdict, finishedAt: o.lastRun.finishedAt?.toISOString() ?? null } : null,
    alert: o.alert
      ? { id: o.alert.id, kind: o.alert.kind, since: o.alert.since.toISOString(), escalationLevel: o.alert.escalation_level, acknowledged: o.alert.acknowledged_at !== null, snoozedUntil: o.alert.snoozed_until?.toISOString() ?? null }
      : null,
  };
}

export async function planRoutes(base: FastifyInstance, opts: { plans: PlanService; overview: PlanOverviewService; runs: RunService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  // plans arrive as text so that YAML and JSON errors can name their line
  app.removeContentTypeParser('application/json'); // only inside this plugin: plan bodies stay text
  for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  app.get('/plans', {
    schema: { tags: ['plans'], summary: 'List restore plans with status (one set-based query for all plans)', response: { 200: Type.Object({ items: Type.Array(Type.Ref('Plan')) }), 401: errorRef } },
  }, async (req) => ({ items: (await opts.overview.list(req.principal!.tenantId)).map(planJson) }));

  app.get('/plans/:id', {
    schema: { tags: ['plans'], summary: 'One restore plan with status and next due date', params: PlanIdParams, response: { 200: Type.Ref('Plan'), 404: errorRef } },
  }, async (req) => planJson(await opts.overview.get(req.principal!.tenantId, req.params.id)));

  app.put('/plans/:id', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['plans'],
      summary: 'Create or change a plan (JSON or application/yaml); plans from files are read-only (409)',
      params: PlanIdParams,
      body: { description: 'the plan as YAML text or JSON (see restore-plans/README.md)' },
      response: { 200: Type.Ref('Plan'), 201: Type.Ref('Plan'), 400: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    const text = typeof req.body === 'string' ? req.body : JSON.stringify(req.body ?? '');
    const { actor, ip } = auditFrom(req);
    const res = await opts.plans.put(req.principal!.tenantId, req.params.id, text, ct.includes('json') ? 'json' : 'yaml', { actor, ip });
    req.log.info({ planId: req.params.id, version: res.row.version_hash, changed: res.changed }, 'plan stored');
    return reply.status(res.created ? 201 : 200).send(planJson(await opts.overview.of(req.principal!.tenantId, res.row)));
  });

  app.post('/plans/:id/runs', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['runs'], summary: 'Start a restore test now (202, Location of the run)', params: PlanIdParams,
      response: { 202: Type.Object({ id: Type.String(), status: Type.String() }), 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const run = await opts.runs.trigger(req.principal!.tenantId, req.params.id, { trigger: 'api', triggeredBy: req.principal!.name });
    // a manual start is an act of a person; scheduled runs are not audited (their run record is the evidence)
    await opts.audit.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id } });
    return reply.status(202).header('location', `/api/v1/runs/${run.id}`).send({ id: run.id, status: run.status });
  });
}
