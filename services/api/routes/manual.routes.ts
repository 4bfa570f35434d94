import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { requireRole } from '../plugins/auth.js';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';
import { toRunJson } from '../../runs/run.view.js';
import { Invalid } from '../../errors.js';
import type { ExternalResultService } from '../../external/external.service.js';
import { MAX_UPLOAD_BYTES, type ManualRunService } from '../../external/manual.service.js';
import { RunIdParams } from '../schemas.js';
import type { ExerciseService } from '../../external/exercise.service.js';

const errorRef = { $ref: 'Error#' };
const PlanParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }) });
const StepParams = Type.Object({ id: Type.String({ maxLength: 64 }), index: Type.Integer({ minimum: 0, maximum: 99 }) });
const UploadRef = Type.Object({ name: Type.String(), sha256: Type.String(), sizeBytes: Type.Integer(), mediaType: Type.String() });
const paramId = (req: FastifyRequest) => String((req.params as { id?: string }).id);

/**
 * Manual restore tests (kind: manual): people carry out the plan's steps and
 * ernstfall records each one — result, note, time, who — with the files they
 * hand in, then the verdict and the signed record (docs/manual-tests.md).
 */
export async function manualRoutes(base: FastifyInstance, opts: { external: ExternalResultService; manual: ManualRunService; exercises: ExerciseService; audit: AuditService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.post('/plans/:id/manual-runs', {
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.external.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['manual'], summary: 'Start a manual restore test (kind: manual): a running run whose steps are recorded one by one',
      params: PlanParams, response: { 201: { $ref: 'Run#' }, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const run = await opts.manual.start(req.principal!.tenantId, req.params.id, req.principal!.name);
    await opts.audit.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, origin: 'manual' } });
    return reply.status(201).send(toRunJson(run));
  });

  app.post('/runs/:id/steps/:index', {
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.manual.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['manual'], summary: 'Record one step of a manual test: ok, deviation (with a note) or not-done; the server\'s clock stamps it',
      params: Type.Object({ id: Type.String({ maxLength: 64 }), index: Type.Integer({ minimum: 0, maximum: 99 }) }),
      body: Type.Object({
        result: Type.Union([Type.Literal('ok'), Type.Literal('deviation'), Type.Literal('not-done')]),
        note: Type.Optional(Type.String({ maxLength: 2000 })),
      }, { additionalProperties: false }),
      response: { 200: { $ref: 'Run#' }, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => toRunJson(await opts.manual.recordStep(req.principal!.tenantId, req.params.id, req.params.index, req.body, req.principal!.name)));

  app.post('/runs/:id/complete', {
    preValidation: requireRole('operator'),
    schema: {
      tags: ['manual'], summary: 'Complete a manual test or an exercise: the verdict by its steps or observations, the measured RTO to the service\'s return, the signed record (an exercise\'s findings become measures)',
      params: RunIdParams,
      // no body schema: a plain `curl -X POST` completes; an optional {note} is checked here
      response: { 200: { $ref: 'Run#' }, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const body = (req.body ?? {}) as { note?: unknown };
    const extra = typeof body === 'object' && body !== null ? Object.keys(body).filter((k) => k !== 'note') : ['body'];
    if (extra.length || (body.note !== undefined && (typeof body.note !== 'string' || body.note.length > 2000))) {
      throw new Invalid('invalid completion', [{ path: extra[0] ?? 'note', message: extra.length ? 'the body is at most {note}' : '"note" is a text of at most 2000 characters' }]);
    }
    const tenantId = req.principal!.tenantId;
    const done = await opts.exercises.isExercise(tenantId, req.params.id)
      ? await opts.exercises.complete(tenantId, req.params.id, { note: body.note as string | undefined }, req.principal!.name)
      : await opts.manual.complete(tenantId, req.params.id, { note: body.note as string | undefined }, req.principal!.name);
    return toRunJson(done);
  });

  app.post('/runs/:id/steps/:index/attachments', {
    bodyLimit: Math.ceil(MAX_UPLOAD_BYTES * 1.4) + 4096,
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.manual.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['manual'], summary: `Hand in a file for one step of a running manual test (a screenshot, a log; at most ${MAX_UPLOAD_BYTES / 2 ** 20} MiB): kept with the run, hashed into its signed record at completion`,
      params: StepParams,
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 200, description: 'the file name; kept as letters, digits, ".", "-", "_", prefixed with the step (step-02-…)' }),
        mediaType: Type.Optional(Type.String({ maxLength: 100 })),
        contentBase64: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
      }, { additionalProperties: false }),
      response: { 201: UploadRef, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const ref = await opts.manual.attach(req.principal!.tenantId, req.params.id, req.params.index, {
      name: req.body.name, mediaType: req.body.mediaType, content: Buffer.from(req.body.contentBase64, 'base64'),
    }, req.principal!.name);
    await opts.audit.record({ ...auditFrom(req), action: 'run.attachment-added', subject: { type: 'run', id: req.params.id }, details: { step: req.params.index, name: ref.name, sha256: ref.sha256 } });
    return reply.status(201).send(ref);
  });

  app.get('/runs/:id/attachments/:name', {
    schema: {
      tags: ['manual'], summary: 'Download an attachment of a run (a manual test\'s evidence, a tool\'s output): always as a download, never shown inline; 410 once its retention removed the content',
      params: Type.Object({ id: Type.String({ maxLength: 64 }), name: Type.String({ minLength: 1, maxLength: 200 }) }),
      response: { 404: errorRef, 410: errorRef },
    },
  }, async (req, reply) => {
    const a = await opts.manual.attachment(req.principal!.tenantId, req.params.id, req.params.name);
    if (!a.content) return reply.status(410).send({ error: 'Gone', message: `the content of ${a.name} was removed after its retention; its SHA-256 ${a.sha256} stays in the record` });
    const ascii = a.name.replace(/[^A-Za-z0-9._-]/g, '_');
    return reply
      .header('content-type', a.mediaType)
      .header('content-disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(a.name)}`)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "sandbox; default-src 'none'")
      .header('cache-control', 'private, no-store')
      .header('digest', `sha-256=${Buffer.from(a.sha256, 'hex').toString('base64')}`)
      .send(a.content);
  });

  // ---- exercises (kind: exercise): participants, observations as they happen, findings that become measures
  app.post('/plans/:id/exercises', {
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.external.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['exercises'], summary: 'Start an exercise (kind: exercise) with its participants and their roles: a running run whose observations are recorded as they happen',
      params: PlanParams,
      body: Type.Object({
        participants: Type.Array(Type.Object({
          name: Type.String({ minLength: 1, maxLength: 200 }),
          role: Type.Optional(Type.String({ maxLength: 100, description: 'e.g. one of the plan\'s exercise.roles' })),
        }, { additionalProperties: false }), { minItems: 1, maxItems: 100 }),
      }, { additionalProperties: false }),
      response: { 201: { $ref: 'Run#' }, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    const run = await opts.exercises.start(req.principal!.tenantId, req.params.id, req.body, req.principal!.name);
    await opts.audit.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, origin: 'exercise' } });
    return reply.status(201).send(toRunJson(run));
  });

  app.post('/runs/:id/observations', {
    preValidation: async (req) => {
      await requireRole('operator')(req);
      await opts.manual.mustExist(req.principal!.tenantId, paramId(req));
    },
    schema: {
      tags: ['exercises'], summary: 'Record an observation of a running exercise: a note, a finding (with the measure it becomes) or the moment the service is back (ends the measured RTO); the server\'s clock stamps it',
      params: RunIdParams,
      body: Type.Object({
        kind: Type.Union([Type.Literal('note'), Type.Literal('finding'), Type.Literal('service-restored')]),
        text: Type.String({ minLength: 1, maxLength: 2000 }),
        measure: Type.Optional(Type.Object({
          title: Type.String({ minLength: 1, maxLength: 500 }), owner: Type.String({ minLength: 1, maxLength: 200 }),
          dueDate: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
        }, { additionalProperties: false, description: 'findings only: what is to be done, by whom, until when' })),
      }, { additionalProperties: false }),
      response: { 200: { $ref: 'Run#' }, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => toRunJson(await opts.exercises.observe(req.principal!.tenantId, req.params.id, req.body, req.principal!.name)));
}
