import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ScheduleService } from '../../scheduling/schedule.service.js';
import { PlanIdParams } from '../schemas.js';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const PausedSchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  reason: Type.String(),
  by: Type.String({ description: 'who paused it (the token name)' }),
});

export const ScheduleSchema = Type.Object({
  schedule: nullable(Type.String({ description: 'cron expression (minute hour day month weekday) in the plan time zone' })),
  timezone: Type.String(),
  lastSlot: nullable(Type.String({ description: 'the newest slot handled: run, or passed by while paused or while a run was active' })),
  nextScheduledAt: nullable(Type.String({ description: 'when the scheduler next starts the plan; null without a schedule or while paused' })),
  paused: nullable(PausedSchema),
  lastMissed: nullable(Type.Object({ slot: Type.String(), reason: Type.String({ description: 'paused | active-run' }) })),
});

const PauseBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false });

export async function scheduleRoutes(base: FastifyInstance, opts: { schedules: ScheduleService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/plans/:id/schedule', {
    schema: { tags: ['plans'], summary: "The plan's schedule: last slot, next start, pause", params: PlanIdParams, response: { 200: ScheduleSchema, 404: errorRef } },
  }, async (req) => opts.schedules.view(req.principal!.tenantId, req.params.id));

  app.post('/plans/:id/pause', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['plans'], summary: 'Pause the schedule with a reason (shown in plan views and reports); 409 when paused already',
      params: PlanIdParams, body: PauseBody, response: { 200: ScheduleSchema, 400: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const view = await opts.schedules.pause(req.principal!.tenantId, req.params.id, req.body.reason, req.principal!.name);
    await opts.audit.record({ ...auditFrom(req), action: 'schedule.paused', subject: { type: 'plan', id: req.params.id }, details: { reason: view.paused?.reason ?? req.body.reason.trim() } });
    req.log.info({ planId: req.params.id, by: req.principal!.name }, 'plan schedule paused');
    return view;
  });

  app.post('/plans/:id/resume', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['plans'], summary: 'Resume the schedule; slots missed during the pause are not caught up; 409 when not paused',
      params: PlanIdParams, response: { 200: ScheduleSchema, 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    // the pause that ends, for the record (resuming itself takes no reason)
    const ended = await opts.schedules.paused(req.principal!.tenantId, req.params.id);
    const view = await opts.schedules.resume(req.principal!.tenantId, req.params.id);
    await opts.audit.record({
      ...auditFrom(req), action: 'schedule.resumed', subject: { type: 'plan', id: req.params.id },
      details: { pauseReason: ended?.reason ?? null, pausedAt: ended?.at ?? null, pausedBy: ended?.by ?? null },
    });
    req.log.info({ planId: req.params.id, by: req.principal!.name }, 'plan schedule resumed');
    return view;
  });
}
