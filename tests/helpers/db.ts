import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Kysely } from 'kysely';
import { loadEnvFile } from '../../services/config.js';
import { createDb } from '../../db/database.js';
import { migrate, roleFromUrl } from '../../db/migrate.js';
import type { DB } from '../../db/schema.js';

export interface TestDatabase {
  name: string;
  /** As the app role (the role the service runs as). */
  appUrl: string;
  /** As the owner role (migrations, superuser-free admin). */
  ownerUrl: string;
  db: Kysely<DB>;
  drop(): Promise<void>;
}

/** The installation's two database URLs (app role, owner role), from the environment or .ernstfall/env and owner.env. */
export function databaseEnv(): { ownerUrl: string; appUrl: string } {
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  if (!ownerUrl || !appUrl) throw new Error('DATABASE_OWNER_URL and DATABASE_URL are needed: run `npm run setup` first (it writes .ernstfall/env and owner.env)');
  return { ownerUrl, appUrl };
}

export function withDb(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** One statement (or several without parameters) on its own connection; `url` names the role and database. */
export async function ownerQuery<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function dropDatabase(ownerUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: ownerUrl });
  await c.connect();
  // backends of just-closed pools can take a moment to exit; the owner may not terminate the app role's sessions itself
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await c.query(`drop database if exists ${name} with (force)`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '42501' || attempt >= 30) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await c.end();
  }
}

function handle(name: string, env: { ownerUrl: string; appUrl: string }, poolSize: number): TestDatabase {
  const db = createDb(withDb(env.appUrl, name), poolSize);
  return {
    name,
    appUrl: withDb(env.appUrl, name),
    ownerUrl: withDb(env.ownerUrl, name),
    db,
    async drop() {
      await db.destroy();
      await dropDatabase(env.ownerUrl, name);
    },
  };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const env = databaseEnv();
  const run = process.env.ERNSTFALL_TEST_RUN ?? String(process.ppid);
  const name = `ernstfall_test_${run}_${randomBytes(4).toString('hex')}`;
  await ownerQuery(env.ownerUrl, `create database ${name} template ${process.env.ERNSTFALL_TEST_TEMPLATE ?? `ernstfall_test_${run}_tpl`}`);
  return handle(name, env, 5);
}

/** A database of a fixed name that may outlive the process (a benchmark's seeded data). */
export interface NamedDatabase extends TestDatabase {
  /** False when it was made (or made again) just now: it holds no seeded rows yet. */
  existed: boolean;
  /** A statement as the owner in this database (seeding, counting, resetting). */
  owner<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  /** Closes the pool and keeps the database for the next run. */
  close(): Promise<void>;
}

/**
 * The benchmarks' databases: `name` (never the installation's database) made
 * and migrated if missing, made again when `fresh`, else brought to the
 * newest schema; the same migrations as the test template
 * (tests/helpers/global-setup.ts). `drop()` removes it, `close()` keeps it.
 */
export async function namedDatabase(name: string, opts: { fresh?: boolean; poolSize?: number } = {}): Promise<NamedDatabase> {
  if (!/^ernstfall_(bench|test)(_[a-z0-9_]+)?$/.test(name)) throw new Error(`${name}: a bench or test database is named ernstfall_bench_… or ernstfall_test_…`);
  const env = databaseEnv();
  const found = (await ownerQuery<{ n: number }>(env.ownerUrl, 'select count(*)::int as n from pg_database where datname = $1', [name]))[0]!.n > 0;
  if (found && opts.fresh) await dropDatabase(env.ownerUrl, name);
  const existed = found && !opts.fresh;
  if (!existed) await ownerQuery(env.ownerUrl, `create database ${name}`);
  await migrate(withDb(env.ownerUrl, name), roleFromUrl(env.appUrl));
  const h = handle(name, env, opts.poolSize ?? 5);
  return { ...h, existed, owner: (text, values) => ownerQuery(h.ownerUrl, text, values), close: () => h.db.destroy() };
}
