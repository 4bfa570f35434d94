import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { NotificationRepository } from '../../db/repositories/notification.repository.js';
import { UserRepository } from '../../db/repositories/user.repository.js';

/**
 * Issue #5: "Role and tenant checks for every route." Tenant checks: see
 * tenant-isolation.test.ts. Here every route of the app (API and pages, from
 * its own route list) is called without authentication and as an `auditor`
 * (read and export only): nothing but the sign-in and self-service routes may
 * change anything for an auditor, and nothing but the public routes answers
 * without a login. A new route that is not in these lists fails the test.
 */

let h: Harness;
const ids: Record<string, string> = {};
let auditorToken = '';
let cookie = '';
let csrf = '';

/** Public by design (health, docs, sign-in, secret-URL feeds, static files, language switch, SSO). */
const PUBLIC = new Set([
  'GET /healthz', 'GET /readyz', 'GET /openapi.json', 'GET /metrics', 'GET /calendar/:file', 'GET /assets/:file', 'GET /lang',
  'GET /login', 'POST /login', 'GET /invite/:token', 'POST /invite/:token', 'POST /auth/login', 'POST /auth/invite', 'POST /auth/invite/info',
  'GET /auth/oidc/start', 'GET /auth/oidc/callback',
]);
/** What an auditor may change: only their own session, password, second factor and personal tokens. */
const SELF_SERVICE = new Set([
  'POST /logout', 'POST /login/code', 'POST /login/enrol', 'GET /login/code', 'GET /login/enrol', 'GET /login/recovery-codes',
  'POST /auth/code', 'POST /auth/enrol/start', 'POST /auth/enrol/confirm', 'POST /auth/logout', 'POST /auth/logout-all', 'POST /auth/password', 'GET /auth/me',
  'POST /account/logout-everywhere', 'POST /account/password', 'POST /account/tokens', 'POST /account/tokens/:id/revoke',
  'POST /api/v1/tokens', 'POST /api/v1/tokens/:id/revoke',
  'GET /reports/audit', // a download form: checks the dates, then redirects to the API export (read-only)
]);
/** Reading that is not for auditors: administration. */
const ADMIN_READS = new Set([
  'GET /api/v1/users', 'GET /api/v1/grants', 'GET /api/v1/tenants', 'GET /admin/users', 'GET /admin/tokens', 'GET /admin/tenants', 'GET /admin/provider-access',
  'GET /api/v1/queue', 'GET /admin/queue',
]);

const KIND: [RegExp, string][] = [
  [/\/plans\/:id/, 'plan'], [/\/runs\/:id/, 'run'], [/\/alerts\/:id/, 'alert'], [/\/notifications\/:id/, 'notification'],
  [/\/measures\/:id/, 'measure'], [/\/calendar-feeds\/:id/, 'feed'], [/\/tokens\/:id/, 'token'], [/\/users\/:id/, 'user'],
  [/\/queue\/(failed\/)?:id/, 'run'], [/\/grants\/:id/, 'grant'], [/\/provider-access\/:id/, 'grant'], [/\/tenants\/:id/, 'tenant'], [/\/calendar\/:file/, 'file'], [/\/invite\/:token/, 'invite'], [/\/assets\/:file/, 'asset'], [/\/systems\/:id/, 'system'],
  [/\/restart-tests\/:id/, 'restartTest'], [/\/processes\/:name/, 'process'],
];

function fill(url: string): string {
  const kind = KIND.find(([re]) => re.test(url))?.[1];
  if (url.includes(':') && !kind) throw new Error(`role matrix: no id for ${url}; add it to KIND`);
  return kind ? url.replace(/:(id|file|token|name)/, encodeURIComponent(ids[kind] ?? 'x')) : url;
}

