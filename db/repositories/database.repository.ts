import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../schema.js';

/** The database itself: whether it answers, and advisory locks that are about no table. */
export class DatabaseRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Readiness: the database answers a query. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** A transaction-level advisory lock on a name, if nobody holds it: exactly one of several processes acts. */
  async tryTransactionLock(name: string, trx: Transaction<DB>): Promise<boolean> {
    const got = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtextextended(${name}, 0)) as ok`.execute(trx);
    return got.rows[0]?.ok === true;
  }
}
