import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { DEFAULT_TENANT_ID, type UserRole } from '../../db/schema.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';
import { queueNameForPool } from '../../workers/jobs.js';
import { redisConnection } from '../../workers/queue.js';

/**
 * Issue 13 item 6, queue operations: the queue per worker pool for admins,
 * with real Redis and PostgreSQL. Jobs wait in two pools (no worker serves
 * them), jobs fail for real (a BullMQ worker in this test whose handler
 * throws), and failed jobs are retried or removed through the API and the
 * page, tenant by tenant.
 */

let h: Harness;
const B_SLUG = 'nachbarstadt';
let B = '';
const runs = {} as { wait: string; rzWait: string; fail: string; done: string; other: string; pageFail: string; pageDone: string };
interface Who { cookie: string; csrf: string }
const as = {} as { admin: Who; operator: Who; provider: Who };
let adminToken = '';
let auditorToken = '';
const connections: Redis[] = [];
// what the failing handler throws: a URL with a password, a token, and more than the view shows
const SECRET = 's3cr3t-pw-4711';
const REASON = `sandbox host unreachable: connect ECONNREFUSED postgres://ernstfall:${SECRET}@db.intern:5432/ernstfall token=ef_abcdefghijklmnop\n${'x'.repeat(600)}`;

async function user(tenantId: string | null, email: string, role: UserRole): Promise<Who> {
  const row = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: tenantId, email, name: email.split('@')[0]!, role, created_by: 'test' });
  const { token, session } = await h.c.sessions.start(row, { stage: 'full', method: 'password' });
  return { cookie: token, csrf: session.csrf_token };
}

