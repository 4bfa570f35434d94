import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { appDeps, buildApp } from '../../services/api/app.js';
import { buildOpsApp } from '../../services/api/ops-app.js';
import { Scheduler } from '../../services/scheduling/scheduler.js';
import { repoRoot } from '../../services/config.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { startWorker } from '../../workers/main.js';
import { createLogger } from '../../services/logger.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const OTHER_TENANT = '00000000-0000-4000-8000-00000000face';
const DAY = 86_400_000;

let h: Harness;
const apps: FastifyInstance[] = [];
const children: ChildProcess[] = [];

const scrape = (app: FastifyInstance, authorization?: string) =>
  app.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} });

/** The value of one sample, e.g. value(text, 'ernstfall_plans{status="ok"}'); undefined when absent. */
function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

async function metrics(app: FastifyInstance = h.app): Promise<string> {
  const res = await scrape(app, `Bearer ${METRICS_TOKEN}`);
  expect(res.statusCode).toBe(200);
  return res.body;
}

async function statusPlan(id: string, requiredEvery: string | undefined, createdAgoMs: number): Promise<void> {
  await h.putPlan(pgPlan(id, `${id}.dump`, requiredEvery ? { cadence: { requiredEvery } } : {}));
  await h.tdb.db.updateTable('plans').set({ created_at: new Date(Date.now() - createdAgoMs) }).where('id', '=', id).execute();
}

async function heartbeat(ageSql: string): Promise<void> {
  await sql`insert into scheduler_heartbeats (id, is_leader, last_leader_tick_at) values ('metrics-test', true, now() - ${ageSql}::interval)
    on conflict (id) do update set last_leader_tick_at = excluded.last_leader_tick_at`.execute(h.tdb.db);
}

beforeAll(async () => {
  h = await startHarness({ worker: false, env: { ERNSTFALL_METRICS_TOKEN: METRICS_TOKEN } });
  // one plan per status, two overdue
  await statusPlan('overdue-1', 'P1D', 10 * DAY);
  await statusPlan('overdue-2', 'P1D', 5 * DAY);
  await statusPlan('never', 'P30D', DAY);
  await statusPlan('fine', 'P30D', 20 * DAY);
  await seedRun(h, { planId: 'fine', verdict: 'passed', finishedAt: new Date(Date.now() - DAY) });
  await statusPlan('soon', 'P10D', 20 * DAY);
  await seedRun(h, { planId: 'soon', verdict: 'passed', finishedAt: new Date(Date.now() - 9 * DAY) });
  await statusPlan('broken', 'P30D', 20 * DAY);
  await seedRun(h, { planId: 'broken', verdict: 'passed', finishedAt: new Date(Date.now() - 3 * DAY) });
  await seedRun(h, { planId: 'broken', verdict: 'failed', finishedAt: new Date(Date.now() - DAY) });
  await seedRun(h, { planId: 'broken', verdict: 'error', finishedAt: new Date(Date.now() - DAY / 2) });
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  for (const app of apps) await app.close();
  await h?.close();
});

