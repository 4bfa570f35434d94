import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Conflict } from '../../errors.js';
import { canonicalJson } from '../../util/canonical-json.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RunService } from '../../runs/run.service.js';
import { toRunJson } from '../../runs/run.view.js';
import { ListRunsQuery, RunIdParams, RunList } from '../schemas.js';

const errorRef = { $ref: 'Error#' };

export async function runRoutes(base: FastifyInstance, opts: { runs: RunService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/runs', {
    schema: { tags: ['runs'], summary: 'Runs, newest first, with filters and cursor pagination', querystring: ListRunsQuery, response: { 200: RunList, 400: errorRef } },
  }, async (req) => {
    const page = await opts.runs.list(req.principal!.tenantId, req.query);
    return { items: page.items.map(toRunJson), nextCursor: page.nextCursor };
  });

  app.get('/runs/:id', {
    schema: { tags: ['runs'], summary: 'One run: phases, RTO/RPO, checks, backup, findings, verdict', params: RunIdParams, response: { 200: { $ref: 'Run#' }, 404: errorRef } },
  }, async (req) => toRunJson(await opts.runs.get(req.principal!.tenantId, req.params.id)));

  app.post('/runs/:id/cancel', {
    schema: { tags: ['runs'], summary: 'Cancel a queued or running run', params: RunIdParams, response: { 202: { $ref: 'Run#' }, 404: errorRef, 409: errorRef } },
  }, async (req, reply) => reply.status(202).send(toRunJson(await opts.runs.cancel(req.principal!.tenantId, req.params.id))));

  app.get('/runs/:id/evidence', {
    schema: {
      tags: ['runs'],
      summary: 'The run as canonical JSON with its SHA-256 (not yet signed or chained: that comes with the evidence ledger)',
      params: RunIdParams,
      response: { 200: Type.Object({ runId: Type.String(), canonical: Type.String(), sha256: Type.String(), signed: Type.Boolean() }), 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const run = toRunJson(await opts.runs.get(req.principal!.tenantId, req.params.id));
    if (run.status !== 'finished') throw new Conflict(`run ${run.id} is not finished yet`);
    const canonical = canonicalJson(run);
    return { runId: run.id, canonical, sha256: createHash('sha256').update(canonical).digest('hex'), signed: false };
  });
}
