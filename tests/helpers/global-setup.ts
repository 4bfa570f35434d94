import pg from 'pg';
import { loadEnvFile } from '../../services/config.js';
import { migrate, roleFromUrl } from '../../db/migrate.js';

export const TEMPLATE_DB = 'ernstfall_test_template';

/**
 * One migrated template database per test run; every test file clones it
 * (CREATE DATABASE … TEMPLATE …), so files never see each other's rows.
 */
export default async function setup(): Promise<void> {
  loadEnvFile();
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  if (!ownerUrl || !appUrl) {
    throw new Error('tests need DATABASE_OWNER_URL and DATABASE_URL: run `npm run setup` first (it writes .ernstfall/env)');
  }
  const admin = new pg.Client({ connectionString: ownerUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${TEMPLATE_DB} with (force)`);
    await admin.query(`create database ${TEMPLATE_DB}`);
    // leftovers from an interrupted earlier run
    const old = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'ernstfall_test_%' and datname <> $1`, [TEMPLATE_DB]);
    for (const r of old.rows) await admin.query(`drop database if exists "${r.datname}" with (force)`);
  } finally {
    await admin.end();
  }
  const u = new URL(ownerUrl);
  u.pathname = `/${TEMPLATE_DB}`;
  await migrate(u.toString(), roleFromUrl(appUrl));
}
