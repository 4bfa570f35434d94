import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { actorOf } from '../../auth/principal.js';
import { queueScope, REASON_MAX, type QueueOpsService } from '../../runs/queue-ops.js';

const errorRef = { $ref: 'Error#' };
const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const QueueJobSchema = Type.Object({
  jobId: Type.String({ description: 'BullMQ job id (run-<runId>)' }),
  runId: nullable(Type.String({ format: 'uuid' })),
  pool: Type.String(),
  state: Type.Union([Type.Literal('waiting'), Type.Literal('active'), Type.Literal('failed')]),
  planId: nullable(Type.String()),
  planTitle: nullable(Type.String()),
  tenant: Type.Optional(nullable(Type.Object({ id: Type.String(), slug: Type.String(), name: Type.String() }, { description: 'the run\'s tenant; only in the installation\'s view (provider admins, bootstrap token); null for a job without a run' }))),
  runStatus: nullable(Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('finished')])),
  verdict: nullable(Type.String()),
  enqueuedAt: Type.String({ format: 'date-time' }),
  ageSeconds: Type.Integer({ description: 'seconds since the job was enqueued' }),
  startedAt: nullable(Type.String({ format: 'date-time' })),
  failedAt: nullable(Type.String({ format: 'date-time' })),
  failedReason: nullable(Type.String({ description: `the error the job failed with: one line, at most ${REASON_MAX} characters, credentials blanked` })),
  attemptsMade: Type.Integer(),
});

const StateSchema = Type.Object({
  count: Type.Integer(),
  exact: Type.Boolean({ description: 'false: a tenant\'s count is a lower bound (the pool had more jobs in this state than the view looks through)' }),
  jobs: Type.Array(QueueJobSchema, { description: 'at most 100: waiting and active oldest first, failed newest first' }),
});

const OverviewSchema = Type.Object({
  scope: Type.Union([Type.Literal('installation'), Type.Literal('tenant')], { description: 'installation: every tenant\'s jobs (provider admins, bootstrap token); tenant: only the jobs of this tenant\'s runs' }),
  at: Type.String({ format: 'date-time' }),
  pools: Type.Array(Type.Object({
    pool: Type.String(),
    workers: nullable(Type.Integer({ description: 'live workers connected to the pool\'s queue; null when Redis did not answer' })),
    waiting: StateSchema,
    active: StateSchema,
    failed: StateSchema,
  })),
});

const Params = Type.Object({ id: Type.String({ maxLength: 64, description: 'the run id' }) });

/** Before the body: admins only (a tenant's admin for its runs, the provider for all); 401/403 otherwise. */
async function queueAdmin(req: FastifyRequest): Promise<void> {
  queueScope(req.principal);
}

const by = (req: FastifyRequest) => ({ actor: actorOf(req.principal!), ...(req.ip && { ip: req.ip }) });

/**
 * The restore-test queue per worker pool (issue 13 item 6). A tenant's admin
 * sees and acts on the jobs of the tenant's runs only (another tenant's run
 * is 404); provider admins and the bootstrap token see the installation.
 */
export async function queueRoutes(base: FastifyInstance, opts: { queueOps: QueueOpsService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/queue', {
    config: { provider: true },
    preValidation: queueAdmin,
    schema: {
      tags: ['queue'], summary: 'The queue per worker pool: live workers, waiting, active and failed jobs with their runs (admin: this tenant\'s; provider admin: all)',
      response: { 200: OverviewSchema, 401: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (req) => opts.queueOps.overview(queueScope(req.principal)));

  app.post('/queue/failed/:id/retry', {
    config: { provider: true },
    preValidation: queueAdmin,
    schema: {
      tags: ['queue'], summary: 'Retry a run\'s failed job: only while the run is still queued (409 naming why otherwise); audited',
      params: Params,
      response: { 200: QueueJobSchema, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
    },
  }, async (req) => opts.queueOps.retry(queueScope(req.principal), req.params.id, by(req)));

  app.delete('/queue/failed/:id', {
    config: { provider: true },
    preValidation: queueAdmin,
    schema: {
      tags: ['queue'], summary: 'Remove a run\'s failed job (a run still queued gets a new job from the next maintenance pass; cancel the run to stop it); audited',
      params: Params,
      response: { 204: Type.Null(), 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef },
    },
  }, async (req, reply) => {
    await opts.queueOps.remove(queueScope(req.principal), req.params.id, by(req));
    return reply.status(204).send(null);
  });
}
