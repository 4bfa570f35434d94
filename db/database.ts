import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';

// int8 (count(*)) as number: our counts stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
// date stays 'YYYY-MM-DD': a calendar day, not an instant in the server's time zone
pg.types.setTypeParser(1082, (v) => v);

/** SQL text → statement name, for the texts prepared() marked. */
const PREPARED = new Map<string, string>();

/**
 * Marks constant SQL text (parameters only, never built from input) to be
 * sent as a named prepared statement: each connection parses it once, and
 * after five executions PostgreSQL keeps a generic plan instead of planning
 * it on every call. For large queries run often, whose planning costs more
 * than their execution (the dashboard's: 1–30 ms to plan, about 1 ms to run
 * for 200 plans). Returns the text unchanged; the name is derived from it, so
 * two texts never share one.
 */
export function prepared(text: string): string {
  if (!PREPARED.has(text)) PREPARED.set(text, `ef_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`);
  return text;
}

type Query = (...args: unknown[]) => unknown;

/** Makes the client send the texts prepared() marked as named statements; everything else goes as pg sends it. */
function preparing(client: pg.PoolClient): void {
  const query = client.query.bind(client) as unknown as Query;
  const wrapped: Query = (text, values, ...rest) => {
    const name = typeof text === 'string' && (values === undefined || Array.isArray(values)) ? PREPARED.get(text) : undefined;
    return name ? query({ name, text, values }, ...rest) : query(text, values, ...rest);
  };
  (client as unknown as { query: Query }).query = wrapped;
}

export function createDb(connectionString: string, max = 10): Kysely<DB> {
  const pool = new pg.Pool({ connectionString, max, application_name: 'ernstfall' });
  pool.on('connect', preparing);
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => undefined);
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export type { DB };
