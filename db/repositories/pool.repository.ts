import { sql, type Kysely } from 'kysely';
import type { DB } from '../schema.js';

export interface PoolRunCounts {
  pool: string;
  queued: number;
  running: number;
  /** Seconds the oldest queued run has waited (database clock); 0 when none waits. */
  oldestQueuedAgeSeconds: number;
}

/** What the database knows of worker pools: their queued and running restore tests, and which pools plans name. */
export class PoolRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Queued and running restore tests per pool (pools with none are absent); the wait measured to `now` (business time, as queued_at). */
  async activeRuns(now: Date): Promise<PoolRunCounts[]> {
    const rows = await this.db.selectFrom('runs')
      .select(['pool',
        sql<string>`count(*) filter (where status = 'queued')`.as('queued'),
        sql<string>`count(*) filter (where status = 'running')`.as('running'),
        sql<number | null>`extract(epoch from ${now}::timestamptz - min(queued_at) filter (where status = 'queued'))::float8`.as('age')])
      .where('status', 'in', ['queued', 'running']).where('origin', '=', 'ernstfall')
      .groupBy('pool').execute();
    return rows.map((r) => ({ pool: r.pool, queued: Number(r.queued), running: Number(r.running), oldestQueuedAgeSeconds: Math.max(0, r.age ?? 0) }));
  }

  /** Whether any plan (of any tenant, or of one) names the pool; plans without `sandbox.pool` are the default pool's. */
  async named(pool: string, tenantId?: string): Promise<boolean> {
    let q = this.db.selectFrom('plans').select(sql<number>`1`.as('one'))
      .where(sql<string>`coalesce(definition->'sandbox'->>'pool', 'default')`, '=', pool)
      .where(sql<string>`coalesce(definition->>'kind', 'restore')`, '=', 'restore');
    if (tenantId) q = q.where('tenant_id', '=', tenantId);
    return (await q.limit(1).executeTakeFirst()) !== undefined;
  }

  /** The pools a tenant's plans name. */
  async ofTenant(tenantId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('plans')
      .select(sql<string>`coalesce(definition->'sandbox'->>'pool', 'default')`.as('pool')).distinct()
      .where('tenant_id', '=', tenantId).where(sql<string>`coalesce(definition->>'kind', 'restore')`, '=', 'restore').execute();
    return rows.map((r) => r.pool).sort();
  }
}
