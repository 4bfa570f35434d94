import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';
import { toRunJson } from '../../runs/run.view.js';
import { NotFound } from '../../errors.js';
import { MAX_ATTACHMENT_BYTES, type ExternalResultService, type IngestTokenService } from '../../external/external.service.js';

const errorRef = { $ref: 'Error#' };
const PlanParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }) });
const TokenParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }), tokenId: Type.String({ maxLength: 64 }) });
const DateTime = (description: string) => Type.Optional(Type.String({ format: 'date-time', description }));

const ResultBody = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('error')], { description: 'the plain shape: what the tool found' })),
  startedAt: DateTime('when the test began'),
  finishedAt: DateTime('when it ended (default: when ernstfall received it)'),
  measuredRtoSeconds: Type.Optional(Type.Number({ minimum: 0, description: 'time until the service was back; default finishedAt − startedAt' })),
  backupCreatedAt: DateTime('when the tested backup was made (for the RPO)'),
  message: Type.Optional(Type.String({ maxLength: 64 * 1024, description: 'plain shape: one line for people; veeam-syslog: the syslog message as Veeam sent it' })),
  details: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 1000 }), Type.Number(), Type.Boolean(), Type.Null()]), { description: 'names and numbers kept with the run' })),
  externalId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'the tool\'s id of this result: reporting it again returns the same run' })),
  format: Type.Optional(Type.Union([Type.Literal('veeam-syslog'), Type.Literal('restic-check'), Type.Literal('borg-check'), Type.Literal('aws-restore-validation')], { description: 'the tool\'s own words instead of the plain shape' })),
  output: Type.Optional(Type.String({ maxLength: 1024 * 1024, description: 'restic-check, borg-check: what the command printed' })),
  exitCode: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'restic-check, borg-check: its exit code' })),
  validation: Type.Optional(Type.Unknown({ description: 'aws-restore-validation: {RestoreJobId, ValidationStatus, ValidationStatusMessage}' })),
  attachments: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ minLength: 1, maxLength: 100 }),
    mediaType: Type.Optional(Type.String({ maxLength: 100 })),
    contentBase64: Type.String(),
  }, { additionalProperties: false }), { maxItems: 20, description: `hashed into the run's ledger record; at most ${MAX_ATTACHMENT_BYTES / 2 ** 20} MiB together` })),
}, { additionalProperties: false });

const paramId = (req: FastifyRequest) => String((req.params as { id?: string }).id);

/** An ingest token reports its own plan's results only; anyone else needs the role operator. Another plan is 404, as if it did not exist. */
function mayReport(external: ExternalResultService) {
  return async (req: FastifyRequest) => {
    const p = req.principal;
    if (p?.kind === 'ingest') {
      if (p.ingestPlanId !== paramId(req)) throw new NotFound(`plan ${paramId(req)}`);
      return;
    }
    await requireRole('operator')(req);
    await external.mustExist(p!.tenantId, paramId(req));
  };
}

export async function externalRoutes(base: FastifyInstance, opts: { external: ExternalResultService; ingestTokens: IngestTokenService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.post('/plans/:id/results', {
    config: { ingest: true },
    bodyLimit: 8 * 1024 * 1024,
    preValidation: mayReport(opts.external),
    schema: {
      tags: ['external'],
      summary: 'Report the result of a restore test another tool ran (plans with kind: external): the plain shape, or the tool\'s own output with "format". Authorised by the plan\'s ingest token (efi_…) or an operator',
      params: PlanParams, body: ResultBody,
      response: { 200: { $ref: 'Run#' }, 201: { $ref: 'Run#' }, 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const { run, created } = await opts.external.record(req.principal!.tenantId, req.params.id, req.body, req.principal!.name);
    return reply.status(created ? 201 : 200).send(toRunJson(run));
  });

  app.post('/plans/:id/ingest-tokens', {
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.external.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['external'], summary: 'Create an ingest token for an external plan: it reports that plan\'s results and can do nothing else. Shown once, stored as a hash',
      params: PlanParams,
      body: Type.Object({ name: Type.String({ minLength: 2, maxLength: 100, description: 'the reporting system, e.g. "VBR01 SureBackup"' }) }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.String(), planId: Type.String(), name: Type.String(), createdAt: Type.String(), token: Type.String() }), 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const created = await opts.ingestTokens.create(req.principal!.tenantId, req.params.id, req.body.name, req.principal!.name);
    await opts.audit.record({ ...auditFrom(req), action: 'ingest-token.created', subject: { type: 'ingest-token', id: created.id }, details: { planId: created.planId, name: created.name } });
    return reply.status(201).send(created);
  });

  app.get('/plans/:id/ingest-tokens', {
    schema: { tags: ['external'], summary: 'The plan\'s ingest tokens (never their values)', params: PlanParams },
  }, async (req) => ({ items: await opts.ingestTokens.list(req.principal!.tenantId, req.params.id) }));

  app.delete('/plans/:id/ingest-tokens/:tokenId', {
    preValidation: requireRole('operator'),
    schema: { tags: ['external'], summary: 'Revoke an ingest token: it stops working at once', params: TokenParams, response: { 204: Type.Null(), 404: errorRef } },
  }, async (req, reply) => {
    await opts.ingestTokens.revoke(req.principal!.tenantId, req.params.id, req.params.tokenId);
    await opts.audit.record({ ...auditFrom(req), action: 'ingest-token.revoked', subject: { type: 'ingest-token', id: req.params.tokenId }, details: { planId: req.params.id } });
    return reply.status(204).send(null);
  });
}
