import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { until } from '../helpers/until.js';
import { childEnv, harnessEnv } from '../helpers/processes.js';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir, run } from '../fixtures/host-dumps.js';
import { startSecondEngine, type SecondEngine } from '../fixtures/second-engine.js';
import { repoRoot } from '../../services/config.js';
import { createLogger } from '../../services/logger.js';
import { startWorker, type RunningWorker } from '../../workers/main.js';
import { LABELS } from '../../workers/sandbox/docker.js';
import type Docker from 'dockerode';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';

/**
 * Two worker pools on two real Docker engines (a second dockerd on this
 * machine stands in for a second server room): each plan runs only on its
 * pool's engine, both at once, and a killed worker moves nothing to the
 * other pool.
 */
const SRC = 'ef_rt_pools';
let h: Harness;
let dir: string;
let engine2: SecondEngine;
let rz1: RunningWorker;
const children: ChildProcess[] = [];
const sandbox = { memory: '1g', cpus: 1, timeout: '10m' };

beforeAll(async () => {
  dir = await makeTempDir('ef-pools-');
  await makeHostDatabase(SRC, { rows: 300_000 });
  await dumpHost(SRC, 'custom', join(dir, 'pools.dump'));
  h = await startHarness({ worker: false, backupRoot: dir, env: { ERNSTFALL_POOLS: 'rz2', ERNSTFALL_STALE_SECONDS: '3', ERNSTFALL_HEARTBEAT_MS: '500' } });
  // the driver's image for this host's PostgreSQL dumps, loaded into the second engine (no registry)
  const major = Number(/(\d+)/.exec((await run('pg_dump', ['--version'])).stdout.replace(/^\D+/, ''))?.[1]);
  engine2 = await startSecondEngine([h.config.sandbox.postgresImage.replace('{major}', String(major))]);
  const count = { name: 'Einwohner', sql: 'select count(*) from einwohner', expect: '== 300000' };
  await h.putPlan(pgPlan('rathaus', 'pools.dump', { sandbox, checks: [count] }));
  await h.putPlan(pgPlan('aussenstelle', 'pools.dump', { sandbox: { ...sandbox, pool: 'rz2' }, checks: [count] }));
  await h.putPlan(pgPlan('aussenstelle-slow', 'pools.dump', { sandbox: { ...sandbox, cpus: 0.1, pool: 'rz2' }, checks: [count] }));
  // rz1 (the default pool) in this process, on the first engine
  rz1 = await startWorker({ config: { ...h.config, sandbox: { ...h.config.sandbox, pools: ['default'] } }, db: h.c.db, redis: h.c.redis, queue: h.c.queue, docker: h.c.docker, log: createLogger('silent'), prefix: h.prefix, clock: h.c.clock });
}, 600_000);

afterAll(async () => {
  await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((resolve) => {
    c.once('exit', resolve);
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
  })));
  await rz1?.close();
  // nothing of this test may be left on either engine
  if (engine2) {
    for (const c of await sandboxesOn(engine2.docker)) await engine2.docker.getContainer(c).remove({ force: true }).catch(() => undefined);
    await engine2.stop();
  }
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

async function sandboxesOn(docker: Docker, runId?: string): Promise<string[]> {
  const label = [`${LABELS.instance}=${h.config.instance}`, ...(runId ? [`${LABELS.runId}=${runId}`] : [])];
  return (await docker.listContainers({ all: true, filters: { label } })).map((c) => c.Id);
}

/** The rz2 worker as a process of its own, on the second engine: `npm start worker` with its pool and DOCKER_HOST. */
function startRz2Worker(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/main.ts'), 'worker'], {
    cwd: repoRoot,
    env: childEnv(harnessEnv(h, dir, {
      DOCKER_HOST: engine2.host,
      ERNSTFALL_WORKER_POOLS: 'rz2',
      ERNSTFALL_SANDBOX_TRANSFER: 'copy',
      ERNSTFALL_SIGNING_KEY_FILE: '/nonexistent/signing-key.pem',
      ERNSTFALL_STALE_SECONDS: '3',
      ERNSTFALL_HEARTBEAT_MS: '500',
      PORT: '0',
    })),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return child;
}

/** The dashboard as the tenant's admin sees it. */
async function dashboard(lang?: 'en'): Promise<string> {
  const user = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: `it-${Date.now()}-${Math.random()}@musterstadt.de`, name: 'IT', role: 'admin', created_by: 'test', password_hash: null });
  const { token } = await h.c.sessions.start(user, { stage: 'full', method: 'password' });
  const res = await h.app.inject({ method: 'GET', url: '/', headers: { cookie: `${SESSION_COOKIE}=${token}${lang ? `; lang=${lang}` : ''}` } });
  expect(res.statusCode).toBe(200);
  return res.body;
}
const BANNER_DE = 'Für den Worker-Pool „rz2“ läuft kein Worker';
const BANNER_EN = 'No worker is running for the worker pool &quot;rz2&quot;';

