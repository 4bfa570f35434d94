import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../services/config.js';
import { createLogger } from '../../services/logger.js';
import { createContainer, type Container } from '../../services/container.js';
import { appDeps, buildApp } from '../../services/api/app.js';
import { startWorker, type RunningWorker } from '../../workers/main.js';
import { LABELS } from '../../workers/sandbox/docker.js';
import type { OutcomeSigner } from '../../services/runs/outcome-signer.js';
import { RestartTestCoordinator } from '../../services/systems/restart-test.service.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { TEST_TOKEN, testConfig, uniquePrefix } from './config.js';

export interface Harness {
  config: Config;
  tdb: TestDatabase;
  c: Container;
  app: FastifyInstance;
  worker?: RunningWorker;
  /** Ends the runs workers hand over, signing their records. */
  signer: OutcomeSigner;
  /** Advances restart tests (every 500 ms), as every signing process does. */
  restarts: RestartTestCoordinator;
  backupRoot: string;
  prefix: string;
  request(method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH', url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  putPlan(plan: Record<string, unknown>): Promise<any>;
  trigger(planId: string): Promise<string>;
  waitForRun(id: string, timeoutMs?: number): Promise<any>;
  /** Waits until the run has entered the phase (e.g. to cancel or kill it mid-restore). */
  waitForPhase(id: string, phase: string, timeoutMs?: number): Promise<void>;
  sandboxesLeft(): Promise<number>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  worker?: boolean;
  env?: Record<string, string | undefined>;
  /** Removed on close unless keepBackupRoot. */
  backupRoot?: string;
  keepBackupRoot?: boolean;
  logSink?: { write(s: string): void };
  /** Business time of the whole container. */
  clock?: () => Date;
  /** Business time of the app alone (pages, API), e.g. a fixed moment over a seeded history while sessions run on real time. */
  appClock?: () => Date;
  /** A database to use instead of a clone of the test template (a benchmark's, tests/helpers/db.ts namedDatabase); dropped on close unless keepDatabase. */
  database?: TestDatabase;
  keepDatabase?: boolean;
  /** Where the signing key (made if missing), trusted keys and checkpoints live; a temporary folder, removed on close, without it. */
  evidenceDir?: string;
}

/** The real stack in-process: its own database, Redis prefix, Docker instance label, backup root and signing key. */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const tdb = opts.database ?? await createTestDatabase();
  const backupRoot = opts.backupRoot ?? await mkdtemp(join(tmpdir(), 'ef-backups-'));
  if (!opts.keepBackupRoot) await chmod(backupRoot, 0o755);
  const tempEvidence = opts.evidenceDir ? undefined : await mkdtemp(join(tmpdir(), 'ef-evidence-'));
  // the Redis prefix of this test's installation: its queue, and the sign-in limits its app shares (not with other test files)
  const prefix = uniquePrefix();
  const config = testConfig({ databaseUrl: tdb.appUrl, backupRoot, evidenceDir: opts.evidenceDir ?? tempEvidence, env: { ERNSTFALL_QUEUE_PREFIX: prefix, ...opts.env } });
  const log = createLogger(config.logLevel, 'ernstfall', opts.logSink);
  const c = createContainer(config, log, { queuePrefix: prefix, clock: opts.clock });
  await c.ledger.init();
  const app = await buildApp({ ...appDeps(c, ['api', 'worker']), ...(opts.appClock && { clock: opts.appClock }) });
  const worker = opts.worker === false ? undefined : await startWorker({ config, db: c.db, redis: c.redis, queue: c.queue, docker: c.docker, log, prefix, clock: c.clock });
  // central signing: workers hand outcomes over; this process holds the key and signs them (as the API role does)
  const signer = c.outcomeSigner({ pollMs: 500 });
  await signer.start();
  // and advances restart tests tier by tier, as every signing process does
  const restarts = new RestartTestCoordinator(c.restartTests, log, 500);
  restarts.start();
  const token = config.auth.bootstrapToken ?? TEST_TOKEN;

  const h: Harness = {
    config, tdb, c, app, worker, signer, restarts, backupRoot, prefix,
    async request(method, url, body, headers = {}) {
      const isText = typeof body === 'string';
      const res = await app.inject({
        method, url,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': isText ? 'application/yaml' : 'application/json' } : {}), ...headers },
        payload: body === undefined ? undefined : isText ? body : JSON.stringify(body),
      });
      let parsed: unknown = res.body;
      try { parsed = JSON.parse(res.body); } catch { /* not JSON */ }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
    async putPlan(plan) {
      const res = await h.request('PUT', `/api/v1/plans/${plan.id as string}`, plan);
      if (res.status !== 200 && res.status !== 201) throw new Error(`PUT plan: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async trigger(planId) {
      const res = await h.request('POST', `/api/v1/plans/${planId}/runs`);
      if (res.status !== 202) throw new Error(`trigger: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    },
    async waitForRun(id, timeoutMs = 150_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const res = await h.request('GET', `/api/v1/runs/${id}`);
        if (res.body?.status === 'finished') return res.body;
        if (Date.now() > deadline) throw new Error(`run ${id} did not finish in time: ${JSON.stringify(res.body)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async waitForPhase(id, phase, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = (await h.request('GET', `/api/v1/runs/${id}`)).body;
        if (r?.phases?.some((p: { name: string }) => p.name === phase)) return;
        if (Date.now() > deadline) throw new Error(`run ${id} did not reach phase ${phase}: ${JSON.stringify(r)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    },
    async sandboxesLeft() {
      const list = await c.docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${config.instance}`] } });
      return list.length;
    },
    async close() {
      await restarts.stop();
      await worker?.close();
      await signer.stop();
      await app.close();
      await Promise.race([c.queue.obliterate(), new Promise((r) => setTimeout(r, 3000).unref())]);
      await c.close();
      if (opts.keepDatabase) await tdb.db.destroy();
      else await tdb.drop();
      if (!opts.keepBackupRoot) await rm(backupRoot, { recursive: true, force: true });
      if (tempEvidence) await rm(tempEvidence, { recursive: true, force: true });
    },
  };
  return h;
}

/** A plan for a PostgreSQL dump with sensible test defaults; override any field. */
export function pgPlan(id: string, path: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    title: `Test ${id}`,
    targets: { rto: '1h', rpo: '26h' },
    source: { type: 'file', path },
    restore: { driver: 'postgres', database: 'app' },
    sandbox: { memory: '1g', cpus: 1, timeout: '10m' },
    checks: [],
    ...over,
  };
}

/** What the installation has on the Docker engine: containers (sandboxes, services, probes), networks, volumes. */
export async function dockerLeftovers(h: Harness): Promise<{ containers: number; networks: number; volumes: number }> {
  const label = [`${LABELS.instance}=${h.config.instance}`];
  return {
    containers: (await h.c.docker.listContainers({ all: true, filters: { label } })).length,
    networks: (await h.c.docker.listNetworks({ filters: { label } })).length,
    volumes: ((await h.c.docker.listVolumes({ filters: { label } })).Volumes ?? []).length,
  };
}
