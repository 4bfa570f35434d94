import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';

let h: Harness;

beforeAll(async () => {
  // no worker: these tests look at the API and the queue only
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.close();
});

describe('auth and health', () => {
  it('refuses the API without a token (401) and with a wrong one', async () => {
    const none = await h.app.inject({ method: 'GET', url: '/api/v1/plans' });
    expect(none.statusCode).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ error: 'Unauthorized' });
    const wrong = await h.app.inject({ method: 'GET', url: '/api/v1/plans', headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('cannot be fooled by a percent-encoded path: every non-public route needs the token', async () => {
    for (const url of ['/%61pi/v1/plans', '/api/v1/%70lans', '/API/v1/plans']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect([401, 404]).toContain(res.statusCode);
      expect(res.statusCode).not.toBe(200);
    }
    const post = await h.app.inject({ method: 'POST', url: '/%61pi/v1/plans/x/runs' });
    expect(post.statusCode).toBe(401);
  });

  it('accepts an empty JSON body on bodyless POSTs and refuses broken JSON with 400', async () => {
    await h.putPlan(pgPlan('empty-body', 'e.dump'));
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/plans/empty-body/runs', headers: { authorization: `Bearer ${(await import('../helpers/config.js')).TEST_TOKEN}`, 'content-type': 'application/json' }, payload: '' });
    expect(res.statusCode).toBe(202);
    const bad = await h.app.inject({ method: 'POST', url: `/api/v1/runs/${JSON.parse(res.body).id}/cancel`, headers: { authorization: `Bearer ${(await import('../helpers/config.js')).TEST_TOKEN}`, 'content-type': 'application/json' }, payload: '{nope' });
    expect(bad.statusCode).toBe(400);
    const cancel = await h.app.inject({ method: 'POST', url: `/api/v1/runs/${JSON.parse(res.body).id}/cancel`, headers: { authorization: `Bearer ${(await import('../helpers/config.js')).TEST_TOKEN}`, 'content-type': 'application/json' }, payload: '' });
    expect(cancel.statusCode).toBe(202);
  });

  it('refuses deeply nested plan bodies with 400 and stays alive', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await h.request('PUT', '/api/v1/plans/deep', '['.repeat(2000) + ']'.repeat(2000));
      expect(res.status).toBe(400);
    }
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers /healthz and /readyz without a token, naming each dependency', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(JSON.parse(ready.body).checks).toEqual({ database: 'ok', redis: 'ok', docker: 'ok' });
  });

  it('answers /readyz with 503 naming the failing dependency', async () => {
    const { buildApp, appDeps } = await import('../../services/api/app.js');
    const { createDocker } = await import('../../workers/sandbox/docker.js');
    const broken = createDocker('unix:///nonexistent/docker.sock');
    const app = await buildApp({
      ...appDeps(h.c, ['api']),
      readiness: [...h.c.readiness(['api']), { name: 'docker', check: () => broken.ping() }],
    });
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    const body = JSON.parse(res.body);
    expect(body.failing).toEqual(['docker']);
    expect(body.checks.database).toBe('ok');
    await app.close();
  });

  it('serves the OpenAPI document with the run and plan routes', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body);
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/api/v1/plans', '/api/v1/plans/{id}', '/api/v1/plans/{id}/runs', '/api/v1/runs', '/api/v1/runs/{id}', '/api/v1/runs/{id}/cancel',
      '/api/v1/runs/{id}/evidence', '/api/v1/evidence/verify', '/api/v1/evidence/bundle', '/api/v1/runs/{id}/reviews', '/api/v1/measures',
      '/api/v1/measures/{id}/close', '/api/v1/runs/{id}/protocol.pdf', '/api/v1/reports/audit', '/api/v1/tokens',
    ]));
    const docs = await h.app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(docs.statusCode);
  });
});

