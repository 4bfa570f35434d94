import { sql, type Kysely } from 'kysely';
import type { DB, NotificationStatus, RunStatus, Verdict } from '../schema.js';

/** Counts for the Prometheus gauges; ages by the database clock, so hosts' clock skew does not matter. */
export class MetricsRepository {
  constructor(private readonly db: Kysely<DB>) {}

  tenants() {
    return this.db.selectFrom('tenants').select(['id', 'slug']).where('slug', '!=', '_provider').orderBy('slug').execute();
  }

  async activeRuns(): Promise<{ status: RunStatus; n: number }[]> {
    return this.db.selectFrom('runs').select(['status', sql<number>`count(*)::int`.as('n')])
      .where('status', 'in', ['queued', 'running']).groupBy('status').execute();
  }

  async finishedRuns(): Promise<{ verdict: Verdict | null; n: number }[]> {
    return this.db.selectFrom('runs').select(['verdict', sql<number>`count(*)::int`.as('n')])
      .where('status', '=', 'finished').groupBy('verdict').execute();
  }

  async notifications(): Promise<{ status: NotificationStatus; n: number }[]> {
    return this.db.selectFrom('notifications').select(['status', sql<number>`count(*)::int`.as('n')]).groupBy('status').execute();
  }

  /** Seconds since the oldest notification not yet delivered (pending or sending) was written; 0 when there is none. */
  async oldestUndeliveredAgeSeconds(): Promise<number> {
    const row = await this.db.selectFrom('notifications')
      .select(sql<number | null>`extract(epoch from now() - min(created_at))::float8`.as('age'))
      .where('status', 'in', ['pending', 'sending'])
      .executeTakeFirst();
    return Math.max(0, row?.age ?? 0);
  }

  /** Seconds the oldest queued restore test has waited for a worker until `now` (business time, as queued_at); 0 when none waits. */
  async oldestQueuedAgeSeconds(now: Date): Promise<number> {
    const row = await this.db.selectFrom('runs')
      .select(sql<number | null>`extract(epoch from ${now}::timestamptz - min(queued_at))::float8`.as('age'))
      .where('status', '=', 'queued').where('origin', '=', 'ernstfall')
      .executeTakeFirst();
    return Math.max(0, row?.age ?? 0);
  }
}
