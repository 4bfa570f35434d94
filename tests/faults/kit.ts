/**
 * Infrastructure of the fault campaign (npm run test:faults), kept apart from
 * the machine's PostgreSQL (5432), Redis (6379) and Docker engine, which other
 * test runs use at the same time and which are never stopped here:
 *
 *   PostgreSQL  its own cluster `15/ernstfall-faults` on port 5440 (pg_createcluster, pg_ctlcluster)
 *   Redis       a redis-server child process on port 6390, killed and started again by the tests
 *   Docker      the second engine of tests/fixtures/second-engine.ts, stopped and started again
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, chmod, appendFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type Docker from 'dockerode';
import { migrate } from '../../db/migrate.js';
import { createLogger } from '../../services/logger.js';
import { createContainer, type Container } from '../../services/container.js';
import { appDeps, buildApp } from '../../services/api/app.js';
import type { Config } from '../../services/config.js';
import type { OutcomeSigner } from '../../services/runs/outcome-signer.js';
import { startWorker, type RunningWorker } from '../../workers/main.js';
import { LABELS } from '../../workers/sandbox/docker.js';
import { TEST_TOKEN, testConfig, uniquePrefix } from '../helpers/config.js';
import { ENGINE2_HOST, startSecondEngine } from '../fixtures/second-engine.js';
import { run } from '../fixtures/host-dumps.js';
import { until } from '../helpers/until.js';

export const SANDBOX_IMAGE = 'ernstfall/sandbox-postgres:15';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// ---- PostgreSQL: a cluster of its own -------------------------------------------------------------

export const PG_VERSION = '15';
export const PG_CLUSTER = 'ernstfall-faults';
export const PG_PORT = 5440;
const OWNER = 'ef_fault_owner';
const APP = 'ef_fault_app';

async function psqlAsPostgres(sql: string, db = 'postgres'): Promise<string> {
  const r = await run('runuser', ['-u', 'postgres', '--', 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-p', String(PG_PORT), '-d', db, '-c', sql]);
  if (r.code !== 0) throw new Error(`psql on the fault cluster failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

async function pgctl(action: 'start' | 'stop' | 'restart', extra: string[] = []): Promise<void> {
  const r = await run('pg_ctlcluster', [PG_VERSION, PG_CLUSTER, action, ...extra]);
  if (r.code !== 0) throw new Error(`pg_ctlcluster ${action} ${PG_CLUSTER}: ${r.stderr.trim()}`);
}

export interface FaultDatabase {
  name: string;
  appUrl: string;
  ownerUrl: string;
  drop(): Promise<void>;
}

export interface FaultPostgres {
  /** Stops the cluster (fast: sessions are cut, as in a crash of the server's connections). */
  stop(): Promise<void>;
  start(): Promise<void>;
  createDatabase(): Promise<FaultDatabase>;
}

