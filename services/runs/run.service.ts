import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunRow, Verdict } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import { DEFAULT_POOL } from '../sandbox-policy.js';
import type { RunQueue } from '../../workers/queue.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { decodeCursor, encodeCursor } from './run.view.js';
import type { RunFinisher } from './run-finisher.js';
import type { Clock } from '../clock.js';

const UNIQUE_VIOLATION = '23505';

export interface ListRunsQuery {
  planId?: string;
  verdict?: Verdict;
  status?: string;
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

export class RunService {
  private readonly runs: Repositories['runs'];
  private readonly plans: Repositories['plans'];
  private readonly uploads: Repositories['uploads'];
  constructor(
    repos: Pick<Repositories, 'runs' | 'plans' | 'uploads'>, private readonly queue: RunQueue, private readonly finisher: RunFinisher, private readonly log: Logger,
    /** Business time (when a manual test ended); leases and heartbeats keep the database's now(). */
    private readonly clock: Clock,
  ) {
    this.runs = repos.runs;
    this.plans = repos.plans;
    this.uploads = repos.uploads;
  }

  /** Records a queued run of the plan's current version and enqueues it. One active run per plan. */
  async trigger(tenantId: string, planId: string, by: { trigger: string; triggeredBy: string; slot?: Date }): Promise<RunRow> {
    const plan = await this.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    const kind = (plan.definition as { kind?: string }).kind;
    if (kind === 'external') {
      throw new Conflict(`plan ${planId} is tested by another tool (kind: external): it reports its results to POST /api/v1/plans/${planId}/results; ernstfall runs nothing for it`);
    }
    if (kind === 'manual') {
      throw new Conflict(`plan ${planId} is carried out by people (kind: manual): start it with POST /api/v1/plans/${planId}/manual-runs`);
    }
    if (kind === 'exercise') {
      throw new Conflict(`plan ${planId} is an exercise people hold (kind: exercise): start it with POST /api/v1/plans/${planId}/exercises`);
    }
    const id = randomUUID();
    // the run waits in the queue of the plan's worker pool until a worker of that pool takes it
    const pool = (plan.definition as { sandbox?: { pool?: string } }).sandbox?.pool ?? DEFAULT_POOL;
    try {
      await this.runs.insert({
        id, tenant_id: tenantId, plan_id: planId, plan_version_hash: plan.version_hash, status: 'queued',
        trigger: by.trigger, triggered_by: by.triggeredBy, slot: by.slot ?? null, pool, queued_at: this.clock(),
      });
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
        const active = await this.runs.activeForPlan(tenantId, planId);
        throw new Conflict(`plan ${planId} already has an active run`, { activeRunId: active?.id ?? null });
      }
      throw err;
    }
    try {
      await this.queue.enqueueRestoreTest({ runId: id, tenantId }, pool);
    } catch (err) {
      // the run stays queued; a worker's maintenance pass enqueues it again when Redis is back
      this.log.error({ runId: id, err: (err as Error).message }, 'enqueue failed; run stays queued');
    }
    this.log.info({ runId: id, planId, tenantId, trigger: by.trigger, pool }, 'run queued');
    return (await this.runs.get(tenantId, id))!;
  }

  async get(tenantId: string, id: string): Promise<RunRow> {
    const row = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? await this.runs.get(tenantId, id) : undefined;
    if (!row) throw new NotFound(`run ${id}`);
    return row;
  }

  async list(tenantId: string, q: ListRunsQuery): Promise<{ items: RunRow[]; nextCursor: string | null }> {
    const limit = q.limit ?? 50;
    const details: { path: string; message: string }[] = [];
    const from = q.from ? new Date(q.from) : undefined;
    const to = q.to ? new Date(q.to) : undefined;
    if (from && Number.isNaN(from.getTime())) details.push({ path: 'from', message: 'not an ISO 8601 date-time' });
    if (to && Number.isNaN(to.getTime())) details.push({ path: 'to', message: 'not an ISO 8601 date-time' });
    const before = q.cursor ? decodeCursor(q.cursor) : undefined;
    if (q.cursor && !before) details.push({ path: 'cursor', message: 'not a cursor returned by this API' });
    if (details.length) throw new Invalid('invalid query', details);
    const items = await this.runs.list({ tenantId, planId: q.planId, verdict: q.verdict, status: q.status, from, to, limit: limit + 1, before });
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    return { items: page, nextCursor: more ? encodeCursor(page.at(-1)!) : null };
  }

  /** A queued run ends at once as cancelled; a running one is stopped by its worker within a heartbeat. */
  async cancel(tenantId: string, id: string): Promise<RunRow> {
    const run = await this.get(tenantId, id);
    if (run.status === 'finished') throw new Conflict(`run ${id} is already finished (${run.verdict})`);
    await this.runs.requestCancel(tenantId, id, this.clock());
    if (run.status === 'queued') {
      await this.queue.removeQueued(id, run.pool);
      await this.finisher.finishUnclaimed(id, { verdict: 'cancelled', findings: [] }, 'queued');
    } else if (run.origin === 'manual' || run.origin === 'exercise') {
      // no worker holds a manual test or an exercise: it ends here, with the steps or observations recorded so far,
      // and the files handed in go into its record like at completion (never left outside it)
      const uploads = await this.uploads.withContent(tenantId, id);
      await this.finisher.finishUnclaimed(id, { verdict: 'cancelled', findings: [], checks: run.checks as unknown[], finishedAt: this.clock() }, 'running', {
        attachments: uploads.map((u) => ({ name: u.name, content: u.content!, retain: 'record' as const })),
        also: async (trx) => {
          if (uploads.length) await this.uploads.dropContent(tenantId, uploads.map((u) => u.id), trx);
          return undefined;
        },
      });
    }
    return (await this.runs.get(tenantId, id))!;
  }
}
