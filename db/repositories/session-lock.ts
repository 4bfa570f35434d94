import pg from 'pg';

/**
 * A PostgreSQL session advisory lock on a connection of its own (not the
 * pool): the lock lives exactly as long as this session, so a process that
 * dies gives it up with its connection.
 */
export class SessionLock {
  private constructor(private readonly client: pg.Client) {}

  /** Connects; `onError` hears of a session that failed later (the lock is gone with it). */
  static async connect(databaseUrl: string, applicationName: string, onError: (err: Error, lock: SessionLock) => void): Promise<SessionLock> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName });
    const lock = new SessionLock(client);
    // a dropped session must not crash the process: the owner notices and reconnects
    client.on('error', (err) => onError(err, lock));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return lock;
  }

  /** Fails if the session is gone (and with it any lock it held). */
  async alive(): Promise<void> {
    await this.client.query('select 1');
  }

  /** Takes the lock on `key` (a bigint as text) if nobody holds it. */
  async tryLock(key: string): Promise<boolean> {
    const res = await this.client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key]);
    return res.rows[0]?.locked === true;
  }

  /** Ends the session: any lock it held is free. */
  end(): Promise<void> {
    return this.client.end();
  }
}