async function call(method: string, url: string, as: 'none' | 'auditor') {
  const api = url.startsWith('/api/') || url.startsWith('/auth/') || url === '/metrics';
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (as === 'auditor' && api) headers.authorization = `Bearer ${auditorToken}`;
  if (as === 'auditor' && !api) headers.cookie = cookie;
  if (method !== 'GET' && method !== 'DELETE') {
    if (api) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify({ reason: 'x', name: 'x', role: 'auditor', decision: 'approved', recipient: 'mail:a@b.de' });
    } else {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams({ _csrf: csrf, reason: 'x', decision: 'approved', role: 'auditor' }).toString();
    }
  }
  const res = await h.app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined && { payload }) });
  return { status: res.statusCode, location: String(res.headers.location ?? '') };
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  await h.putPlan(pgPlan('ewo', 'ewo.dump', { cadence: { schedule: '0 2 * * *', requiredEvery: 'P1D' } }));
  ids.plan = 'ewo';
  ids.run = await seedRun(h, { planId: 'ewo', verdict: 'failed', finishedAt: new Date('2026-11-20T01:00:00Z') });
  const reviewed = await seedRun(h, { planId: 'ewo', verdict: 'failed', finishedAt: new Date('2026-11-21T01:00:00Z') });
  await h.c.reviews.review(DEFAULT_TENANT_ID, reviewed, { decision: 'approved-with-deviations', comment: 'ok', deviations: [{ title: 'Dump-Job reparieren', owner: 'IT-Betrieb', dueDate: '2026-12-31' }] }, 'someone');
  ids.measure = (await h.tdb.db.selectFrom('measures').select('id').executeTakeFirstOrThrow()).id;
  const repo = new NotificationRepository(h.tdb.db);
  ids.alert = (await repo.openAlert({ tenantId: DEFAULT_TENANT_ID, planId: 'ewo', kind: 'failing', since: new Date(), openedAt: new Date(), runId: ids.run }))!.id;
  ids.notification = (await repo.enqueue({ tenantId: DEFAULT_TENANT_ID, event: 'test', key: 'rm', recipients: ['mail:a@b.de'], message: { event: 'test' } }))[0]!.id;
  await h.tdb.db.updateTable('notifications').set({ status: 'failed' }).execute();
  ids.token = (await h.c.tokens.create(DEFAULT_TENANT_ID, { name: 'admin-cli', role: 'admin' }, 'bootstrap-token')).id;
  ids.feed = (await h.request('POST', '/api/v1/calendar-feeds', { name: 'Feed' })).body.id;
  const users = new UserRepository(h.tdb.db, h.c.clock);
  ids.user = (await users.insert({ tenant_id: DEFAULT_TENANT_ID, email: 'op@musterstadt.de', name: 'Op', role: 'operator', created_by: 'test' })).id;
  ids.grant = (await h.tdb.db.insertInto('provider_grants').values({ tenant_id: DEFAULT_TENANT_ID, role: 'auditor', reason: 'x', granted_by: 'a', granted_at: h.c.clock(), expires_at: new Date(h.c.clock().getTime() + 86_400_000) }).returning('id').executeTakeFirstOrThrow()).id;
  ids.tenant = DEFAULT_TENANT_ID;
  ids.system = 'ewo-system';
  expect((await h.request('PUT', '/api/v1/systems/ewo-system', { name: 'Einwohnermeldewesen', tier: 1, process: 'Meldewesen' })).status).toBe(201);
  ids.process = 'Meldewesen';
  ids.restartTest = (await h.tdb.db.insertInto('restart_tests').values({
    id: '00000000-0000-4000-8000-00000000c0de', tenant_id: DEFAULT_TENANT_ID, process: 'Meldewesen', status: 'finished', verdict: 'passed', rto_seconds: null, current_tier: 1,
    tiers: JSON.stringify([{ tier: 1, state: 'passed', seconds: 10, runs: [] }]), not_tested: '[]', findings: '[]', result: null,
    triggered_by: 'test', started_at: h.c.clock(), finished_at: h.c.clock(),
  }).returning('id').executeTakeFirstOrThrow()).id;
  const auditor = await users.insert({ tenant_id: DEFAULT_TENANT_ID, email: 'pruefer@rechnungspruefung.de', name: 'Carla Prüferin', role: 'auditor', created_by: 'test' });
  auditorToken = (await h.c.tokens.create(DEFAULT_TENANT_ID, { name: 'carla-cli', role: 'auditor' }, auditor.email, auditor.id)).token;
  const s = await h.c.sessions.start(auditor, { stage: 'full', method: 'password' });
  cookie = `ef_session=${s.token}`;
  csrf = s.session.csrf_token;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('roles on every route', () => {
  it('without a login only the public routes answer; the rest is 401 (API) or a redirect to /login (pages)', async () => {
    await h.app.ready();
    const wrong: string[] = [];
    const routes = h.app.routeList.filter((r) => r.method !== 'HEAD' && !r.url.startsWith('/docs'));
    expect(routes.length).toBeGreaterThan(80);
    for (const r of routes) {
      const key = `${r.method} ${r.url}`;
      const status = await call(r.method, fill(r.url), 'none');
      if (PUBLIC.has(key)) {
        if (status.status === 401 || status.status === 403) wrong.push(`${key} is public but answered ${status.status}`);
        continue;
      }
      const page = !r.url.startsWith('/api/') && !r.url.startsWith('/auth/');
      // pages send the browser to the sign-in (a form posted after the session ended included); nothing is done
      const ok = page ? status.status === 303 && /^\/login/.test(status.location) : status.status === 401;
      if (!ok) wrong.push(`${key} → ${status.status} ${status.location} without a login`);
    }
    expect(wrong).toEqual([]);
  });

  it('an auditor reads and exports, and changes nothing but their own account (403 everywhere else)', async () => {
    const wrong: string[] = [];
    const routes = h.app.routeList.filter((r) => r.method !== 'HEAD' && !r.url.startsWith('/docs'));
    for (const r of routes) {
      const key = `${r.method} ${r.url}`;
      if (PUBLIC.has(key) || SELF_SERVICE.has(key)) continue;
      const { status } = await call(r.method, fill(r.url), 'auditor');
      if (r.method === 'GET' && !ADMIN_READS.has(key)) {
        if (status === 401 || status === 403 || status >= 500) wrong.push(`${key} → ${status}: an auditor must be able to read it`);
      } else if (status !== 403) {
        wrong.push(`${key} → ${status}: an auditor must get 403`);
      }
    }
    expect(wrong).toEqual([]);
    // and nothing changed on the way
    expect((await h.tdb.db.selectFrom('alerts').select('acknowledged_at').where('id', '=', ids.alert!).executeTakeFirstOrThrow()).acknowledged_at).toBeNull();
    expect(await h.tdb.db.selectFrom('runs').select('id').where('status', '!=', 'finished').execute()).toEqual([]);
    expect((await h.tdb.db.selectFrom('api_tokens').select('revoked_at').where('id', '=', ids.token!).executeTakeFirstOrThrow()).revoked_at).toBeNull();
  });
});
