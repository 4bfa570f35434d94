import type { Kysely } from 'kysely';
import type { DB, RunStatus, Verdict } from '../schema.js';

/** A queued job's run as the queue view shows it: the run, its plan and its tenant. */
export interface QueueRunRow {
  id: string;
  tenantId: string;
  tenantSlug: string;
  tenantName: string;
  planId: string;
  planTitle: string | null;
  status: RunStatus;
  verdict: Verdict | null;
  pool: string;
  queuedAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The runs behind queue jobs (the queue holds only ids; the database says whose run it is). */
export class QueueRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** The runs of these ids, of one tenant if given (ids of other tenants are simply absent). */
  async runs(ids: string[], tenantId?: string): Promise<QueueRunRow[]> {
    const valid = [...new Set(ids.filter((id) => UUID.test(id)))];
    if (!valid.length) return [];
    let q = this.db.selectFrom('runs')
      .innerJoin('tenants', 'tenants.id', 'runs.tenant_id')
      .leftJoin('plans', (j) => j.onRef('plans.tenant_id', '=', 'runs.tenant_id').onRef('plans.id', '=', 'runs.plan_id'))
      .select(['runs.id', 'runs.tenant_id', 'tenants.slug', 'tenants.name', 'runs.plan_id', 'plans.title', 'runs.status', 'runs.verdict', 'runs.pool', 'runs.queued_at'])
      .where('runs.id', 'in', valid);
    if (tenantId !== undefined) q = q.where('runs.tenant_id', '=', tenantId);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: r.id, tenantId: r.tenant_id, tenantSlug: r.slug, tenantName: r.name, planId: r.plan_id, planTitle: r.title ?? null,
      status: r.status, verdict: r.verdict, pool: r.pool, queuedAt: r.queued_at,
    }));
  }
}