describe('plans over the API', () => {
  it('creates a plan from YAML (201), then a changed version (200, new hash), and redacts the canary', async () => {
    const yaml = `id: ewo-db
title: Einwohnermeldewesen – Datenbank
targets: { rto: 4h, rpo: 26h }
source: { type: file, path: ewo, match: "*.dump", select: newest }
restore: { driver: postgres, database: ewo }
checks:
  - { name: Einwohner vorhanden, sql: "select count(*) from einwohner", expect: ">= 1000" }
  - { canary: { sql: "select token from ef_canary", equals: "geheimer-kanarienvogel-4711" } }
`;
    const created = await h.request('PUT', '/api/v1/plans/ewo-db', yaml);
    expect(created.status).toBe(201);
    expect(created.body.origin).toBe('api');
    expect(created.body.version).toMatch(/^[0-9a-f]{64}$/);
    expect(created.body.status).toBe('never-tested');
    expect(JSON.stringify(created.body)).not.toContain('geheimer-kanarienvogel-4711');

    const changed = await h.request('PUT', '/api/v1/plans/ewo-db', yaml.replace('rto: 4h', 'rto: 2h'));
    expect(changed.status).toBe(200);
    expect(changed.body.version).not.toBe(created.body.version);
    const versions = await h.tdb.db.selectFrom('plan_versions').select('hash').where('plan_id', '=', 'ewo-db').execute();
    expect(versions.map((v) => v.hash).sort()).toEqual([created.body.version, changed.body.version].sort());

    const got = await h.request('GET', '/api/v1/plans/ewo-db');
    expect(got.body.definition.targets.rtoSeconds).toBe(7200);
    expect(JSON.stringify(got.body)).not.toContain('geheimer-kanarienvogel-4711');
  });

  it('rejects an unknown key with file-less path and line (400 details)', async () => {
    const yaml = `id: typo-plan
title: Tippfehler
targets: { rto: 4h, rpo: 26h }
source: { path: x.dump }
restore: { driver: postgres, database: x }
checks:
  - name: Zeilen
    sql: select 1
    expct: ">= 1"
`;
    const res = await h.request('PUT', '/api/v1/plans/typo-plan', yaml);
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: 'checks[0].expct', line: 9 }),
    ]));
    expect((await h.request('GET', '/api/v1/plans/typo-plan')).status).toBe(404);
  });

  it('rejects a bad duration and a bad expect with their exact place (JSON body too)', async () => {
    const res = await h.request('PUT', '/api/v1/plans/bad-json', pgPlan('bad-json', 'x.dump', {
      targets: { rto: '4 hours', rpo: '26h' },
      checks: [{ name: 'n', sql: 'select 1', expect: '=> 5' }],
    }));
    expect(res.status).toBe(400);
    const paths = res.body.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['targets.rto', 'checks[0].expect']));
    expect(res.body.details.every((d: { line?: number }) => typeof d.line === 'number')).toBe(true);
  });

  it('refuses a body whose id differs from the URL', async () => {
    const res = await h.request('PUT', '/api/v1/plans/other-id', pgPlan('some-id', 'x.dump'));
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe('id');
  });

  it('loads plans from files, and keeps them read-only over the API (409)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-plans-'));
    await writeFile(join(dir, 'file-plan.yaml'), `id: file-plan\ntitle: Aus Datei\ntargets: { rto: 1h, rpo: 1d }\nsource: { path: f.dump }\nrestore: { driver: postgres, database: f }\n`);
    await writeFile(join(dir, 'broken.yaml'), `id: broken\ntitle: Kaputt\ntargets: { rto: 1h, rpo: 1d }\nsource: { path: f.dump }\nrestore: { driver: postgres, database: f }\nsandbox: { memroy: 1g }\n`);
    await mkdir(join(dir, 'no-such-tenant'));
    await writeFile(join(dir, 'no-such-tenant', 'x.yaml'), 'id: x\n');
    const res = await h.c.plans.syncFromDir(dir);
    expect(res.loaded).toEqual(['file-plan.yaml']);
    expect(res.invalid.map((i) => i.file).sort()).toEqual(['broken.yaml', 'no-such-tenant/x.yaml']);
    expect(res.invalid.find((i) => i.file === 'broken.yaml')!.issues).toEqual([expect.objectContaining({ path: 'sandbox.memroy', line: 6 })]);

    const conflict = await h.request('PUT', '/api/v1/plans/file-plan', pgPlan('file-plan', 'f.dump'));
    expect(conflict.status).toBe(409);
    expect(conflict.body.message).toContain('file-plan.yaml');
    // a second sync of the unchanged file creates no new version
    await h.c.plans.syncFromDir(dir);
    const versions = await h.tdb.db.selectFrom('plan_versions').select('hash').where('plan_id', '=', 'file-plan').execute();
    expect(versions).toHaveLength(1);
    // renaming the file keeps the plan (and its history) instead of refusing it as defined twice
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'file-plan.yaml'), join(dir, 'renamed.yaml'));
    const again = await h.c.plans.syncFromDir(dir);
    expect(again.loaded).toEqual(['renamed.yaml']);
    expect((await h.request('GET', '/api/v1/plans/file-plan')).body.sourceFile).toBe('renamed.yaml');
    await rm(dir, { recursive: true, force: true });
  });
});

