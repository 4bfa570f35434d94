import pg from 'pg';
import { OUTCOME_CHANNEL } from './outcome.repository.js';

/** A connection of its own that LISTENs for handed-over outcomes (central signing): a notification per new outcome. */
export class OutcomeListener {
  private constructor(private readonly client: pg.Client) {}

  /** Connects and listens; `onError` hears of a connection that failed later. */
  static async open(databaseUrl: string, onNotify: () => void, onError: (err: Error, listener: OutcomeListener) => void): Promise<OutcomeListener> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: 'ernstfall-outcome-signer' });
    const listener = new OutcomeListener(client);
    client.on('notification', onNotify);
    client.on('error', (err) => onError(err, listener));
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTCOME_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return listener;
  }

  end(): Promise<void> {
    return this.client.end();
  }
}
