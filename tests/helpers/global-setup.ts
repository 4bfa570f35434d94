import pg from 'pg';
import { loadEnvFile } from '../../services/config.js';
import { migrate, roleFromUrl } from '../../db/migrate.js';
import { createDocker } from '../../workers/sandbox/docker.js';
import { removeStaleTestSandboxes, STALE_SECONDS } from './stale-sandboxes.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * One migrated template database per test run; every test file clones it
 * (CREATE DATABASE … TEMPLATE …), so files never see each other's rows.
 * Names carry the runner's pid: a second test run on the same machine gets
 * its own template, and only databases of runs that are gone are cleaned up.
 */
export default async function setup(): Promise<() => Promise<void>> {
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  if (!ownerUrl || !appUrl) {
    throw new Error('tests need DATABASE_OWNER_URL and DATABASE_URL: run `npm run setup` first (it writes .ernstfall/env and owner.env)');
  }
  const template = `ernstfall_test_${process.pid}_tpl`;
  process.env.ERNSTFALL_TEST_TEMPLATE = template;
  process.env.ERNSTFALL_TEST_RUN = String(process.pid);
  const admin = new pg.Client({ connectionString: ownerUrl });
  await admin.connect();
  // the integration and browser tiers share one template: the second tier's set-up finds it made
  const made = await admin.query(`select 1 from pg_database where datname = $1`, [template]);
  if (made.rowCount) {
    await admin.end();
    return async () => undefined;
  }
  // sandboxes that killed test runs left (tests/helpers/stale-sandboxes.ts); a failure here fails no test
  await removeStaleTestSandboxes(createDocker(process.env.DOCKER_HOST)).then(
    (r) => {
      const n = r.containers.length + r.volumes.length;
      if (n) console.warn(`global set-up: removed ${r.containers.length} sandbox(es) and ${r.volumes.length} volume(s) of test runs older than ${STALE_SECONDS / 3600} h`);
    },
    (err: Error) => console.warn(`global set-up: stale test sandboxes not removed: ${err.message}`),
  );
  try {
    const old = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'ernstfall\\_test\\_%'`);
    for (const r of old.rows) {
      const pid = Number(/^ernstfall_test_(\d+)_/.exec(r.datname)?.[1]);
      if (!pid || !alive(pid)) await admin.query(`drop database if exists "${r.datname}" with (force)`).catch(() => undefined);
    }
    await admin.query(`create database ${template}`);
  } finally {
    await admin.end();
  }
  const u = new URL(ownerUrl);
  u.pathname = `/${template}`;
  await migrate(u.toString(), roleFromUrl(appUrl));
  return async () => {
    const c = new pg.Client({ connectionString: ownerUrl });
    await c.connect();
    await c.query(`drop database if exists ${template} with (force)`).catch(() => undefined);
    await c.end();
  };
}