describe('runs over the API', () => {
  it('queues a run (202 + Location) with a deterministic job id, refuses a second active run, and cancels it', async () => {
    await h.putPlan(pgPlan('queue-plan', 'q.dump'));
    const res = await h.request('POST', '/api/v1/plans/queue-plan/runs');
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('queued');
    expect(res.headers.location).toBe(`/api/v1/runs/${res.body.id}`);
    const job = await h.c.queue.queue.getJob(`run-${res.body.id}`);
    expect(job?.data).toEqual({ runId: res.body.id, tenantId: DEFAULT_TENANT_ID });

    const second = await h.request('POST', '/api/v1/plans/queue-plan/runs');
    expect(second.status).toBe(409);
    expect(second.body.activeRunId).toBe(res.body.id);

    const cancelled = await h.request('POST', `/api/v1/runs/${res.body.id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toMatchObject({ status: 'finished', verdict: 'cancelled' });
    expect(await h.c.queue.queue.getJob(`run-${res.body.id}`)).toBeUndefined();
    expect((await h.request('POST', `/api/v1/runs/${res.body.id}/cancel`)).status).toBe(409);
  });

  it('404s unknown plans and runs, 400s a malformed run id and bad filters', async () => {
    expect((await h.request('POST', '/api/v1/plans/nope-plan/runs')).status).toBe(404);
    expect((await h.request('GET', '/api/v1/runs/5f0c0b7e-1111-4111-8111-111111111111')).status).toBe(404);
    expect((await h.request('GET', '/api/v1/runs/not-a-uuid')).status).toBe(400);
    const bad = await h.request('GET', '/api/v1/runs?verdict=great&limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.details.length).toBeGreaterThanOrEqual(1);
    expect((await h.request('GET', '/api/v1/runs?cursor=garbage')).status).toBe(400);
    const hyphens = Buffer.from(`2026-01-01T00:00:00.000Z|${'-'.repeat(36)}`).toString('base64url');
    expect((await h.request('GET', `/api/v1/runs?cursor=${hyphens}`)).status).toBe(400);
  });

  it('pages through runs queued within one millisecond without losing any (the cursor keeps the microseconds)', async () => {
    await h.putPlan(pgPlan('same-ms-plan', 'p.dump'));
    const plan = await h.tdb.db.selectFrom('plans').select('version_hash').where('id', '=', 'same-ms-plan').executeTakeFirstOrThrow();
    // five runs in one millisecond (microseconds apart, two at the very same microsecond), ids against the time order
    const at = ['.000100', '.000200', '.000300', '.000300', '.000900'];
    const ids = at.map((_, i) => `00000000-0000-4000-8000-1000000000${String(9 - i).padStart(2, '0')}`);
    for (const [i, us] of at.entries()) {
      await h.tdb.db.insertInto('runs').values({
        id: ids[i]!, tenant_id: DEFAULT_TENANT_ID, plan_id: 'same-ms-plan', plan_version_hash: plan.version_hash, status: 'finished', verdict: 'passed',
        trigger: 'api', triggered_by: 'test', queued_at: sql<Date>`${`2026-02-01 08:00:00${us}+00`}::timestamptz`, finished_at: new Date(Date.UTC(2026, 1, 1, 9)),
      }).execute();
    }
    // newest first; at the same microsecond the higher id first
    const expected = [ids[4], ids[2], ids[3], ids[1], ids[0]];
    for (const limit of [1, 2, 3]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await h.request('GET', `/api/v1/runs?planId=same-ms-plan&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((r) => r.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen, `limit ${limit}`).toEqual(expected);
    }
    // a cursor of an earlier version (milliseconds) still works; one with a date that does not exist is refused
    const old = Buffer.from(`2026-02-01T08:00:00.001Z|${'f'.repeat(8)}-ffff-4fff-8fff-${'f'.repeat(12)}`).toString('base64url');
    expect((await h.request('GET', `/api/v1/runs?planId=same-ms-plan&cursor=${old}`)).body.items).toHaveLength(5);
    const feb30 = Buffer.from(`2026-02-30T08:00:00.000100Z|${ids[0]!}`).toString('base64url');
    expect((await h.request('GET', `/api/v1/runs?planId=same-ms-plan&cursor=${feb30}`)).status).toBe(400);
  });

  it('pages through runs with a cursor, newest first, and filters by plan and verdict', async () => {
    await h.putPlan(pgPlan('page-plan', 'p.dump'));
    const plan = await h.tdb.db.selectFrom('plans').select('version_hash').where('id', '=', 'page-plan').executeTakeFirstOrThrow();
    // seeded as the owner would see them: finished runs with distinct times
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      ids.push(id);
      await h.tdb.db.insertInto('runs').values({
        id, tenant_id: DEFAULT_TENANT_ID, plan_id: 'page-plan', plan_version_hash: plan.version_hash, status: 'finished',
        verdict: i % 2 ? 'failed' : 'passed', trigger: 'api', triggered_by: 'test', queued_at: new Date(Date.UTC(2026, 0, 1 + i)), finished_at: new Date(Date.UTC(2026, 0, 1 + i, 1)),
      }).execute();
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: { id: string }[]; nextCursor: string | null } } = await h.request('GET', `/api/v1/runs?planId=page-plan&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.body.items.map((r) => r.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const failed = await h.request('GET', '/api/v1/runs?planId=page-plan&verdict=failed');
    expect(failed.body.items.map((r: { id: string }) => r.id)).toEqual([ids[5], ids[3], ids[1]]);
    const ranged = await h.request('GET', `/api/v1/runs?planId=page-plan&from=2026-01-03T00:00:00Z&to=2026-01-05T00:00:00Z`);
    expect(ranged.body.items.map((r: { id: string }) => r.id)).toEqual([ids[3], ids[2]]);
    // the plan's status follows the newest decisive run: passed (no cadence, so never overdue) ...
    expect((await h.request('GET', '/api/v1/plans/page-plan')).body.status).toBe('ok');
    // ... and a newer failed run makes it failing
    await h.tdb.db.insertInto('runs').values({
      id: '00000000-0000-4000-8000-000000000099', tenant_id: DEFAULT_TENANT_ID, plan_id: 'page-plan', plan_version_hash: plan.version_hash,
      status: 'finished', verdict: 'failed', trigger: 'api', triggered_by: 'test', queued_at: new Date(Date.UTC(2026, 0, 20)), finished_at: new Date(Date.UTC(2026, 0, 20, 1)),
    }).execute();
    expect((await h.request('GET', '/api/v1/plans/page-plan')).body.status).toBe('failing');
  });

  it('never shows another tenant\'s plans or runs: 404, not 403', async () => {
    const pg = (await import('pg')).default;
    const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
    await owner.connect();
    const other = '00000000-0000-4000-8000-00000000beef';
    await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbarstadt', 'Nachbarstadt', $2)`, [other, h.c.clock()]);
    await owner.query(`insert into plans (tenant_id, id, title, origin, version_hash, definition, created_at, updated_at) values ($1, 'secret-plan', 'x', 'api', 'h', '{}', $2, $2)`, [other, h.c.clock()]);
    await owner.query(`insert into plan_versions (tenant_id, plan_id, hash, definition, origin, created_at) values ($1, 'secret-plan', 'h', '{}', 'api', $2)`, [other, h.c.clock()]);
    const runId = '00000000-0000-4000-8000-00000000b0b0';
    await owner.query(`insert into runs (id, tenant_id, plan_id, plan_version_hash, status, verdict, trigger, triggered_by, queued_at) values ($1, $2, 'secret-plan', 'h', 'finished', 'passed', 'api', 'x', $3)`, [runId, other, h.c.clock()]);
    await owner.end();
    expect((await h.request('GET', '/api/v1/plans/secret-plan')).status).toBe(404);
    expect((await h.request('POST', '/api/v1/plans/secret-plan/runs')).status).toBe(404);
    expect((await h.request('GET', `/api/v1/runs/${runId}`)).status).toBe(404);
    expect((await h.request('GET', `/api/v1/runs/${runId}/evidence`)).status).toBe(404);
    expect((await h.request('POST', `/api/v1/runs/${runId}/cancel`)).status).toBe(404);
    expect((await h.request('GET', '/api/v1/plans')).body.items.map((p: { id: string }) => p.id)).not.toContain('secret-plan');
    expect((await h.request('GET', '/api/v1/runs?limit=500')).body.items.map((r: { id: string }) => r.id)).not.toContain(runId);
    // the same id in our own tenant is a different plan
    expect((await h.request('PUT', '/api/v1/plans/secret-plan', pgPlan('secret-plan', 's.dump'))).status).toBe(201);
  });

  it('keeps the app role from deleting runs', async () => {
    await expect(sql`delete from runs`.execute(h.tdb.db)).rejects.toThrow(/permission denied/);
  });
});
