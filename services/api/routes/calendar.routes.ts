import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { CalendarFeedService } from '../../calendar/calendar-feed.service.js';
import { NotFound } from '../../errors.js';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Lang = Type.Union([Type.Literal('de'), Type.Literal('en')]);

const FeedSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  lang: Lang,
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  revokedAt: nullable(Type.String({ format: 'date-time' })),
  lastUsedAt: nullable(Type.String({ format: 'date-time' })),
});

const CreatedSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  lang: Lang,
  createdAt: Type.String({ format: 'date-time' }),
  url: Type.String({ description: 'the subscription address; shown only now' }),
  token: Type.String({ description: 'the secret in the address; shown only now, stored only as SHA-256' }),
});

/**
 * The feed's token is the whole credential and sits in the URL: the access log
 * of this route gets the path without it (Fastify logs req.url on every request).
 */
const redactedReq = (req: FastifyRequest) => ({
  method: req.method, url: '/calendar/[redacted].ics', host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort,
});

export async function calendarRoutes(base: FastifyInstance, opts: { feeds: CalendarFeedService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { feeds } = opts;

  app.post('/api/v1/calendar-feeds', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['calendar'],
      summary: 'Create an iCalendar feed of the tenant (scheduled tests, due dates, overdue plans); its URL is shown once',
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 100, description: 'who or what subscribes, e.g. "Outlook IT-Leitung"' }),
        lang: Type.Optional(Lang),
      }, { additionalProperties: false }),
      response: { 201: CreatedSchema, 400: errorRef, 403: errorRef },
    },
  }, async (req, reply) => {
    const created = await feeds.create(req.principal!.tenantId, req.body, req.principal!.name);
    // name and language only: the URL is the credential and stays out of the ledger
    await opts.audit.record({ ...auditFrom(req), action: 'calendar-feed.created', subject: { type: 'calendar-feed', id: created.id }, details: { name: created.name, lang: created.lang } });
    req.log.info({ feedId: created.id, by: req.principal!.name }, 'calendar feed created');
    return reply.status(201).send(created);
  });

  app.get('/api/v1/calendar-feeds', {
    schema: { tags: ['calendar'], summary: 'Calendar feeds of the tenant (never their URL)', response: { 200: Type.Object({ items: Type.Array(FeedSchema) }) } },
  }, async (req) => ({ items: await feeds.list(req.principal!.tenantId) }));

  app.delete('/api/v1/calendar-feeds/:id', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['calendar'], summary: 'Revoke a calendar feed at once (its URL answers 404)',
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      response: { 204: Type.Null({ description: 'revoked' }), 403: errorRef, 404: errorRef },
    },
  }, async (req, reply) => {
    await feeds.revoke(req.principal!.tenantId, req.params.id);
    await opts.audit.record({ ...auditFrom(req), action: 'calendar-feed.revoked', subject: { type: 'calendar-feed', id: req.params.id } });
    req.log.info({ feedId: req.params.id, by: req.principal!.name }, 'calendar feed revoked');
    return reply.status(204).send(null);
  });

  app.get('/calendar/:file', {
    config: { public: true },
    logSerializers: { req: redactedReq },
    schema: {
      tags: ['calendar'], summary: 'The iCalendar feed (the secret is in the URL: calendar clients cannot send a token)',
      security: [],
      params: Type.Object({ file: Type.String({ description: '<token>.ics' }) }),
    },
  }, async (req, reply) => {
    const m = /^(.*)\.ics$/.exec(req.params.file);
    const ics = m ? await feeds.render(m[1]!) : undefined;
    // unknown, revoked and malformed all look the same
    if (ics === undefined) throw new NotFound('calendar feed');
    return reply.type('text/calendar; charset=utf-8').header('cache-control', 'private, max-age=300').send(ics);
  });
}