describe('worker pools on two Docker engines', () => {
  it('each plan runs only on its pool\'s engine, and both pools run at once', async () => {
    const first = startRz2Worker();
    await until('the rz2 worker to connect', async () => ((await h.c.queue.workers('rz2')) > 0 ? true : undefined), 60_000);
    const [a, b] = [await h.trigger('rathaus'), await h.trigger('aussenstelle')];
    const [runA, runB] = await Promise.all([h.waitForRun(a), h.waitForRun(b)]);
    expect(runA.verdict, JSON.stringify(runA.findings)).toBe('passed');
    expect(runB.verdict, JSON.stringify(runB.findings)).toBe('passed');
    expect(runA.sandbox).toMatchObject({ pool: 'default', engine: { host: 'local' } });
    expect(runB.sandbox).toMatchObject({ pool: 'rz2', engine: { host: engine2.host }, transfer: 'copy' });
    expect(runA.pool).toBeUndefined();
    expect(runB.pool).toBe('rz2');
    // at once: each ran while the other did
    const span = (r: { startedAt: string; finishedAt: string }): [number, number] => [Date.parse(r.startedAt), Date.parse(r.finishedAt)];
    const [a0, a1] = span(runA);
    const [b0, b1] = span(runB);
    expect(a0 < b1 && b0 < a1, JSON.stringify({ a: [runA.startedAt, runA.finishedAt], b: [runB.startedAt, runB.finishedAt] })).toBe(true);
    expect(await sandboxesOn(h.c.docker)).toEqual([]);
    expect(await sandboxesOn(engine2.docker)).toEqual([]);
    // both pools served: no warning
    expect(await dashboard()).not.toContain('Worker-Pool');
    first.kill('SIGTERM');
    await new Promise((r) => first.once('exit', r));
  });

  it('a killed rz2 worker moves nothing to the other pool: its tests wait for a worker of their own pool', async () => {
    const doomed = startRz2Worker();
    await until('the rz2 worker to connect', async () => ((await h.c.queue.workers('rz2')) > 0 ? true : undefined), 60_000);
    const slow = await h.trigger('aussenstelle-slow');
    await h.waitForPhase(slow, 'restore', 90_000);
    expect(await sandboxesOn(engine2.docker, slow)).toHaveLength(1);
    doomed.kill('SIGKILL');
    await new Promise((r) => doomed.once('exit', r));
    await until('the dead worker to leave the queue', async () => ((await h.c.queue.workers('rz2')) === 0 ? true : undefined), 60_000)
      .catch(async (err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(await h.c.queue.forPool('rz2').getWorkers())}`); });

    // with rz1's worker idle and alive, a new rz2 test waits; nothing of it starts on the first engine
    const waiting = await h.trigger('aussenstelle');
    await new Promise((r) => setTimeout(r, 5000));
    expect((await h.request('GET', `/api/v1/runs/${waiting}`)).body).toMatchObject({ status: 'queued', pool: 'rz2' });
    expect(await sandboxesOn(h.c.docker)).toEqual([]);
    expect((await h.c.pools.unserved()).map((p) => p.pool)).toEqual(['rz2']);
    expect((await h.c.queue.counts('rz2')).waiting).toBe(1);
    // the dashboard says so, in both languages; the served default pool is not named
    const de = await dashboard();
    expect(de).toContain(BANNER_DE);
    expect(de).not.toContain('„default“');
    expect(await dashboard('en')).toContain(BANNER_EN);

    // a worker of the pool comes back: the lost test ends (its sandbox reaped on its engine), the waiting one runs there
    startRz2Worker();
    const lost = await h.waitForRun(slow, 120_000);
    expect(lost.verdict).toBe('error');
    expect(lost.findings.map((f: { code: string }) => f.code)).toContain('WORKER_LOST');
    expect(lost.phases.find((p: { name: string }) => p.name === 'teardown')).toMatchObject({ status: 'ok', note: 'the reaper removed 1 sandbox(es) of this run' });
    const ran = await h.waitForRun(waiting, 120_000);
    expect(ran.verdict, JSON.stringify(ran.findings)).toBe('passed');
    expect(ran.sandbox.engine.host).toBe(engine2.host);
    expect(await h.c.pools.unserved()).toEqual([]);
    expect(await dashboard()).not.toContain(BANNER_DE);
    await until('no sandbox left on the second engine', async () => ((await sandboxesOn(engine2.docker)).length === 0 ? true : undefined), 30_000);
    expect(await sandboxesOn(h.c.docker)).toEqual([]);
  });
});