/** The fault cluster, created on first use (and kept: it is the campaign's own), with an owner and an app role. */
export async function faultPostgres(): Promise<FaultPostgres> {
  const list = await run('pg_lsclusters', ['-h']);
  if (!list.stdout.split('\n').some((l) => l.split(/\s+/)[1] === PG_CLUSTER)) {
    const r = await run('pg_createcluster', [PG_VERSION, PG_CLUSTER, '-p', String(PG_PORT), '--', '--auth-local=peer', '--auth-host=scram-sha-256']);
    if (r.code !== 0) throw new Error(`pg_createcluster: ${r.stderr.trim()}`);
    // a test cluster: durability off, few connections are enough
    const conf = `/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}/conf.d/faults.conf`;
    await appendFile(conf, 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\nlisten_addresses = \'127.0.0.1\'\n');
  }
  if (!(await portOpen(PG_PORT))) await pgctl('start');
  // fresh passwords every campaign: nothing to keep
  const ownerPw = randomBytes(12).toString('hex');
  const appPw = randomBytes(12).toString('hex');
  await psqlAsPostgres(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${OWNER}') THEN CREATE ROLE ${OWNER} LOGIN CREATEDB; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP}') THEN CREATE ROLE ${APP} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; END IF;
  END $$; ALTER ROLE ${OWNER} PASSWORD '${ownerPw}'; ALTER ROLE ${APP} PASSWORD '${appPw}';`);
  const url = (user: string, pw: string, db: string) => `postgres://${user}:${pw}@127.0.0.1:${PG_PORT}/${db}`;
  return {
    stop: () => pgctl('stop', ['-m', 'fast']),
    start: () => pgctl('start'),
    async createDatabase() {
      const name = `ef_faults_${process.pid}_${randomBytes(3).toString('hex')}`;
      await psqlAsPostgres(`CREATE DATABASE ${name} OWNER ${OWNER}`);
      await psqlAsPostgres(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC; GRANT CONNECT, TEMP ON DATABASE ${name} TO ${APP};`);
      await psqlAsPostgres(`REVOKE CREATE ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO ${OWNER};`, name);
      const ownerUrl = url(OWNER, ownerPw, name);
      await migrate(ownerUrl, APP);
      return {
        name, ownerUrl, appUrl: url(APP, appPw, name),
        async drop() {
          await psqlAsPostgres(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
        },
      };
    },
  };
}

// ---- Redis: a child process of its own --------------------------------------------------------------

export interface FaultRedis {
  url: string;
  start(): Promise<void>;
  /** SIGKILL: no persistence, so every key (queued jobs, locks) is gone when it comes back. */
  kill(): Promise<void>;
}

/** The pid of the campaign's Redis: a campaign killed before its end leaves it running, and the next one stops it. */
const REDIS_PIDFILE = join(tmpdir(), 'ernstfall-faults-redis.pid');

/** Stops a Redis an earlier campaign left behind on `port` (its pid in REDIS_PIDFILE, its command line still ours). */
async function stopLeftoverRedis(port: number): Promise<void> {
  const pid = Number(existsSync(REDIS_PIDFILE) ? readFileSync(REDIS_PIDFILE, 'utf8').trim() : NaN);
  const cmdline = Number.isInteger(pid) && pid > 1 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  if (!cmdline.startsWith('redis-server') || !cmdline.includes(`:${port}`)) return;
  process.kill(pid, 'SIGKILL');
  await until('the left-over fault Redis to stop', async () => ((await portOpen(port)) ? undefined : true), 10_000, 50);
}

export async function faultRedis(port = 6390): Promise<FaultRedis> {
  if (await portOpen(port)) await stopLeftoverRedis(port);
  if (await portOpen(port)) throw new Error(`port ${port} is taken: the fault campaign's Redis needs it`);
  let child: ChildProcess | null = null;
  const r: FaultRedis = {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
      if (child.pid) await writeFile(REDIS_PIDFILE, String(child.pid));
      await until('the fault Redis to listen', async () => ((await portOpen(port)) ? true : undefined), 10_000, 50);
    },
    async kill() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const gone = new Promise((res) => c.once('exit', res));
      c.kill('SIGKILL');
      await gone;
    },
  };
  await r.start();
  return r;
}

// ---- Docker: the second engine ----------------------------------------------------------------------

export interface FaultEngine {
  host: string;
  docker: Docker;
  /** Stops dockerd (SIGTERM, as `systemctl restart docker` does); resolves when the process is gone. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

const ENGINE_PIDFILE = '/run/ernstfall-engine2/docker.pid';

export async function faultEngine(): Promise<FaultEngine> {
  let e = await startSecondEngine([SANDBOX_IMAGE]);
  const engine: FaultEngine = {
    host: ENGINE2_HOST,
    get docker() {
      return e.docker;
    },
    async stop() {
      const pid = existsSync(ENGINE_PIDFILE) ? Number(readFileSync(ENGINE_PIDFILE, 'utf8').trim()) : NaN;
      if (!pid) throw new Error('the second engine has no pid file');
      process.kill(pid, 'SIGTERM');
      await until('the second dockerd to exit', async () => {
        try {
          process.kill(pid, 0);
          return undefined;
        } catch {
          return true;
        }
      }, 60_000, 100);
    },
    async start() {
      e = await startSecondEngine([SANDBOX_IMAGE]);
    },
  };
  return engine;
}

// ---- the stack: API (in-process, for requests), worker and signer against the fault infrastructure ---

export interface FaultStack {
  config: Config;
  c: Container;
  app: FastifyInstance;
  worker?: RunningWorker;
  /** Undefined with `signer: false`: then only processes holding the key that the test starts end handed-over runs. */
  signer?: OutcomeSigner;
  backupRoot: string;
  db: FaultDatabase;
  /** The environment that gives a child process (tests/helpers/processes.ts) this stack's installation: database, Redis prefix, engine, keys. */
  env: Record<string, string>;
  request(method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: any }>;
  putPlan(plan: Record<string, unknown>): Promise<void>;
  trigger(planId: string): Promise<string>;
  /** The run as the database has it now (undefined while the database is unreachable). */
  runRow(id: string): Promise<{ status: string; verdict: string | null; findings: { code: string; severity: string; message: string }[]; phases: { name: string; status: string; note?: string }[] } | undefined>;
  waitForPhase(id: string, phase: string, timeoutMs?: number): Promise<void>;
  waitForRun(id: string, timeoutMs: number): Promise<NonNullable<Awaited<ReturnType<FaultStack['runRow']>>>>;
  sandboxesLeft(): Promise<number>;
  close(): Promise<void>;
}

export async function startFaultStack(opts: {
  pg: FaultPostgres; redisUrl: string; dockerHost: string; backupRoot: string; worker?: boolean; signer?: boolean; env?: Record<string, string>;
}): Promise<FaultStack> {
  const db = await opts.pg.createDatabase();
  await chmod(opts.backupRoot, 0o755);
  const prefix = uniquePrefix();
  const over = {
    ERNSTFALL_QUEUE_PREFIX: prefix, REDIS_URL: opts.redisUrl, DOCKER_HOST: opts.dockerHost,
    ERNSTFALL_STALE_SECONDS: '6', ERNSTFALL_HEARTBEAT_MS: '500', ...opts.env,
  };
  const config = testConfig({ databaseUrl: db.appUrl, backupRoot: opts.backupRoot, env: over });
  const env: Record<string, string> = {
    // a child's warnings and errors end up in ServiceProcess.output()
    LOG_LEVEL: 'warn',
    // a worker's /healthz and /metrics on a port of its own, never the installation's 8080
    PORT: '0',
    ...over,
    DATABASE_URL: db.appUrl, ERNSTFALL_BACKUP_ROOTS: opts.backupRoot, ERNSTFALL_INSTANCE: config.instance,
    ERNSTFALL_BOOTSTRAP_TOKEN: TEST_TOKEN, ERNSTFALL_SANDBOX_PULL: 'never', ERNSTFALL_SETTLE_SECONDS: '0', ERNSTFALL_PLANS_DIR: '/nonexistent',
    ERNSTFALL_SIGNING_KEY_FILE: config.evidence.signingKeyFile, ERNSTFALL_TRUSTED_KEYS_DIR: config.evidence.trustedKeysDir,
    ERNSTFALL_CHECKPOINT_DIR: config.evidence.checkpointDir,
  };
  const log = createLogger(config.logLevel, 'ernstfall-faults');
  const c = createContainer(config, log, { queuePrefix: prefix });
  await c.ledger.init();
  const app = await buildApp({ ...appDeps(c, ['api', 'worker']) });
  const worker = opts.worker === false ? undefined : await startWorker({ config, db: c.db, redis: c.redis, queue: c.queue, docker: c.docker, log, prefix, clock: c.clock });
  const signer = opts.signer === false ? undefined : c.outcomeSigner({ pollMs: 500 });
  await signer?.start();
  const s: FaultStack = {
    config, c, app, worker, signer, backupRoot: opts.backupRoot, db, env,
    async request(method, url, body) {
      const res = await app.inject({
        method, url, headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
      let parsed: unknown = res.body;
      try { parsed = JSON.parse(res.body); } catch { /* not JSON */ }
      return { status: res.statusCode, body: parsed };
    },
    async putPlan(plan) {
      const res = await s.request('PUT', `/api/v1/plans/${plan.id as string}`, plan);
      if (res.status !== 200 && res.status !== 201) throw new Error(`PUT plan: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async trigger(planId) {
      const res = await s.request('POST', `/api/v1/plans/${planId}/runs`);
      if (res.status !== 202) throw new Error(`trigger: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    },
    async runRow(id) {
      const r = await c.db.selectFrom('runs').select(['status', 'verdict', 'findings', 'phases']).where('id', '=', id).executeTakeFirst().catch(() => undefined);
      return r as never;
    },
    async waitForPhase(id, phase, timeoutMs = 60_000) {
      await until(`run ${id} to reach ${phase}`, async () => {
        const r = await s.runRow(id);
        if (r?.status === 'finished') throw new Error(`run ${id} finished before ${phase}: ${JSON.stringify(r)}`);
        return r?.phases?.some((p) => p.name === phase) ? true : undefined;
      }, timeoutMs, 100).catch(async (err: Error) => {
        const r = await s.runRow(id);
        throw new Error(`${err.message}; run now: ${JSON.stringify(r)}`);
      });
    },
    async waitForRun(id, timeoutMs) {
      try {
        return await until(`run ${id} to finish`, async () => {
          const r = await s.runRow(id);
          return r?.status === 'finished' ? r : undefined;
        }, timeoutMs, 200);
      } catch (err) {
        throw new Error(`${(err as Error).message}; run now: ${JSON.stringify(await s.runRow(id))}`);
      }
    },
    async sandboxesLeft() {
      const list = await c.docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${config.instance}`] } });
      return list.length;
    },
    async close() {
      await worker?.close().catch(() => undefined);
      await signer?.stop().catch(() => undefined);
      await app.close().catch(() => undefined);
      await Promise.race([c.queue.obliterate().catch(() => undefined), sleep(3000)]);
      await c.close().catch(() => undefined);
      await db.drop();
    },
  };
  return s;
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

// ---- figures ------------------------------------------------------------------------------------------

export interface Figure {
  fault: string;
  /** fault injected -> every run of the scenario finished */
  recoveredSeconds: number;
  runs: string;
  containersLeft: number;
  ledger: string;
  /** what else the scenario counted (mails, duplicates, reports) */
  detail?: string;
}

/** One line per scenario, printed and kept in test-results/faults.jsonl (git-ignored) for the table in docs/operations.md. */
export async function recordFigure(f: Figure): Promise<void> {
  console.log(`[fault figure] ${JSON.stringify(f)}`);
  await appendFile(join(process.cwd(), 'test-results', 'faults.jsonl'), `${JSON.stringify({ ...f, at: new Date().toISOString() })}\n`).catch(() => undefined);
}

// ---- backups ------------------------------------------------------------------------------------------

/**
 * Two real custom dumps made on the host's cluster (read only; the fixture database is dropped again):
 * `big.dump` restores for a while in a sandbox of a tenth of a CPU, so a fault lands mid-restore;
 * `small.dump` restores in seconds. `big: false` makes only the small one.
 */
export async function faultDumps(tag: string, opts: { big?: boolean } = {}): Promise<{ dir: string; remove(): Promise<void> }> {
  const { makeTempDir, makeHostDatabase, dumpHost, dropHostDatabase } = await import('../fixtures/host-dumps.js');
  const dir = await makeTempDir(`ef-faults-${tag}-`);
  if (opts.big !== false) {
    const big = `ef_faults_big_${tag}`;
    await makeHostDatabase(big, { rows: 400_000 });
    await dumpHost(big, 'custom', join(dir, 'big.dump'));
    await dropHostDatabase(big);
  }
  const small = `ef_faults_small_${tag}`;
  await makeHostDatabase(small, { rows: 3000 });
  await dumpHost(small, 'custom', join(dir, 'small.dump'));
  await dropHostDatabase(small);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A plan over a dump in the fault backup root. */
export function faultPlan(id: string, file: 'big.dump' | 'small.dump', cpus = file === 'big.dump' ? 0.1 : 1): Record<string, unknown> {
  return {
    id, title: `Fault ${id}`, targets: { rto: '1h', rpo: '26h' }, source: { type: 'file', path: file },
    restore: { driver: 'postgres', database: 'app' }, sandbox: { memory: '1g', cpus, timeout: '10m' },
    checks: [{ name: 'Einwohner da', sql: 'select count(*) from einwohner', expect: '>= 3000' }],
  };
}
