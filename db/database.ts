import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';

// int8 (count(*)) as number: our counts stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
// date stays 'YYYY-MM-DD': a calendar day, not an instant in the server's time zone
pg.types.setTypeParser(1082, (v) => v);

export function createDb(connectionString: string, max = 10): Kysely<DB> {
  const pool = new pg.Pool({ connectionString, max, application_name: 'ernstfall' });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => undefined);
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export type { DB };
