import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { DB, MeasureStatus, ReviewDecision } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { ReviewRepository } from '../../db/repositories/review.repository.js';
import { Conflict, Forbidden, Invalid, NotFound } from '../errors.js';
import type { LedgerService } from './ledger.service.js';
import type { LedgerRecord } from './ledger-format.js';
import { measureChangedPayload, measureCreatedPayload, reviewRecordPayload } from './evidence-payload.js';
import type { Clock } from '../clock.js';

export interface DeviationInput { title: string; owner: string; dueDate: string }

const DATE = /^\d{4}-\d{2}-\d{2}$/;
export const validDate = (d: string) => DATE.test(d) && !Number.isNaN(new Date(`${d}T00:00:00Z`).getTime()) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d);

/**
 * A follow-up measure (from a review's deviation or an exercise's finding):
 * the row and its ledger record, in the caller's transaction.
 */
export async function createMeasure(
  ledger: LedgerService, reviews: ReviewRepository, trx: Transaction<DB>,
  m: { id?: string; tenantId: string; planId: string; runId: string; reviewId: string | null; title: string; owner: string; dueDate: string; by: string; now: Date },
): Promise<LedgerRecord> {
  const id = m.id ?? randomUUID();
  // business time (m.now): a re-test closes it only when it finished later (on the same clock as the run that made it)
  await reviews.insertMeasure({ ...m, id }, trx);
  return ledger.append(trx, {
    tenantId: m.tenantId, kind: 'measure', subjectId: id, now: m.now,
    payload: measureCreatedPayload({ measureId: id, planId: m.planId, runId: m.runId, reviewId: m.reviewId, title: m.title, owner: m.owner, dueDate: m.dueDate, by: m.by }),
  });
}

/**
 * Who took part in a run and so cannot witness it: whoever started it, and for
 * a manual test or an exercise everyone who recorded a step or an
 * observation, or completed it.
 */
export function carriedOutBy(run: { triggered_by: string; checks?: unknown; restore?: unknown }): Set<string> {
  const names = new Set([run.triggered_by]);
  for (const c of (Array.isArray(run.checks) ? run.checks : []) as { step?: { by?: string | null }; observation?: { by?: string | null }; by?: string | null }[]) {
    if (c?.step?.by) names.add(c.step.by);
    if (c?.observation?.by) names.add(c.observation.by);
    if (c?.by) names.add(c.by);
  }
  const done = (run.restore as { completedBy?: string } | null)?.completedBy;
  if (done) names.add(done);
  return names;
}

/**
 * Four-eyes sign-off of runs (PERS.2.3.4, DER.4.A14) and the follow-up
 * measures that deviations become. Every review and every change of a
 * measure is also a ledger record.
 */
export class ReviewService {
  private readonly repo: ReviewRepository;
  constructor(
    private readonly db: Kysely<DB>, private readonly repos: Pick<Repositories, 'reviews' | 'ledger'>, private readonly ledger: LedgerService, private readonly clock: Clock,
  ) {
    this.repo = repos.reviews;
  }

  async review(tenantId: string, runId: string, input: { decision: ReviewDecision; comment?: string; deviations?: DeviationInput[] }, reviewer: string) {
    const details: { path: string; message: string }[] = [];
    const comment = (input.comment ?? '').trim();
    const deviations = input.deviations ?? [];
    if (input.decision === 'approved-with-deviations' && deviations.length === 0) details.push({ path: 'deviations', message: 'approved with deviations needs at least one deviation' });
    if (input.decision === 'approved' && deviations.length > 0) details.push({ path: 'deviations', message: 'an approval without deviations has none; use approved-with-deviations' });
    if (input.decision !== 'approved' && comment === '') details.push({ path: 'comment', message: 'say why' });
    deviations.forEach((d, i) => {
      if (!validDate(d.dueDate)) details.push({ path: `deviations[${i}].dueDate`, message: 'a date YYYY-MM-DD' });
    });
    if (details.length) throw new Invalid('invalid review', details);

    const result = await this.db.transaction().execute(async (trx) => {
      const run = await this.repo.runForReview(tenantId, runId, trx);
      if (!run) throw new NotFound(`run ${runId}`);
      if (run.status !== 'finished') throw new Conflict(`run ${runId} is not finished yet`);
      if (carriedOutBy(run).has(reviewer)) {
        throw new Forbidden(`four-eyes principle: ${reviewer} triggered or carried out this run and cannot sign it off; another person must review it`);
      }
      const runRecord = (await this.repos.ledger.bySubject(tenantId, 'run', runId, trx))[0];
      const reviewId = randomUUID();
      const measureIds = deviations.map(() => randomUUID());
      const now = this.clock();
      const record = await this.ledger.append(trx, {
        tenantId, kind: 'review', subjectId: runId, now,
        payload: reviewRecordPayload({ reviewId, runId, planId: run.plan_id, runVerdict: run.verdict, runRecordHash: runRecord?.hash ?? null, decision: input.decision, comment, reviewer, measureIds }),
      });
      await this.repo.insertReview({ id: reviewId, tenantId, runId, decision: input.decision, comment, reviewer, recordHash: record.hash, createdAt: now }, trx);
      let last: LedgerRecord = record;
      for (const [i, d] of deviations.entries()) {
        last = await createMeasure(this.ledger, this.repo, trx, { id: measureIds[i]!, tenantId, planId: run.plan_id, runId, reviewId, title: d.title, owner: d.owner, dueDate: d.dueDate, by: reviewer, now });
      }
      return { reviewId, record, last, measureIds };
    });
    this.ledger.checkpoint(result.last);
    return { id: result.reviewId, runId, decision: input.decision, comment, reviewer, recordHash: result.record.hash, measureIds: result.measureIds };
  }

