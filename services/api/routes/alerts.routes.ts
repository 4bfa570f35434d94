import type { FastifyInstance } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AlertService } from '../../notify/alert.service.js';
import { requireRole } from '../plugins/auth.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const Reason = Type.String({ minLength: 1, maxLength: 1000, description: 'why; recorded in the evidence ledger' });

const NotificationSchema = Type.Object({
  id: Type.String(),
  event: Type.String({ description: 'due-soon | overdue | escalation | failure | recovered | digest | test' }),
  recipient: Type.String({ description: 'mail:<address> or webhook:<name>' }),
  planId: nullable(Type.String()),
  alertId: nullable(Type.String()),
  runId: nullable(Type.String()),
  status: Type.String({ description: 'pending | sending | sent | failed' }),
  attempts: Type.Integer(),
  lastError: nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  nextAttemptAt: nullable(Type.String({ format: 'date-time' })),
  sentAt: nullable(Type.String({ format: 'date-time' })),
});

const AlertSchema = Type.Object({
  id: Type.String(),
  planId: Type.String(),
  kind: Type.String({ description: 'overdue | failing' }),
  since: Type.String({ format: 'date-time', description: 'when the problem began (due date + grace, or the failed run); escalation delays count from here' }),
  openedAt: Type.String({ format: 'date-time' }),
  runId: nullable(Type.String({ description: 'the newest failed run of the episode' })),
  escalationLevel: Type.Integer({ description: 'escalation steps sent so far (0 = none)' }),
  acknowledged: nullable(Type.Object({ at: Type.String(), by: Type.String(), reason: Type.String() })),
  snoozed: nullable(Type.Object({ until: Type.String(), by: Type.String(), reason: Type.String() })),
  resolved: nullable(Type.Object({ at: Type.String(), runId: nullable(Type.String()) })),
});

export async function alertRoutes(base: FastifyInstance, opts: { alerts: AlertService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/alerts', {
    schema: {
      tags: ['alerts'], summary: 'Alerts (overdue or failing episodes of a plan), newest first',
      querystring: Type.Object({
        state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')], { default: 'open' })),
        planId: Type.Optional(Type.String({ maxLength: 63 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(AlertSchema) }), 400: errorRef },
    },
  }, async (req) => {
    const state = req.query.state ?? 'open';
    const items = await opts.alerts.list(req.principal!.tenantId, { open: state === 'all' ? undefined : state === 'open', planId: req.query.planId, limit: req.query.limit ?? 100 });
    return { items };
  });

  app.get('/alerts/:id', {
    schema: {
      tags: ['alerts'], summary: 'One alert with every notification sent for it', params: IdParams,
      response: { 200: Type.Intersect([AlertSchema, Type.Object({ notifications: Type.Array(NotificationSchema) })]), 404: errorRef },
    },
  }, async (req) => opts.alerts.get(req.principal!.tenantId, req.params.id));

  app.post('/alerts/:id/acknowledge', {
    preValidation: requireRole('operator', 'reviewer'),
    schema: {
      tags: ['alerts'], summary: 'Acknowledge: stops the escalation (the all-clear still goes out on recovery); 409 when acknowledged or resolved already',
      params: IdParams, body: Type.Object({ reason: Reason }, { additionalProperties: false }),
      response: { 200: AlertSchema, 400: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const a = await opts.alerts.acknowledge(req.principal!.tenantId, req.params.id, req.principal!.name, req.body.reason);
    req.log.info({ alertId: a.id, planId: a.planId, by: req.principal!.name }, 'alert acknowledged');
    return a;
  });

  app.post('/alerts/:id/snooze', {
    preValidation: requireRole('operator', 'reviewer'),
    schema: {
      tags: ['alerts'], summary: 'Snooze: no escalation until the given time (at most 30 days); steps that fall due meanwhile go out afterwards',
      params: IdParams,
      body: Type.Object({
        reason: Reason,
        until: Type.Optional(Type.String({ format: 'date-time' })),
        for: Type.Optional(Type.String({ maxLength: 40, description: 'a duration like P1D or 4h' })),
      }, { additionalProperties: false }),
      response: { 200: AlertSchema, 400: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const a = await opts.alerts.snooze(req.principal!.tenantId, req.params.id, req.principal!.name, req.body.reason, { until: req.body.until, for: req.body.for });
    req.log.info({ alertId: a.id, planId: a.planId, by: req.principal!.name, until: a.snoozed?.until }, 'alert snoozed');
    return a;
  });

  app.get('/notifications', {
    schema: {
      tags: ['alerts'], summary: 'The notification outbox, newest first: what went to whom, what is pending, what failed and why',
      querystring: Type.Object({
        status: Type.Optional(Type.Union(['pending', 'sending', 'sent', 'failed'].map((s) => Type.Literal(s)))),
        planId: Type.Optional(Type.String({ maxLength: 63 })),
        before: Type.Optional(Type.String({ format: 'date-time', description: 'page: created before this time' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(NotificationSchema) }), 400: errorRef },
    },
  }, async (req) => ({
    items: await opts.alerts.notifications(req.principal!.tenantId, { status: req.query.status, planId: req.query.planId, before: req.query.before, limit: req.query.limit ?? 100 }),
  }));

  app.post('/notifications/:id/retry', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['alerts'], summary: 'Send a failed notification again (after fixing SMTP or the webhook); 409 unless it is failed',
      params: IdParams, response: { 200: NotificationSchema, 404: errorRef, 409: errorRef },
    },
  }, async (req) => opts.alerts.retry(req.principal!.tenantId, req.params.id));

  app.post('/notifications/test', {
    preValidation: requireRole('admin'),
    schema: {
      tags: ['alerts'], summary: 'Queue a test message to a recipient (mail:… or webhook:…) to check a channel; watch it in GET /notifications',
      body: Type.Object({ recipient: Type.String({ minLength: 3, maxLength: 300 }), lang: Type.Optional(Type.Union([Type.Literal('de'), Type.Literal('en')])) }, { additionalProperties: false }),
      response: { 202: NotificationSchema, 400: errorRef },
    },
  }, async (req, reply) => {
    const n = await opts.alerts.sendTest(req.principal!.tenantId, req.body.recipient, req.principal!.name, req.body.lang);
    return reply.status(202).send(n);
  });
}
