import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { toPlanView, type PlanService } from '../../plans/plan.service.js';
import type { RunService } from '../../runs/run.service.js';
import { planStatus } from '../../runs/plan-status.js';
import type { PlanRow } from '../../../db/schema.js';
import type { RestorePlan } from '../../plans/plan.types.js';
import { PlanIdParams } from '../schemas.js';
import { requireRole } from '../plugins/auth.js';
import { pausedView, type ScheduleService } from '../../scheduling/schedule.service.js';
import { nextScheduledAt } from '../../scheduling/slots.js';

const errorRef = { $ref: 'Error#' };

export async function planRoutes(base: FastifyInstance, opts: { plans: PlanService; runs: RunService; schedules: ScheduleService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  // plans arrive as text so that YAML and JSON errors can name their line
  app.removeContentTypeParser('application/json'); // only inside this plugin: plan bodies stay text
  for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  async function view(tenantId: string, row: PlanRow) {
    const [decisive, passed, last] = await Promise.all([
      opts.runs.runs.lastDecisive(tenantId, row.id), opts.runs.runs.lastPassed(tenantId, row.id), opts.runs.runs.lastFinished(tenantId, row.id),
    ]);
    const status = planStatus(row.definition as RestorePlan, row.created_at, [decisive, passed].filter((r) => r !== undefined), new Date());
    const sched = await opts.schedules.repo.get(tenantId, row.id);
    const def = row.definition as RestorePlan;
    // watching the watcher: a schedule nobody ticks looks exactly like one that is fine
    const tick = def.cadence.schedule ? await opts.schedules.repo.lastLeaderTick() : undefined;
    return {
      ...toPlanView(row),
      status: status.status,
      nextDueAt: status.nextDueAt?.toISOString() ?? null,
      nextScheduledAt: sched?.paused_at ? null : nextScheduledAt(row.definition as RestorePlan, sched?.last_slot ?? null, new Date())?.toISOString() ?? null,
      paused: pausedView(sched),
      scheduler: tick === undefined ? null : { lastTickAt: tick?.at.toISOString() ?? null, healthy: tick !== null && tick.ageSeconds < 180 },
      lastRun: last ? { id: last.id, verdict: last.verdict, finishedAt: last.finished_at?.toISOString() ?? null } : null,
    };
  }

  app.get('/plans', {
    schema: { tags: ['plans'], summary: 'List restore plans', response: { 200: Type.Object({ items: Type.Array(Type.Ref('Plan')) }), 401: errorRef } },
  }, async (req) => {
    const rows = await opts.plans.list(req.principal!.tenantId);
    return { items: await Promise.all(rows.map((r) => view(req.principal!.tenantId, r))) };
  });

  app.get('/plans/:id', {
    schema: { tags: ['plans'], summary: 'One restore plan with status and next due date', params: PlanIdParams, response: { 200: Type.Ref('Plan'), 404: errorRef } },
  }, async (req) => view(req.principal!.tenantId, await opts.plans.get(req.principal!.tenantId, req.params.id)));

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
    const res = await opts.plans.put(req.principal!.tenantId, req.params.id, text, ct.includes('json') ? 'json' : 'yaml');
    req.log.info({ planId: req.params.id, version: res.row.version_hash, changed: res.changed }, 'plan stored');
    return reply.status(res.created ? 201 : 200).send(await view(req.principal!.tenantId, res.row));
  });

  app.post('/plans/:id/runs', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['runs'], summary: 'Start a restore test now (202, Location of the run)', params: PlanIdParams,
      response: { 202: Type.Object({ id: Type.String(), status: Type.String() }), 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const run = await opts.runs.trigger(req.principal!.tenantId, req.params.id, { trigger: 'api', triggeredBy: req.principal!.name });
    return reply.status(202).header('location', `/api/v1/runs/${run.id}`).send({ id: run.id, status: run.status });
  });
}
