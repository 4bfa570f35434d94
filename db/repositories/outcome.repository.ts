import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

/** The channel a worker notifies when it hands an outcome over; signers LISTEN on it. */
export const OUTCOME_CHANNEL = 'ernstfall_outcomes';

/**
 * Outcomes of tests that workers hand over to a process holding the signing
 * key (central signing). A worker may hand over only a run it holds (or, for
 * a run nobody holds, one in the status it saw); one outcome per run.
 */
export class OutcomeRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /**
   * Stores the outcome if the run is still in the expected state: held by this
   * worker (`workerId` given and `status` running) or simply in `status`.
   * Returns false when the run moved on (another outcome, a cancel, a lost-run decision).
   */
  submit(e: { runId: string; workerId: string; status: 'queued' | 'running'; heldBy?: string; outcome: unknown }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('runs').select(['id', 'tenant_id']).where('id', '=', e.runId).where('status', '=', e.status);
      if (e.heldBy) q = q.where('worker_id', '=', e.heldBy);
      const run = await q.forUpdate().executeTakeFirst();
      if (!run) return false;
      const inserted = await trx.insertInto('run_outcomes')
        .values({ run_id: run.id, tenant_id: run.tenant_id, worker_id: e.workerId, outcome: JSON.stringify(e.outcome) })
        .onConflict((oc) => oc.column('run_id').doNothing())
        .returning('run_id').executeTakeFirst();
      if (!inserted) return false;
      // delivered at commit: a signer wakes up at once instead of at its next poll
      await sql`select pg_notify(${OUTCOME_CHANNEL}, ${run.id})`.execute(trx);
      return true;
    });
  }

  /** Unsigned outcomes, oldest first. */
  async unsigned(limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('run_outcomes').select('run_id').where('signed_at', 'is', null).orderBy('submitted_at').limit(limit).execute();
    return rows.map((r) => r.run_id);
  }

  /**
   * Takes an unsigned outcome for signing inside the signer's transaction: the
   * run and the outcome stay locked until it commits, so a second signer finds it signed.
   */
  async take(runId: string, trx: Transaction<DB>): Promise<{ workerId: string; outcome: unknown } | undefined> {
    // the run first, then its outcome: the same order as submit(), so a worker handing over and a signer never deadlock
    await trx.selectFrom('runs').select('id').where('id', '=', runId).forUpdate().execute();
    const row = await trx.selectFrom('run_outcomes').select(['worker_id', 'outcome'])
      .where('run_id', '=', runId).where('signed_at', 'is', null).forUpdate().executeTakeFirst();
    if (!row) return undefined;
    await trx.updateTable('run_outcomes').set({ signed_at: sql`now()`, outcome: null }).where('run_id', '=', runId).execute();
    return { workerId: row.worker_id, outcome: row.outcome };
  }

  /** How many outcomes wait for a signer, and since when (the database's clock). */
  async backlog(db: Db = this.db): Promise<{ count: number; oldestAgeSeconds: number }> {
    const r = await sql<{ count: string; age: number | null }>`
      select count(*) as count, extract(epoch from now() - min(submitted_at))::float8 as age
      from run_outcomes where signed_at is null`.execute(db);
    return { count: Number(r.rows[0]?.count ?? 0), oldestAgeSeconds: r.rows[0]?.age ?? 0 };
  }
}