  listReviews(tenantId: string, runId?: string) {
    return this.repo.reviews(tenantId, runId);
  }

  listMeasures(tenantId: string, f: { status?: MeasureStatus; planId?: string } = {}) {
    return this.repo.measures(tenantId, f);
  }

  /** Finished runs nobody has signed off yet (cancelled ones need no sign-off), newest first. */
  awaitingReview(tenantId: string, limit: number) {
    return this.repo.awaitingReview(tenantId, limit);
  }

  /** The newest reviews of the tenant, with the run's plan and verdict. */
  recentReviews(tenantId: string, limit: number) {
    return this.repo.recentReviews(tenantId, limit);
  }

  /** Passed runs that may close an open measure: up to five newest per plan, after the plan's oldest open measure. */
  retestCandidates(tenantId: string) {
    return this.repo.retestCandidates(tenantId);
  }

  async updateMeasure(tenantId: string, id: string, patch: { status?: 'open' | 'in-progress'; owner?: string; dueDate?: string }, by: string) {
    if (patch.dueDate !== undefined && !validDate(patch.dueDate)) throw new Invalid('invalid measure', [{ path: 'dueDate', message: 'a date YYYY-MM-DD' }]);
    return this.changeMeasure(tenantId, id, by, 'updated', async (m) => {
      if (m.status === 'done') throw new Conflict(`measure ${id} is closed`);
      return { status: patch.status ?? m.status, owner: patch.owner ?? m.owner, due_date: patch.dueDate ?? m.due_date };
    });
  }

  /** A deviation is closed by a re-test: a passed run of the same plan, finished after the measure was created. */
  async closeMeasure(tenantId: string, id: string, runId: string, by: string) {
    return this.changeMeasure(tenantId, id, by, 'closed', async (m, trx) => {
      if (m.status === 'done') throw new Conflict(`measure ${id} is already closed`);
      const run = await this.repo.retestRun(tenantId, runId, trx);
      if (!run) throw new NotFound(`run ${runId}`);
      if (run.plan_id !== m.plan_id) throw new Conflict(`run ${runId} tested plan ${run.plan_id}, the measure belongs to plan ${m.plan_id}`);
      if (run.verdict !== 'passed') throw new Conflict(`run ${runId} did not pass (${run.verdict ?? 'not finished'}); only a passed re-test closes a measure`);
      if (!run.finished_at || run.finished_at <= m.created_at) throw new Conflict(`run ${runId} finished before the measure was created; a re-test must come after`);
      return { status: 'done' as const, closed_by_run_id: runId, closed_at: this.clock() };
    });
  }

  private async changeMeasure(
    tenantId: string, id: string, by: string, action: 'updated' | 'closed',
    change: (m: Awaited<ReturnType<ReviewService['getMeasure']>>, trx: Transaction<DB>) => Promise<Omit<Parameters<ReviewRepository['updateMeasure']>[2], 'updated_at'>>,
  ) {
    const out = await this.db.transaction().execute(async (trx) => {
      const m = await this.getMeasure(tenantId, id, trx);
      const set = await change(m, trx);
      const now = this.clock();
      const row = await this.repo.updateMeasure(tenantId, id, { ...set, updated_at: now }, trx);
      const record = await this.ledger.append(trx, {
        tenantId, kind: 'measure', subjectId: id, now,
        payload: measureChangedPayload({ measureId: id, action, planId: row.plan_id, runId: row.run_id, title: row.title, owner: row.owner, dueDate: row.due_date, status: row.status, closedByRunId: row.closed_by_run_id, by }),
      });
      return { row, record };
    });
    this.ledger.checkpoint(out.record);
    return out.row;
  }

  private async getMeasure(tenantId: string, id: string, trx: Kysely<DB> = this.db) {
    const m = /^[0-9a-f-]{36}$/i.test(id)
      ? await this.repo.measureForUpdate(tenantId, id, trx)
      : undefined;
    if (!m) throw new NotFound(`measure ${id}`);
    return m;
  }
}