describe('GET /metrics', () => {
  it('does not exist without a configured token (404), whatever is sent', async () => {
    const app = await buildApp({ ...appDeps(h.c, ['api']), metrics: { tenantLabels: false }, clock: h.c.clock });
    apps.push(app);
    const res = await scrape(app);
    expect(res.statusCode).toBe(404);
    // exactly what an unknown path answers
    expect(JSON.parse(res.body)).toEqual(JSON.parse((await app.inject({ method: 'GET', url: '/nothing-here', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).body.replace('/nothing-here', '/metrics')));
    expect((await scrape(app, `Bearer ${METRICS_TOKEN}`)).statusCode).toBe(404);
    expect((await scrape(app, `Bearer ${TEST_TOKEN}`)).statusCode).toBe(404);
  });

  it('refuses a missing or wrong token with 401, also a valid API token; accepts the metrics token (from the environment)', async () => {
    expect(h.config.metrics).toEqual({ token: METRICS_TOKEN, tenantLabels: false });
    for (const auth of [undefined, 'Bearer wrong-token-wrong-token', `Bearer ${TEST_TOKEN}`, `Basic ${METRICS_TOKEN}`, `Bearer ${METRICS_TOKEN}x`, `Bearer ${METRICS_TOKEN.slice(0, -1)}`]) {
      const res = await scrape(h.app, auth);
      expect(res.statusCode, auth ?? 'none').toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.body).not.toContain('ernstfall_plans');
    }
    const ok = await scrape(h.app, `Bearer ${METRICS_TOKEN}`);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.body).toContain('# TYPE ernstfall_plans gauge');
    expect(ok.body).toContain('process_cpu_user_seconds_total'); // prom-client's default process metrics
  });

  it('counts plans per status, over all tenants, without a tenant label by default', async () => {
    const text = await metrics();
    const plans = text.split('\n').filter((l) => l.startsWith('ernstfall_plans{'));
    expect(plans.sort()).toEqual([
      'ernstfall_plans{status="due-soon"} 1', 'ernstfall_plans{status="failing"} 1', 'ernstfall_plans{status="never-tested"} 1',
      'ernstfall_plans{status="ok"} 1', 'ernstfall_plans{status="overdue"} 2',
    ]);
    // cross-check with the API's own status of each plan
    const api = (await h.request('GET', '/api/v1/plans')).body.items as { id: string; status: string }[];
    for (const s of ['failing', 'overdue', 'never-tested', 'due-soon', 'ok']) {
      expect(value(text, `ernstfall_plans{status="${s}"}`), s).toBe(api.filter((p) => p.status === s).length);
    }
    expect(text).not.toContain('tenant=');
  });

  it('counts runs by verdict and active runs by status', async () => {
    let text = await metrics();
    expect(value(text, 'ernstfall_runs_finished_total{verdict="passed"}')).toBe(3);
    expect(value(text, 'ernstfall_runs_finished_total{verdict="failed"}')).toBe(1);
    expect(value(text, 'ernstfall_runs_finished_total{verdict="error"}')).toBe(1);
    expect(value(text, 'ernstfall_runs_finished_total{verdict="cancelled"}')).toBe(0);
    expect(value(text, 'ernstfall_runs_active{status="queued"}')).toBe(0);
    expect(value(text, 'ernstfall_runs_active{status="running"}')).toBe(0);
    expect(value(text, 'ernstfall_queue_oldest_waiting_age_seconds')).toBe(0);
    const queued = await h.trigger('never'); // no worker here: it stays queued
    await h.tdb.db.updateTable('runs').set({ queued_at: new Date(h.c.clock().getTime() - 7 * 60_000) }).where('id', '=', queued).execute();
    text = await metrics();
    expect(value(text, 'ernstfall_runs_active{status="queued"}')).toBe(1);
    // how long the queue's oldest job has waited for a worker (database clock)
    const waited = value(text, 'ernstfall_queue_oldest_waiting_age_seconds')!;
    expect(waited).toBeGreaterThanOrEqual(420);
    expect(waited).toBeLessThan(480);
    expect(value(text, 'ernstfall_runs_finished_total{verdict="passed"}')).toBe(3);
  });

  it('counts notifications by status and the age of the oldest undelivered one (database clock)', async () => {
    let text = await metrics();
    for (const s of ['pending', 'sending', 'sent', 'failed']) expect(value(text, `ernstfall_notifications{status="${s}"}`), s).toBe(0);
    expect(value(text, 'ernstfall_notification_oldest_pending_age_seconds')).toBe(0);
    const row = (status: 'pending' | 'sending' | 'sent' | 'failed', age: string) => ({
      tenant_id: DEFAULT_TENANT_ID, event: 'test', dedupe_key: randomUUID(), recipient: 'it@musterstadt.example', message: '{}',
      status, created_at: sql<Date>`now() - ${age}::interval`,
    });
    await h.tdb.db.insertInto('notifications').values([
      row('pending', '10 minutes'), row('pending', '1 minute'), row('sent', '2 days'), row('failed', '3 days'), row('sending', '5 minutes'),
    ]).execute();
    text = await metrics();
    expect(value(text, 'ernstfall_notifications{status="pending"}')).toBe(2);
    expect(value(text, 'ernstfall_notifications{status="sending"}')).toBe(1);
    expect(value(text, 'ernstfall_notifications{status="sent"}')).toBe(1);
    expect(value(text, 'ernstfall_notifications{status="failed"}')).toBe(1);
    // the sent and failed ones are older, but delivered or given up: they do not count
    const age = value(text, 'ernstfall_notification_oldest_pending_age_seconds')!;
    expect(age).toBeGreaterThanOrEqual(600);
    expect(age).toBeLessThan(660);
  });

  it('labels plan counts with the tenant slug when enabled', async () => {
    const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
    await owner.connect();
    await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbarstadt', 'Nachbarstadt', $2)`, [OTHER_TENANT, h.c.clock()]);
    const def = JSON.stringify({ cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P30D' } });
    await owner.query(`insert into plans (tenant_id, id, title, origin, version_hash, definition, created_at, updated_at) values ($1, 'nachbar', 'x', 'api', 'h', $2, $3, $3)`, [OTHER_TENANT, def, h.c.clock()]);
    await owner.end();

    const labelled = await buildApp({ ...appDeps(h.c, ['api']), metrics: { token: METRICS_TOKEN, tenantLabels: true } });
    apps.push(labelled);
    const text = await metrics(labelled);
    expect(value(text, 'ernstfall_plans{tenant="default",status="overdue"}')).toBe(2);
    expect(value(text, 'ernstfall_plans{tenant="default",status="never-tested"}')).toBe(1);
    expect(value(text, 'ernstfall_plans{tenant="nachbarstadt",status="never-tested"}')).toBe(1);
    expect(value(text, 'ernstfall_plans{tenant="nachbarstadt",status="overdue"}')).toBe(0);
    expect(text).not.toContain('ernstfall_plans{status=');
    // without labels the other tenant's plan is in the total
    expect(value(await metrics(), 'ernstfall_plans{status="never-tested"}')).toBe(2);
  });
});

describe('scheduler health', () => {
  it('reports no scheduler as unhealthy (-1), a fresh leader tick as healthy, an old one as unhealthy', async () => {
    let text = await metrics();
    expect(value(text, 'ernstfall_scheduler_last_tick_age_seconds')).toBe(-1);
    expect(value(text, 'ernstfall_scheduler_healthy')).toBe(0);

    await heartbeat('0 seconds');
    text = await metrics();
    expect(value(text, 'ernstfall_scheduler_healthy')).toBe(1);
    expect(value(text, 'ernstfall_scheduler_last_tick_age_seconds')).toBeLessThan(5);

    await heartbeat('170 seconds');
    expect(value(await metrics(), 'ernstfall_scheduler_healthy')).toBe(1);

    await heartbeat('10 minutes');
    text = await metrics();
    expect(value(text, 'ernstfall_scheduler_healthy')).toBe(0);
    expect(value(text, 'ernstfall_scheduler_last_tick_age_seconds')).toBeGreaterThanOrEqual(600);
  });

  it('the ops app of a scheduler process fails /readyz naming the scheduler while it does not tick; the API process stays ready', async () => {
    const scheduler = new Scheduler(h.tdb.db, h.c.runs, () => new Date(), h.c.log, { databaseUrl: h.tdb.appUrl, id: 'ops-test' });
    const ops = await buildOpsApp({ log: h.c.log, db: h.tdb.db, readiness: [...h.c.readiness(['scheduler']), scheduler.readinessProbe()], metrics: h.config.metrics, clock: h.c.clock });
    apps.push(ops);
    try {
      await heartbeat('10 minutes');
      const down = await ops.inject({ method: 'GET', url: '/readyz' });
      expect(down.statusCode).toBe(503);
      expect(JSON.parse(down.body)).toMatchObject({ failing: ['scheduler'], checks: { database: 'ok', redis: 'ok' } });
      expect(value(await metrics(ops), 'ernstfall_scheduler_healthy')).toBe(0);
      // the API process does not run the scheduler: its readiness does not depend on it
      const api = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(api.statusCode).toBe(200);
      expect(JSON.parse(api.body).checks).not.toHaveProperty('scheduler');

      expect((await scheduler.tick()).leader).toBe(true);
      const up = await ops.inject({ method: 'GET', url: '/readyz' });
      expect(up.statusCode).toBe(200);
      expect(JSON.parse(up.body).checks).toEqual({ database: 'ok', redis: 'ok', scheduler: 'ok' });
      expect(value(await metrics(ops), 'ernstfall_scheduler_healthy')).toBe(1);

      // only probes and metrics: no API, and /metrics with the same token rules
      expect((await ops.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await ops.inject({ method: 'GET', url: '/api/v1/plans', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).statusCode).toBe(404);
      expect((await scrape(ops, 'Bearer wrong-token-wrong-token')).statusCode).toBe(401);
      const noToken = await buildOpsApp({ log: h.c.log, db: h.tdb.db, readiness: [], metrics: { tenantLabels: false }, clock: h.c.clock });
      apps.push(noToken);
      expect((await scrape(noToken, `Bearer ${METRICS_TOKEN}`)).statusCode).toBe(404);
    } finally {
      await scheduler.stop();
    }
  });

  it('a scheduler-only process (npm start scheduler) serves /readyz and /metrics on HOST:PORT and stops cleanly', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/main.ts'), 'scheduler'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        // the service never holds the owner role's password
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DATABASE_OWNER_URL'))),
        DATABASE_URL: h.tdb.appUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn',
        ERNSTFALL_METRICS_TOKEN: METRICS_TOKEN, ERNSTFALL_PLANS_DIR: '/nonexistent', ERNSTFALL_QUEUE_PREFIX: h.prefix, ERNSTFALL_INSTANCE: h.config.instance,
        ERNSTFALL_SIGNING_KEY_FILE: h.config.evidence.signingKeyFile, ERNSTFALL_TRUSTED_KEYS_DIR: h.config.evidence.trustedKeysDir,
        ERNSTFALL_CHECKPOINT_DIR: h.config.evidence.checkpointDir,
      },
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => { output += d; });
    child.stderr!.on('data', (d) => { output += d; });
    const base = `http://127.0.0.1:${port}`;
    const readyz = async (want: (r: { status: number; checks: Record<string, string> }) => boolean) => {
      const deadline = Date.now() + 60_000;
      let last: { status: number; checks: Record<string, string> } | undefined;
      while (Date.now() < deadline && child.exitCode === null) {
        const res = await fetch(`${base}/readyz`).catch(() => undefined);
        if (res) last = { status: res.status, checks: ((await res.json()) as { checks: Record<string, string> }).checks };
        if (last && want(last)) return last;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`readyz: ${JSON.stringify(last)}\n${output}`);
    };
    // the plans here are the default pool's, and no worker serves it: their tests would wait for ever, and /readyz says so
    const unserved = await readyz((r) => r.checks.scheduler === 'ok');
    expect(unserved.status).toBe(503);
    expect(unserved.checks).toMatchObject({ database: 'ok', redis: 'ok', scheduler: 'ok', pools: expect.stringMatching(/^failing: pool default: no live worker/) });
    const scrapeOps = async () => (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(value(await scrapeOps(), 'ernstfall_pool_workers{pool="default"}')).toBe(0);
    const worker = await startWorker({ config: h.config, db: h.c.db, redis: h.c.redis, queue: h.c.queue, docker: h.c.docker, log: createLogger('silent'), prefix: h.prefix, clock: h.c.clock });
    try {
      const ready = await readyz((r) => r.status === 200);
      expect(ready.checks).toEqual({ database: 'ok', redis: 'ok', scheduler: 'ok', pools: 'ok' });
      await new Promise((r) => setTimeout(r, 300)); // past the gauges' shared read of one scrape
      const text = await scrapeOps();
      expect(value(text, 'ernstfall_pool_workers{pool="default"}')).toBe(1);
      expect(value(text, 'ernstfall_scheduler_healthy')).toBe(1);
    } finally {
      await worker.close();
    }
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/api/v1/plans`)).status).toBe(404);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited, output).toBe(0);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}
