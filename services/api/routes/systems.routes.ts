import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { requireRole } from '../plugins/auth.js';
import { auditFrom } from '../audit-hook.js';
import { NotFound } from '../../errors.js';
import type { SystemService } from '../../systems/system.service.js';

const errorRef = { $ref: 'Error#' };
const nullable = (t: ReturnType<typeof Type.String>) => Type.Union([t, Type.Null()]);
const SystemParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$', description: 'the system\'s id, as plans name it (system: ewo)' }) });
const SystemBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  process: Type.Optional(nullable(Type.String({ maxLength: 200, description: 'the business process it serves, e.g. "Meldewesen"' }))),
  protectionNeed: Type.Optional(Type.Union([Type.Literal('normal'), Type.Literal('hoch'), Type.Literal('sehr hoch'), Type.Null()])),
  tier: Type.Integer({ minimum: 1, maximum: 9, description: 'restart priority: 1 is restarted first' }),
  owner: Type.Optional(nullable(Type.String({ maxLength: 200, description: 'who is responsible (a role or a person)' }))),
  handbookRef: Type.Optional(nullable(Type.String({ maxLength: 500, description: 'where the emergency manual (Notfallhandbuch) describes its restart: a section or a document' }))),
  retired: Type.Optional(Type.Boolean({ description: 'no longer in use: kept for the evidence, not listed, plans can no longer name it' })),
}, { additionalProperties: false });

const SystemJson = Type.Object({
  id: Type.String(), name: Type.String(), process: Type.Union([Type.String(), Type.Null()]), protectionNeed: Type.Union([Type.String(), Type.Null()]),
  tier: Type.Integer(), owner: Type.Union([Type.String(), Type.Null()]), handbookRef: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(), updatedAt: Type.String(), retiredAt: Type.Union([Type.String(), Type.Null()]),
});

/** The tenant's systems and the restart order (issue #12; docs/systems.md). */
export async function systemRoutes(base: FastifyInstance, opts: { systems: SystemService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/systems', {
    schema: {
      tags: ['systems'], summary: 'The restart order: every system by tier and name, with its plans, its newest passed test of any kind, and whether a tier-1 system lacks one within a year',
      querystring: Type.Object({ retired: Type.Optional(Type.Boolean({ description: 'include retired systems' })) }, { additionalProperties: false }),
    },
  }, async (req) => ({ items: await opts.systems.overview(req.principal!.tenantId, { retired: req.query.retired }) }));

  app.get('/systems/:id', {
    schema: { tags: ['systems'], summary: 'One system with its plans and newest passed test', params: SystemParams, response: { 404: errorRef } },
  }, async (req) => {
    const item = (await opts.systems.overview(req.principal!.tenantId, { retired: true })).find((s) => s.id === req.params.id);
    if (!item) throw new NotFound(`system ${req.params.id}`);
    return item;
  });

  app.put('/systems/:id', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['systems'], summary: 'Create or change a system (operator, admin); plans name it by id. Never deleted: retire it',
      params: SystemParams, body: SystemBody, response: { 200: SystemJson, 201: SystemJson, 400: errorRef, 403: errorRef },
    },
  }, async (req, reply) => {
    const a = auditFrom(req);
    const { system, created } = await opts.systems.put(req.principal!.tenantId, req.params.id, req.body, { actor: a.actor, ip: a.ip });
    return reply.status(created ? 201 : 200).send(system);
  });
}