async function api(method: 'GET' | 'POST' | 'DELETE', url: string, token?: string) {
  const res = await h.app.inject({ method, url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  let body: any = res.body;
  try { body = JSON.parse(res.body); } catch { /* not JSON */ }
  return { status: res.statusCode, body };
}
const asBootstrap = (method: 'GET' | 'POST' | 'DELETE', url: string) => h.request(method as 'GET', url);

async function page(who: Who, url: string, lang?: 'en') {
  const res = await h.app.inject({ method: 'GET', url, headers: { cookie: [`${SESSION_COOKIE}=${who.cookie}`, lang ? `lang=${lang}` : ''].filter(Boolean).join('; ') } });
  return { status: res.statusCode, body: res.body, headers: res.headers };
}
async function post(who: Who, url: string, lang?: 'en') {
  const res = await h.app.inject({
    method: 'POST', url, payload: new URLSearchParams({ _csrf: who.csrf }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: [`${SESSION_COOKIE}=${who.cookie}`, lang ? `lang=${lang}` : ''].filter(Boolean).join('; ') },
  });
  return { status: res.statusCode, body: res.body, headers: res.headers };
}

/** Lets a BullMQ worker whose handler throws take every job of the pool, waits for `n` failures, and disconnects it. */
async function failJobs(pool: string, n: number): Promise<void> {
  const connection = redisConnection(h.config.redis.url);
  connections.push(connection);
  let failed = 0;
  const done = new Promise<void>((resolve) => {
    const w = new Worker(queueNameForPool(pool), async () => { throw new Error(REASON); }, { connection, prefix: h.prefix, concurrency: 5 });
    w.on('failed', () => {
      if (++failed === n) void w.close().then(() => resolve());
    });
  });
  await done;
}

type Pool = { pool: string; workers: number | null; waiting: any; active: any; failed: any };
const pool = (body: { pools: Pool[] }, name: string) => body.pools.find((p) => p.pool === name)!;
const runIdsOf = (s: { jobs: { runId: string }[] }) => s.jobs.map((j) => j.runId).sort();

beforeAll(async () => {
  h = await startHarness({ worker: false, env: { ERNSTFALL_POOLS: 'rz2,rz3' } });
  B = (await h.tdb.db.insertInto('tenants').values({ slug: B_SLUG, name: 'Nachbarstadt', created_at: h.c.clock() }).returning('id').executeTakeFirstOrThrow()).id;
  const rz2 = { sandbox: { memory: '1g', cpus: 1, timeout: '10m', pool: 'rz2' } };
  await h.putPlan(pgPlan('ewo', 'x.dump', { title: 'Einwohnermeldewesen' }));
  for (const id of ['rz-wait', 'rz-fail', 'rz-done', 'rz-page', 'rz-page-done']) await h.putPlan(pgPlan(id, 'x.dump', { ...rz2, title: `Außenstelle ${id}` }));
  await h.c.plans.put(B, 'b-plan', JSON.stringify(pgPlan('b-plan', 'x.dump', { ...rz2, title: 'Geheimer Plan B' })), 'json');

  // four runs of tenant A and one of B fail in pool rz2 for real; then nothing serves rz2 any more
  runs.fail = await h.trigger('rz-fail');
  runs.done = await h.trigger('rz-done');
  runs.pageFail = await h.trigger('rz-page');
  runs.pageDone = await h.trigger('rz-page-done');
  runs.other = (await h.c.runs.trigger(B, 'b-plan', { trigger: 'api', triggeredBy: 'b-admin' })).id;
  await failJobs('rz2', 5);
  // two of them ended meanwhile (as the run of a lost worker does): their failed jobs stay in Redis
  await h.tdb.db.updateTable('runs').set({ status: 'finished', verdict: 'error', finished_at: new Date() }).where('id', 'in', [runs.done, runs.pageDone]).execute();
  // these wait: no worker serves the default pool or rz2
  runs.wait = await h.trigger('ewo');
  runs.rzWait = await h.trigger('rz-wait');

  const users = new UserRepository(h.tdb.db, h.c.clock);
  const admin = await users.insert({ tenant_id: DEFAULT_TENANT_ID, email: 'admin@musterstadt.example', name: 'Admin', role: 'admin', created_by: 'test' });
  adminToken = (await h.c.tokens.create(DEFAULT_TENANT_ID, { name: 'admin-cli', role: 'admin' }, admin.email, admin.id)).token;
  auditorToken = (await h.c.tokens.create(DEFAULT_TENANT_ID, { name: 'pruefer', role: 'auditor' }, 'pruefer@musterstadt.example')).token;
  const s = await h.c.sessions.start(admin, { stage: 'full', method: 'password' });
  as.admin = { cookie: s.token, csrf: s.session.csrf_token };
  as.operator = await user(DEFAULT_TENANT_ID, 'operator@musterstadt.example', 'operator');
  as.provider = await user(null, 'chef@dienstleister.example', 'provider-admin');
}, 60_000);

afterAll(async () => {
  await h?.close();
  for (const c of connections) c.disconnect();
});

describe('the queue per worker pool', () => {
  it('the installation (bootstrap token): waiting jobs in two pools, failed jobs with their tenant, no live worker; reasons cut and blanked', async () => {
    const res = await asBootstrap('GET', '/api/v1/queue');
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('installation');
    expect(res.body.pools.map((p: Pool) => p.pool)).toEqual(['default', 'rz2', 'rz3']);
    const def = pool(res.body, 'default');
    const rz2 = pool(res.body, 'rz2');
    expect(def.workers).toBe(0);
    expect(rz2.workers).toBe(0);
    expect([def.waiting.count, def.active.count, def.failed.count]).toEqual([1, 0, 0]);
    expect(def.waiting.jobs[0]).toMatchObject({ runId: runs.wait, planId: null, planTitle: null, state: 'waiting', runStatus: 'queued', jobId: `run-${runs.wait}`, failedReason: null });
    expect(def.waiting.jobs[0].tenant).toMatchObject({ id: DEFAULT_TENANT_ID, slug: 'default' });
    expect(def.waiting.jobs[0].ageSeconds).toBeGreaterThanOrEqual(0);
    expect([rz2.waiting.count, rz2.active.count, rz2.failed.count]).toEqual([1, 0, 5]);
    expect(runIdsOf(rz2.waiting)).toEqual([runs.rzWait]);
    expect(runIdsOf(rz2.failed)).toEqual([runs.fail, runs.done, runs.pageFail, runs.pageDone, runs.other].sort());
    const other = rz2.failed.jobs.find((j: any) => j.runId === runs.other);
    expect(other.tenant).toMatchObject({ id: B, slug: B_SLUG, name: 'Nachbarstadt' });
    for (const j of rz2.failed.jobs) {
      expect(j.failedAt).toEqual(expect.any(String));
      expect(Array.from(j.failedReason as string).length).toBeLessThanOrEqual(300);
      expect(j.failedReason).toMatch(/^sandbox host unreachable: connect ECONNREFUSED postgres:\/\/\[redacted\]@db\.intern:5432\/ernstfall token=\[redacted\] x+…$/);
    }
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    expect(JSON.stringify(res.body)).not.toContain('ef_abcdefghijklmnop');
    expect(rz2.failed.jobs.find((j: any) => j.runId === runs.done)).toMatchObject({ runStatus: 'finished', verdict: 'error' });
  });

  it('is described in /openapi.json', async () => {
    const doc = (await api('GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths['/api/v1/queue'])).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/v1/queue/failed/{id}/retry'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/api/v1/queue/failed/{id}'])).toEqual(['delete']);
    expect(Object.keys(doc.paths['/api/v1/queue/failed/{id}/retry'].post.responses).sort()).toEqual(['200', '401', '403', '404', '409', '503']);
  });

  it('counts a live worker of a pool', async () => {
    const connection = redisConnection(h.config.redis.url);
    connections.push(connection);
    // rz3 has no jobs: this worker takes nothing and only counts
    const w = new Worker(queueNameForPool('rz3'), async () => undefined, { connection, prefix: h.prefix });
    await w.waitUntilReady();
    try {
      const deadline = Date.now() + 5000;
      let workers = 0;
      while (workers !== 1 && Date.now() < deadline) {
        workers = pool((await asBootstrap('GET', '/api/v1/queue')).body, 'rz3').workers ?? 0;
        if (workers !== 1) await new Promise((r) => setTimeout(r, 100));
      }
      expect(workers).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('a tenant admin sees only the jobs of the tenant\'s runs, without the tenant field', async () => {
    const res = await api('GET', '/api/v1/queue', adminToken);
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('tenant');
    const rz2 = pool(res.body, 'rz2');
    expect([rz2.waiting.count, rz2.failed.count]).toEqual([1, 4]);
    expect(rz2.failed.exact).toBe(true);
    expect(runIdsOf(rz2.failed)).toEqual([runs.fail, runs.done, runs.pageFail, runs.pageDone].sort());
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(runs.other);
    expect(text).not.toContain(B);
    expect(text).not.toContain('Geheimer Plan B');
    expect(text).not.toContain('"tenant":');
    // the tenant's own admin sees which plan each job tests
    expect(pool(res.body, 'default').waiting.jobs[0]).toMatchObject({ planId: 'ewo', planTitle: 'Einwohnermeldewesen' });
  });

  it('refuses without a login (401), to an auditor and an operator (403)', async () => {
    expect((await api('GET', '/api/v1/queue')).status).toBe(401);
    expect((await api('POST', `/api/v1/queue/failed/${runs.fail}/retry`)).status).toBe(401);
    expect((await api('DELETE', `/api/v1/queue/failed/${runs.fail}`)).status).toBe(401);
    expect((await api('GET', '/api/v1/queue', auditorToken)).status).toBe(403);
    expect((await api('POST', `/api/v1/queue/failed/${runs.fail}/retry`, auditorToken)).status).toBe(403);
    expect((await api('DELETE', `/api/v1/queue/failed/${runs.fail}`, auditorToken)).status).toBe(403);
    expect((await page(as.operator, '/admin/queue')).status).toBe(403);
    expect((await post(as.operator, `/admin/queue/${runs.fail}/retry`)).status).toBe(403);
  });

  it('another tenant\'s run is 404 for retry and removal, and its job stays failed', async () => {
    expect((await api('POST', `/api/v1/queue/failed/${runs.other}/retry`, adminToken)).status).toBe(404);
    expect((await api('DELETE', `/api/v1/queue/failed/${runs.other}`, adminToken)).status).toBe(404);
    expect((await post(as.admin, `/admin/queue/${runs.other}/retry`)).status).toBe(404);
    expect((await post(as.admin, `/admin/queue/${runs.other}/remove`)).status).toBe(404);
    expect((await h.c.queue.jobOfRun(runs.other, 'rz2'))?.state).toBe('failed');
  });

  it('does not retry a failed job whose run is finished (409 naming why), nor a run without a failed job (404)', async () => {
    const res = await api('POST', `/api/v1/queue/failed/${runs.done}/retry`, adminToken);
    expect(res.status).toBe(409);
    expect(res.body.message).toContain('is finished (verdict error)');
    expect(res.body.runStatus).toBe('finished');
    expect((await h.c.queue.jobOfRun(runs.done, 'rz2'))?.state).toBe('failed');
    // waiting, not failed
    expect((await api('POST', `/api/v1/queue/failed/${runs.wait}/retry`, adminToken)).status).toBe(404);
    expect((await api('POST', '/api/v1/queue/failed/not-a-run/retry', adminToken)).status).toBe(404);
  });

  it('retries a still queued run\'s failed job: back to waiting, audited; a second retry finds nothing', async () => {
    const res = await api('POST', `/api/v1/queue/failed/${runs.fail}/retry`, adminToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ runId: runs.fail, state: 'waiting', pool: 'rz2', runStatus: 'queued' });
    expect(res.body.tenant).toBeUndefined();
    const rz2 = pool((await api('GET', '/api/v1/queue', adminToken)).body, 'rz2');
    expect(runIdsOf(rz2.waiting)).toEqual([runs.rzWait, runs.fail].sort());
    expect(rz2.failed.count).toBe(3);
    expect((await api('POST', `/api/v1/queue/failed/${runs.fail}/retry`, adminToken)).status).toBe(404);
    const audit = await h.request('GET', '/api/v1/audit?action=queue.job-retried');
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ subject: { type: 'run', id: runs.fail }, actor: { name: 'admin@musterstadt.example', kind: 'token' }, details: { planId: 'rz-fail', pool: 'rz2', runStatus: 'queued' } });
    expect(JSON.stringify(audit.body)).not.toContain(SECRET);
  });

  it('removes a failed job (the finished run\'s), audited', async () => {
    const res = await api('DELETE', `/api/v1/queue/failed/${runs.done}`, adminToken);
    expect(res.status).toBe(204);
    expect(await h.c.queue.jobOfRun(runs.done, 'rz2')).toBeUndefined();
    expect((await api('DELETE', `/api/v1/queue/failed/${runs.done}`, adminToken)).status).toBe(404);
    const audit = await h.request('GET', '/api/v1/audit?action=queue.job-removed');
    expect(audit.body.items.map((i: any) => i.subject.id)).toEqual([runs.done]);
    expect(audit.body.items[0].details).toMatchObject({ runStatus: 'finished', pool: 'rz2' });
  });
});

describe('the page /admin/queue', () => {
  it('German: pools, live workers, waiting and failed jobs with run links and a retry button only where it may work', async () => {
    const res = await page(as.admin, '/admin/queue');
    expect(res.status).toBe(200);
    const b = res.body;
    expect(b).toContain('<html lang="de">');
    expect(b).toContain('<title>Warteschlange – Verwaltung – ernstfall</title>');
    expect(b).toContain('Pool rz2');
    expect(b).toContain('Keine Worker verbunden');
    expect(b).toContain(`href="/runs/${runs.rzWait}"`);
    expect(b).toContain(`href="/runs/${runs.pageFail}"`);
    expect(b).toContain('Außenstelle rz-page');
    expect(b).toContain(`action="/admin/queue/${runs.pageFail}/retry"`);
    expect(b).toContain(`action="/admin/queue/${runs.pageFail}/remove"`);
    expect(b).toContain('Erneut einreihen');
    expect(b).toContain('ECONNREFUSED postgres://[redacted]@db.intern');
    expect(b).not.toContain(SECRET);
    expect(b).not.toContain(runs.other);
    expect(b).not.toContain('Geheimer Plan B');
    expect(b).toContain('href="/admin/queue" aria-current="page"');
    expect(b).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>|\sstyle\s*=/i);
    // linked from the admin pages
    expect((await page(as.admin, '/admin/users')).body).toContain('href="/admin/queue"');
  });

  it('English', async () => {
    const res = await page(as.admin, '/admin/queue', 'en');
    expect(res.status).toBe(200);
    expect(res.body).toContain('<html lang="en">');
    expect(res.body).toContain('<title>Queue – Admin – ernstfall</title>');
    expect(res.body).toContain('No worker connected');
    expect(res.body).toContain('Retry');
  });

  it('retry and removal from the page: redirect back with a notice; a finished run is refused in the page\'s language', async () => {
    const retried = await post(as.admin, `/admin/queue/${runs.pageFail}/retry`);
    expect(retried.status).toBe(303);
    expect(retried.headers.location).toBe('/admin/queue?done=retried');
    expect((await page(as.admin, '/admin/queue?done=retried')).body).toContain('wieder eingereiht');
    expect((await h.c.queue.jobOfRun(runs.pageFail, 'rz2'))?.state).toBe('waiting');
    // a finished run's failed job: the page offers no retry, and a posted one is refused with the reason
    expect((await page(as.admin, '/admin/queue')).body).not.toContain(`action="/admin/queue/${runs.pageDone}/retry"`);
    const refused = await post(as.admin, `/admin/queue/${runs.pageDone}/retry`, 'en');
    expect(refused.status).toBe(409);
    expect(refused.body).toContain('Not retried: the run has finished');
    expect((await h.c.queue.jobOfRun(runs.pageDone, 'rz2'))?.state).toBe('failed');
    const removed = await post(as.admin, `/admin/queue/${runs.pageDone}/remove`);
    expect(removed.status).toBe(303);
    expect(removed.headers.location).toBe('/admin/queue?done=removed');
    expect(await h.c.queue.jobOfRun(runs.pageDone, 'rz2')).toBeUndefined();
  });

  it('a provider admin outside any tenant sees every tenant\'s jobs and acts on them; the record goes to the run\'s tenant', async () => {
    const res = await page(as.provider, '/admin/queue');
    expect(res.status).toBe(200);
    expect(res.body).toContain('Nachbarstadt');
    expect(res.body).toContain(`action="/admin/queue/${runs.other}/remove"`);
    // which plan a job tests is the tenant's data: not in the provider's view without a grant
    expect(res.body).not.toContain('Einwohnermeldewesen');
    expect((await page(as.provider, '/admin/tenants')).body).toContain('href="/admin/queue"');
    expect((await post(as.provider, `/admin/queue/${runs.other}/remove`)).status).toBe(303);
    const trail = await h.c.audit.list(B, { action: 'queue.job-removed' });
    expect(trail.items).toHaveLength(1);
    expect(trail.items[0]).toMatchObject({ subject: { type: 'run', id: runs.other }, actor: { name: 'chef@dienstleister.example', kind: 'session' } });
  });
});
