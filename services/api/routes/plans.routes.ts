import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { toPlanView, type PlanService } from '../../plans/plan.service.js';
import type { RunService } from '../../runs/run.service.js';
import { planStatus } from '../../runs/plan-status.js';
import type { Kysely } from 'kysely';
import type { DB, PlanRow, PlanScheduleRow } from '../../../db/schema.js';
import { PlanStatusRepository } from '../../../db/repositories/plan-status.repository.js';
import { NotificationRepository, type AlertRow } from '../../../db/repositories/notification.repository.js';
import type { RestorePlan } from '../../plans/plan.types.js';
import { PlanIdParams } from '../schemas.js';
import { requireRole } from '../plugins/auth.js';
import { pausedView, type ScheduleService } from '../../scheduling/schedule.service.js';
import { nextScheduledAt } from '../../scheduling/slots.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';
import type { Clock } from '../../clock.js';

const errorRef = { $ref: 'Error#' };

export async function planRoutes(base: FastifyInstance, opts: { plans: PlanService; runs: RunService; schedules: ScheduleService; db: Kysely<DB>; audit: AuditService; clock: Clock }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  // plans arrive as text so that YAML and JSON errors can name their line
  app.removeContentTypeParser('application/json'); // only inside this plugin: plan bodies stay text
  for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  const statusRepo = new PlanStatusRepository(opts.db);
  const alertRepo = new NotificationRepository(opts.db);
  const clock = opts.clock;

  interface Parts {
    status: { status: string; nextDueAt: Date | null };
    sched: PlanScheduleRow | undefined;
    last: { id: string; verdict: string | null; finished_at: Date | null } | undefined;
    tick: { at: Date; ageSeconds: number } | null;
    alert: AlertRow | undefined;
  }

  function render(row: PlanRow, p: Parts, now: Date) {
    const def = row.definition as RestorePlan;
    return {
      ...toPlanView(row),
      status: p.status.status,
      nextDueAt: p.status.nextDueAt?.toISOString() ?? null,
      nextScheduledAt: p.sched?.paused_at ? null : nextScheduledAt(def, p.sched?.last_slot ?? null, now)?.toISOString() ?? null,
      paused: pausedView(p.sched),
      // watching the watcher: a schedule nobody ticks looks exactly like one that is fine
      scheduler: def.cadence.schedule ? { lastTickAt: p.tick?.at.toISOString() ?? null, healthy: p.tick !== null && p.tick.ageSeconds < 180 } : null,
      lastRun: p.last ? { id: p.last.id, verdict: p.last.verdict, finishedAt: p.last.finished_at?.toISOString() ?? null } : null,
      alert: p.alert
        ? { id: p.alert.id, kind: p.alert.kind, since: p.alert.since.toISOString(), escalationLevel: p.alert.escalation_level, acknowledged: p.alert.acknowledged_at !== null, snoozedUntil: p.alert.snoozed_until?.toISOString() ?? null }
        : null,
    };
  }

  /** One plan: its own few queries, the status by the same rules as the set-based list. */
  async function view(tenantId: string, row: PlanRow) {
    const now = clock();
    const [decisive, passed, last, sched, tick, alerts] = await Promise.all([
      opts.runs.runs.lastDecisive(tenantId, row.id), opts.runs.runs.lastPassed(tenantId, row.id), opts.runs.runs.lastFinished(tenantId, row.id),
      opts.schedules.repo.get(tenantId, row.id), opts.schedules.repo.lastLeaderTick(), alertRepo.listAlerts(tenantId, { open: true, planId: row.id, limit: 1 }),
    ]);
    const status = planStatus(row.definition as RestorePlan, row.created_at, [decisive, passed].filter((r) => r !== undefined), now);
    return render(row, { status, sched, last, tick, alert: alerts[0] }, now);
  }

  /** All plans of a tenant in a fixed number of queries, however many plans (the status in one set-based query). */
  async function views(tenantId: string, rows: PlanRow[]) {
    const now = clock();
    const [statuses, scheds, lasts, tick, alerts] = await Promise.all([
      statusRepo.statusAll(tenantId, now), opts.schedules.repo.listForTenant(tenantId), opts.runs.runs.lastFinishedAll(tenantId),
      opts.schedules.repo.lastLeaderTick(), alertRepo.listAlerts(tenantId, { open: true, limit: 100_000 }),
    ]);
    const by = <T, K extends keyof T>(list: T[], key: K) => new Map(list.map((x) => [x[key] as unknown as string, x]));
    const st = by(statuses, 'planId');
    const sc = by(scheds, 'plan_id');
    const la = by(lasts, 'plan_id');
    const al = by(alerts, 'plan_id');
    return rows.map((row) => render(row, {
      status: st.get(row.id) ?? { status: 'never-tested', nextDueAt: null },
      sched: sc.get(row.id), last: la.get(row.id), tick, alert: al.get(row.id),
    }, now));
  }

  app.get('/plans', {
    schema: { tags: ['plans'], summary: 'List restore plans with status (one set-based query for all plans)', response: { 200: Type.Object({ items: Type.Array(Type.Ref('Plan')) }), 401: errorRef } },
  }, async (req) => {
    const rows = await opts.plans.list(req.principal!.tenantId);
    return { items: await views(req.principal!.tenantId, rows) };
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
    const { actor, ip } = auditFrom(req);
    const res = await opts.plans.put(req.principal!.tenantId, req.params.id, text, ct.includes('json') ? 'json' : 'yaml', { actor, ip });
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
    // a manual start is an act of a person; scheduled runs are not audited (their run record is the evidence)
    await opts.audit.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id } });
    return reply.status(202).header('location', `/api/v1/runs/${run.id}`).send({ id: run.id, status: run.status });
  });
}
