import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, MeasureStatus, ReviewDecision } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

export const MEASURE_COLUMNS = ['id', 'tenant_id', 'plan_id', 'run_id', 'review_id', 'title', 'owner', 'due_date', 'status', 'closed_by_run_id', 'closed_at', 'created_by', 'created_at', 'updated_at'] as const;
/** What reports show of a measure. */
const REPORT_MEASURE_COLUMNS = ['id', 'plan_id', 'run_id', 'title', 'owner', 'due_date', 'status', 'closed_by_run_id', 'closed_at'] as const;

/** Reviews and follow-up measures: the sign-off of finished runs (four-eyes) and what a deviation leaves to do. */
export class ReviewRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** The run a review signs off, locked until the review is stored. */
  runForReview(tenantId: string, runId: string, trx: Transaction<DB>) {
    return trx.selectFrom('runs').select(['id', 'plan_id', 'status', 'triggered_by', 'verdict', 'checks', 'restore'])
      .where('tenant_id', '=', tenantId).where('id', '=', runId).forUpdate().executeTakeFirst();
  }

  async insertReview(r: { id: string; tenantId: string; runId: string; decision: ReviewDecision; comment: string; reviewer: string; recordHash: string; createdAt: Date }, trx: Db = this.db): Promise<void> {
    await trx.insertInto('reviews').values({
      id: r.id, tenant_id: r.tenantId, run_id: r.runId, decision: r.decision, comment: r.comment, reviewer: r.reviewer, record_hash: r.recordHash, created_at: r.createdAt,
    }).execute();
  }

  reviews(tenantId: string, runId?: string, trx: Db = this.db) {
    let q = trx.selectFrom('reviews').select(['id', 'run_id', 'decision', 'comment', 'reviewer', 'record_hash', 'created_at']).where('tenant_id', '=', tenantId);
    if (runId) q = q.where('run_id', '=', runId);
    return q.orderBy('created_at').execute();
  }

  async insertMeasure(
    m: { id: string; tenantId: string; planId: string; runId: string; reviewId: string | null; title: string; owner: string; dueDate: string; by: string; now: Date },
    trx: Db = this.db,
  ): Promise<void> {
    await trx.insertInto('measures').values({
      id: m.id, tenant_id: m.tenantId, plan_id: m.planId, run_id: m.runId, review_id: m.reviewId, title: m.title, owner: m.owner,
      due_date: m.dueDate, status: 'open', created_by: m.by,
      created_at: m.now, updated_at: m.now,
    }).execute();
  }

  measures(tenantId: string, f: { status?: MeasureStatus; planId?: string } = {}, trx: Db = this.db) {
    let q = trx.selectFrom('measures').select(MEASURE_COLUMNS).where('tenant_id', '=', tenantId);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.planId) q = q.where('plan_id', '=', f.planId);
    return q.orderBy('due_date').orderBy('created_at').execute();
  }

  /** A measure, locked for a change. */
  measureForUpdate(tenantId: string, id: string, trx: Db = this.db) {
    return trx.selectFrom('measures').select(MEASURE_COLUMNS).where('tenant_id', '=', tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
  }

  updateMeasure(
    tenantId: string, id: string,
    set: { status?: MeasureStatus; owner?: string; due_date?: string; closed_by_run_id?: string; closed_at?: Date; updated_at: Date }, trx: Db = this.db,
  ) {
    return trx.updateTable('measures').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).returning(MEASURE_COLUMNS).executeTakeFirstOrThrow();
  }

  /** The run that is to close a measure: its plan, verdict and end. */
  retestRun(tenantId: string, runId: string, trx: Db = this.db) {
    return trx.selectFrom('runs').select(['plan_id', 'verdict', 'finished_at']).where('tenant_id', '=', tenantId).where('id', '=', runId).executeTakeFirst();
  }

  /** The run protocol's reviews of one run, oldest first. */
  reviewsForProtocol(tenantId: string, runId: string) {
    return this.db.selectFrom('reviews').select(['decision', 'comment', 'reviewer', 'created_at', 'record_hash'])
      .where('tenant_id', '=', tenantId).where('run_id', '=', runId).orderBy('created_at').execute();
  }

  /** The measures a run opened or closed. */
  measuresOfRun(tenantId: string, runId: string) {
    return this.db.selectFrom('measures').select(REPORT_MEASURE_COLUMNS)
      .where('tenant_id', '=', tenantId).where((eb) => eb.or([eb('run_id', '=', runId), eb('closed_by_run_id', '=', runId)])).execute();
  }

  /** Every measure of the tenant by due date (the audit report). */
  measuresByDueDate(tenantId: string) {
    return this.db.selectFrom('measures').select(REPORT_MEASURE_COLUMNS).where('tenant_id', '=', tenantId).orderBy('due_date').execute();
  }

  /** Finished runs nobody has signed off yet (cancelled ones need no sign-off), newest first. */
  awaitingReview(tenantId: string, limit: number) {
    return this.db.selectFrom('runs as r').innerJoin('plans as p', (j) => j.onRef('p.tenant_id', '=', 'r.tenant_id').onRef('p.id', '=', 'r.plan_id'))
      .select(['r.id', 'r.plan_id', 'p.title', 'r.verdict', 'r.finished_at', 'r.triggered_by'])
      .where('r.tenant_id', '=', tenantId).where('r.status', '=', 'finished').where('r.verdict', '<>', 'cancelled')
      .where(({ not, exists, selectFrom }) => not(exists(
        selectFrom('reviews as v').select(sql`1`.as('x')).whereRef('v.tenant_id', '=', 'r.tenant_id').whereRef('v.run_id', '=', 'r.id'),
      )))
      .orderBy('r.finished_at', 'desc').orderBy('r.id', 'desc').limit(limit).execute();
  }

  recentReviews(tenantId: string, limit: number) {
    return this.db.selectFrom('reviews as v')
      .innerJoin('runs as r', (j) => j.onRef('r.tenant_id', '=', 'v.tenant_id').onRef('r.id', '=', 'v.run_id'))
      .select(['v.id', 'v.run_id', 'v.decision', 'v.comment', 'v.reviewer', 'v.created_at', 'r.plan_id', 'r.verdict'])
      .where('v.tenant_id', '=', tenantId).orderBy('v.created_at', 'desc').limit(limit).execute();
  }

  /** Passed runs that may close an open measure: up to five newest per plan, after the plan's oldest open measure. */
  async retestCandidates(tenantId: string): Promise<{ id: string; plan_id: string; finished_at: Date }[]> {
    const res = await sql<{ id: string; plan_id: string; finished_at: Date }>`
      select id, plan_id, finished_at from (
        select r.id, r.plan_id, r.finished_at, row_number() over (partition by r.plan_id order by r.finished_at desc, r.id desc) as n
        from runs r
        join (select plan_id, min(created_at) as since from measures where tenant_id = ${tenantId} and status <> 'done' group by plan_id) m
          on m.plan_id = r.plan_id
        where r.tenant_id = ${tenantId} and r.verdict = 'passed' and r.finished_at > m.since
      ) x where n <= 5 order by plan_id, finished_at desc`.execute(this.db);
    return res.rows;
  }
}
