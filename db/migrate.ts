import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { pathToFileURL } from 'node:url';
import { loadEnvFile } from '../services/config.js';
import { migrations } from './migrations/index.js';

/** Tables the app role may read and write; nothing else, and never DELETE. */
export const APP_GRANTS: Record<string, string[]> = {
  // provider admins create tenants and may rename or disable them; never delete
  tenants: ['SELECT', 'INSERT', 'UPDATE (name, disabled_at)'],
  plans: ['SELECT', 'INSERT', 'UPDATE'],
  plan_versions: ['SELECT', 'INSERT'],
  runs: ['SELECT', 'INSERT', 'UPDATE'],
  signing_keys: ['SELECT', 'INSERT'],
  // append-only: no UPDATE, no DELETE (and a trigger refuses both for everyone)
  ledger_records: ['SELECT', 'INSERT'],
  // a chain's ledger id: made once, never changed (trigger as on ledger_records)
  ledger_chains: ['SELECT', 'INSERT'],
  // only the content may be pruned after its retention
  ledger_attachments: ['SELECT', 'INSERT', 'UPDATE (content, pruned_at)'],
  api_tokens: ['SELECT', 'INSERT', 'UPDATE (revoked_at, last_used_at)'],
  // per-plan tokens of external plans: revoked, never deleted
  ingest_tokens: ['SELECT', 'INSERT', 'UPDATE (revoked_at, last_used_at)'],
  // what people hand in during a manual test or exercise: its content moves into the run's record at completion
  run_uploads: ['SELECT', 'INSERT', 'UPDATE (content)'],
  // a worker's outcome waits here for a process with the signing key; signed, it gives up its content
  run_outcomes: ['SELECT', 'INSERT', 'UPDATE (outcome, signed_at)'],
  // systems are changed and retired, never deleted
  systems: ['SELECT', 'INSERT', 'UPDATE'],
  users: ['SELECT', 'INSERT', 'UPDATE'],
  sessions: ['SELECT', 'INSERT', 'UPDATE'],
  provider_grants: ['SELECT', 'INSERT', 'UPDATE (revoked_at)'],
  reviews: ['SELECT', 'INSERT'],
  measures: ['SELECT', 'INSERT', 'UPDATE'],
  plan_schedules: ['SELECT', 'INSERT', 'UPDATE'],
  scheduler_heartbeats: ['SELECT', 'INSERT', 'UPDATE'],
  alerts: ['SELECT', 'INSERT', 'UPDATE'],
  // the outbox keeps every notification: no DELETE
  notifications: ['SELECT', 'INSERT', 'UPDATE'],
  calendar_feeds: ['SELECT', 'INSERT', 'UPDATE (revoked_at, last_used_at)'],
  // accepted baselines of the built-in drift checks: a record, never changed
  plan_baselines: ['SELECT', 'INSERT'],
  // per plan: its newest decisive and passed run (kept by triggers on runs) and the cached due dates; never deleted
  plan_states: ['SELECT', 'INSERT', 'UPDATE'],
  // a process's RTO: changed, never deleted
  processes: ['SELECT', 'INSERT', 'UPDATE (rto_seconds, updated_by, updated_at)'],
  // restart tests advance and end; never deleted
  restart_tests: ['SELECT', 'INSERT', 'UPDATE'],
};

export function roleFromUrl(url: string): string {
  const user = decodeURIComponent(new URL(url).username);
  if (!/^[a-z_][a-z0-9_]*$/.test(user)) throw new Error('app role name must be a plain lower-case identifier');
  return user;
}

/** Runs pending migrations as the owner role, then (re)applies the app role's grants. */
export async function migrate(ownerUrl: string, appRole: string): Promise<string[]> {
  const pool = new pg.Pool({ connectionString: ownerUrl, max: 1 });
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  try {
    // migrations made side by side may land out of name order; each is independent, so a missing earlier one still runs
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
    const { error, results } = await migrator.migrateToLatest();
    const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    if (error) throw error instanceof Error ? error : new Error(String(error));
    await sql`revoke all on all tables in schema public from public`.execute(db);
    await sql`grant usage on schema public to ${sql.id(appRole)}`.execute(db);
    for (const [table, privileges] of Object.entries(APP_GRANTS)) {
      await sql`revoke all on ${sql.id(table)} from ${sql.id(appRole)}`.execute(db);
      await sql.raw(`grant ${privileges.join(', ')} on "${table}" to "${appRole}"`).execute(db);
    }
    return applied;
  } finally {
    await db.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  if (!ownerUrl || !appUrl) {
    console.error('migrate: DATABASE_OWNER_URL and DATABASE_URL are required (run npm run setup)');
    process.exit(1);
  }
  migrate(ownerUrl, roleFromUrl(appUrl))
    .then((applied) => {
      console.log(applied.length ? `migrations: applied ${applied.join(', ')}` : 'migrations: up to date');
    })
    .catch((err: Error) => {
      console.error(`migrate: ${err.message}`);
      process.exit(1);
    });
}
