import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { DEFAULT_TENANT_ID, type DB, type UserRole } from '../../db/schema.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { NotificationRepository } from '../../db/repositories/notification.repository.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';
import { hashPassword, totpCode } from '../../services/auth/crypto.js';
import { appDeps, buildApp } from '../../services/api/app.js';

let h: Harness;
const HOUR = 3_600_000;
const XSS_TITLE = '<script>alert(1)</script> Meldewesen & "Co"';
const OTHER_TENANT_SLUG = 'nachbarstadt';

interface Who { cookie: string; csrf: string; email: string; id: string }
const as = {} as { admin: Who; operator: Who; reviewer: Who; auditor: Who };
let otherTenantId = '';
const ids = {} as { okRun: string; failRun: string; ownRun: string; alert: string; otherRun: string; otherAlert: string };

async function user(tenantId: string | null, email: string, role: UserRole, password?: string): Promise<Who> {
  const repo = new UserRepository(h.tdb.db, h.c.clock);
  const row = await repo.insert({ tenant_id: tenantId, email, name: email.split('@')[0]!, role, created_by: 'test', password_hash: password ? await hashPassword(password) : null });
  const { token, session } = await h.c.sessions.start(row, { stage: 'full', method: 'password' });
  return { cookie: token, csrf: session.csrf_token, email, id: row.id };
}

type Res = { status: number; body: string; headers: Record<string, unknown> };
async function page(who: Who | undefined, url: string, o: { lang?: 'en'; app?: typeof h.app } = {}): Promise<Res> {
  const cookies = [who ? `${SESSION_COOKIE}=${who.cookie}` : '', o.lang ? `lang=${o.lang}` : ''].filter(Boolean).join('; ');
  const res = await (o.app ?? h.app).inject({ method: 'GET', url, headers: cookies ? { cookie: cookies } : {} });
  return { status: res.statusCode, body: res.body, headers: res.headers as Record<string, unknown> };
}
async function post(who: Who | undefined, url: string, form: Record<string, string>, o: { csrf?: boolean; headers?: Record<string, string> } = {}): Promise<Res> {
  const body = new URLSearchParams({ ...form, ...(who && o.csrf !== false ? { _csrf: who.csrf } : {}) }).toString();
  const res = await h.app.inject({
    method: 'POST', url, payload: body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(who ? { cookie: `${SESSION_COOKIE}=${who.cookie}` } : {}), ...o.headers },
  });
  return { status: res.statusCode, body: res.body, headers: res.headers as Record<string, unknown> };
}

/** The CSP the pages run under forbids these; they must not be in any page. */
function expectNoInlineCode(htmlText: string) {
  expect(htmlText).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
  expect(htmlText).not.toMatch(/\sstyle\s*=/i);
  expect(htmlText).not.toMatch(/<style[\s>]/i);
  expect(htmlText).not.toMatch(/\son[a-z]+\s*=/i);
  expect(htmlText).not.toMatch(/javascript:/i);
}

function setCookies(headers: Record<string, unknown>): string[] {
  const raw = headers['set-cookie'];
  return Array.isArray(raw) ? raw as string[] : typeof raw === 'string' ? [raw] : [];
}
const cookieValue = (headers: Record<string, unknown>, name: string) => setCookies(headers).map((c) => new RegExp(`^${name}=([^;]*)`).exec(c)?.[1]).find((v) => v !== undefined);

beforeAll(async () => {
  h = await startHarness({ worker: false, env: { ERNSTFALL_SECRET_KEY: randomBytes(24).toString('hex') } });
  const now = Date.now();
  await h.putPlan(pgPlan('ok-plan', 'x.dump', { title: XSS_TITLE, cadence: { requiredEvery: 'P7D' } }));
  await h.putPlan(pgPlan('soon-plan', 'x.dump', { title: 'Finanzwesen', cadence: { requiredEvery: 'P1D', schedule: '0 2 * * *' } }));
  await h.putPlan(pgPlan('late-plan', 'x.dump', { title: 'Einwohnermeldewesen', cadence: { requiredEvery: 'P1D', grace: 'PT1H' } }));
  await h.putPlan(pgPlan('fail-plan', 'x.dump', { title: 'Kfz-Zulassung', cadence: { requiredEvery: 'P7D' } }));
  await h.putPlan(pgPlan('never-plan', 'x.dump', { title: 'Standesamt', cadence: { requiredEvery: 'P30D' } }));
  ids.okRun = await seedRun(h, { planId: 'ok-plan', verdict: 'passed', finishedAt: new Date(now - HOUR), rtoSeconds: 120, rtoTarget: 3600 });
  await seedRun(h, { planId: 'ok-plan', verdict: 'passed', finishedAt: new Date(now - 48 * HOUR), rtoSeconds: 4000, rtoTarget: 3600 });
  await seedRun(h, { planId: 'soon-plan', verdict: 'passed', finishedAt: new Date(now - 23 * HOUR) });
  await seedRun(h, { planId: 'late-plan', verdict: 'passed', finishedAt: new Date(now - 72 * HOUR) });
  ids.failRun = await seedRun(h, { planId: 'fail-plan', verdict: 'failed', finishedAt: new Date(now - HOUR) });

  as.admin = await user(DEFAULT_TENANT_ID, 'admin@musterstadt.example', 'admin');
  as.operator = await user(DEFAULT_TENANT_ID, 'operator@musterstadt.example', 'operator');
  as.reviewer = await user(DEFAULT_TENANT_ID, 'reviewer@musterstadt.example', 'reviewer');
  as.auditor = await user(DEFAULT_TENANT_ID, 'auditor@musterstadt.example', 'auditor');
  ids.ownRun = await seedRun(h, { planId: 'fail-plan', verdict: 'failed', finishedAt: new Date(now - HOUR / 2), triggeredBy: as.reviewer.email });
  const alerts = new NotificationRepository(h.tdb.db);
  ids.alert = (await alerts.openAlert({ tenantId: DEFAULT_TENANT_ID, planId: 'late-plan', kind: 'overdue', since: new Date(now - 47 * HOUR), openedAt: new Date(now - 47 * HOUR) }))!.id;

  // another tenant with a plan, a run and an alert of its own
  otherTenantId = (await h.tdb.db.insertInto('tenants').values({ slug: OTHER_TENANT_SLUG, name: 'Nachbarstadt', created_at: h.c.clock() }).returning('id').executeTakeFirstOrThrow()).id;
  await h.c.plans.repo.upsert({ tenantId: otherTenantId, id: 'their-plan', title: 'Geheim', origin: 'api', sourceFile: null, versionHash: 'a'.repeat(64), definition: (await h.c.plans.get(DEFAULT_TENANT_ID, 'ok-plan')).definition, at: new Date() });
  ids.otherRun = await seedRun(h, { planId: 'their-plan', verdict: 'passed', finishedAt: new Date(now - HOUR), tenantId: otherTenantId });
  ids.otherAlert = (await alerts.openAlert({ tenantId: otherTenantId, planId: 'their-plan', kind: 'failing', since: new Date(now - HOUR), openedAt: new Date(now - HOUR) }))!.id;
});

afterAll(async () => {
  await h?.close();
});

describe('pages: signed in, language, safety', () => {
  it('without a session every page redirects to /login (303), keeping where the person wanted to go', async () => {
    const res = await page(undefined, '/plans/ok-plan');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Fplans%2Fok-plan');
    expect((await page(undefined, '/')).headers.location).toBe('/login?next=%2F');
    const login = await page(undefined, '/login');
    expect(login.status).toBe(200);
    expect(login.body).toContain('<html lang="de">');
    expect(login.body).toMatch(/<label for="login-email">E-Mail/);
    expectNoInlineCode(login.body);
  });

  it('the dashboard shows a light per plan with text, headroom, the alert and the stopped scheduler; titles are escaped', async () => {
    const res = await page(as.auditor, '/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const b = res.body;
    expect(b).toContain('<html lang="de">');
    expect(b).toContain('<title>Übersicht – ernstfall</title>');
    for (const [cls, text] of [['ok', 'in Ordnung'], ['due-soon', 'bald fällig'], ['overdue', 'überfällig'], ['failing', 'fehlgeschlagen'], ['never-tested', 'nie getestet']]) {
      // colour class, a shape (icon) and the words
      expect(b).toMatch(new RegExp(`<span class="light light-${cls}"><svg class="icon"[^>]*aria-hidden="true"[^>]*>.*?</svg><span>${text}</span>`));
    }
    const row = (planId: string) => b.slice(b.indexOf(`/plans/${planId}"`), b.indexOf('</tr>', b.indexOf(`/plans/${planId}"`)));
    expect(row('ok-plan')).toContain('light-ok');
    expect(row('soon-plan')).toContain('light-due-soon');
    expect(row('late-plan')).toContain('light-overdue');
    expect(row('late-plan')).toContain(`/alerts/${ids.alert}`);
    expect(row('fail-plan')).toContain('light-failing');
    expect(row('never-plan')).toContain('light-never-tested');
    // RTO 1 h, newest measured restore 2 min: 58 min headroom; never tested: a dash
    expect(row('ok-plan')).toContain('58 min');
    expect(row('never-plan')).toMatch(/<td>–<\/td>/);
    expect(b).toContain('Der Zeitplaner läuft nicht');
    expect(b).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Meldewesen &amp; &quot;Co&quot;');
    expect(b).not.toContain('<script>alert(1)');
    expect(b).toMatch(/<a class="skip" href="#main">/);
    expect(b).toMatch(/<main id="main"/);
    expect(b).toMatch(/<nav class="main-nav" aria-label="Hauptnavigation">/);
    expect(b).toMatch(/<th scope="col">Status<\/th>/);
    expect(b).toContain('<caption');
    expect(b).toContain('<link rel="stylesheet" href="/assets/app.css?v=');
    expect(b).not.toContain('app.js'); // no script where nothing is live
    expect(b).not.toContain('Geheim'); // nothing of the other tenant
    expectNoInlineCode(b);
  });

  it('German by default, English after the switch; the switch only returns to this site', async () => {
    const sw = await page(as.auditor, '/lang?to=en&next=%2Fplans%2Fok-plan');
    expect(sw.status).toBe(303);
    expect(sw.headers.location).toBe('/plans/ok-plan');
    expect(cookieValue(sw.headers, 'lang')).toBe('en');
    const en = await page(as.auditor, '/', { lang: 'en' });
    expect(en.body).toContain('<html lang="en">');
    expect(en.body).toContain('<title>Dashboard – ernstfall</title>');
    expect(en.body).toContain('<span>overdue</span>');
    expect(en.body).toContain('The scheduler is not running');
    expect(en.body).toMatch(/href="\/lang\?to=de&amp;next=%2F" lang="de"/);
    // times in Europe/Berlin with the zone, in the reader's format
    expect(en.body).toMatch(/\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} CES?T/);
    expect((await page(as.auditor, '/')).body).toMatch(/\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2} MES?Z/);
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      expect((await page(undefined, `/lang?to=en&next=${encodeURIComponent(next)}`)).headers.location).toBe('/');
    }
  });

  it('every page renders for a signed-in user without inline script or style', async () => {
    const urls: [Who, string][] = [
      [as.auditor, '/'], [as.auditor, '/plans/ok-plan'], [as.auditor, `/runs/${ids.okRun}`], [as.auditor, `/runs/${ids.failRun}`],
      [as.auditor, '/alerts'], [as.auditor, `/alerts/${ids.alert}`], [as.auditor, '/reviews'], [as.auditor, '/reports'], [as.auditor, '/reports?verify=1'],
      [as.admin, '/admin/users'], [as.admin, '/admin/tokens'], [as.auditor, '/account'], [as.reviewer, `/runs/${ids.failRun}`], [as.operator, '/reviews'],
    ];
    for (const [who, url] of urls) {
      const res = await page(who, url);
      expect(res.status, `${url}: ${res.body.slice(0, 400)}`).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatch(/<h1>/);
      expectNoInlineCode(res.body);
    }
    const plan = await page(as.auditor, '/plans/ok-plan');
    expect(plan.body).toMatch(/<svg viewBox="0 0 640 220" role="img" aria-labelledby="chart-t chart-d"/);
    expect(plan.body).toContain('2 Messwerte'); // the text alternative
    expect(plan.body).toContain('1 Mal überschritten');
    expect(plan.body).toContain('<pre class="code">');
    expect(plan.body).not.toContain('Jetzt testen'); // auditors do not start tests
    const run = await page(as.auditor, `/runs/${ids.failRun}`);
    expect(run.body).toContain('CHECK_FAILED');
    expect(run.body).toContain('Hash stimmt');
    expect(run.body).toContain('Signatur gültig');
    expect(run.body).toContain(`/api/v1/runs/${ids.failRun}/protocol.pdf?lang=de`);
    expect(run.body).not.toContain('http-equiv="refresh"'); // finished: nothing to wait for
    const verify = await page(as.auditor, '/reports?verify=1');
    expect(verify.body).toContain('Die Nachweiskette ist unversehrt.');
  });

  it('the static files are served with cache headers', async () => {
    const css = await page(undefined, '/assets/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.headers.etag).toBeTruthy();
    const dash = await page(as.auditor, '/');
    const versioned = /href="(\/assets\/app\.css\?v=[0-9a-f]+)"/.exec(dash.body)![1]!;
    expect((await page(undefined, versioned)).headers['cache-control']).toContain('immutable');
    const js = await page(undefined, '/assets/app.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect((await page(undefined, '/assets/nope.js')).status).toBe(404);
  });

  it("another tenant's plan, run and alert are 404 pages, never 403", async () => {
    for (const url of ['/plans/their-plan', `/runs/${ids.otherRun}`, `/alerts/${ids.otherAlert}`, `/runs/${ids.otherRun}/live`, '/runs/not-a-uuid', '/alerts/nope']) {
      const res = await page(as.admin, url);
      expect(res.status, url).toBe(404);
      expect(res.body).toContain('Nicht gefunden');
      expect(res.body).not.toContain('Geheim');
      expectNoInlineCode(res.body);
    }
    expect((await post(as.admin, '/plans/their-plan/run', {})).status).toBe(404);
    expect((await post(as.admin, `/alerts/${ids.otherAlert}/acknowledge`, { reason: 'x' })).status).toBe(404);
  });
});

describe('forms', () => {
  it('run now: an auditor gets 403, a missing CSRF token 403, an operator a queued run and the run page', async () => {
    const denied = await post(as.auditor, '/plans/never-plan/run', {});
    expect(denied.status).toBe(403);
    expect(denied.body).toContain('Keine Berechtigung');
    const noCsrf = await post(as.operator, '/plans/never-plan/run', {}, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body).toContain('Das Formular ist abgelaufen');
    expect(await h.tdb.db.selectFrom('runs').select('id').where('plan_id', '=', 'never-plan').execute()).toHaveLength(0);

    expect((await page(as.operator, '/plans/never-plan')).body).toContain('Jetzt testen');
    const ok = await post(as.operator, '/plans/never-plan/run', {});
    expect(ok.status).toBe(303);
    const runId = /^\/runs\/([0-9a-f-]{36})$/.exec(String(ok.headers.location))![1]!;
    const row = await h.tdb.db.selectFrom('runs').select(['status', 'triggered_by', 'trigger']).where('id', '=', runId).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'queued', triggered_by: as.operator.email, trigger: 'manual' });
    expect(await h.c.queue.queue.getJob(`run-${runId}`)).toBeTruthy();

    // the run page: live progress with the script, a no-script refresh, the status region
    const live = await page(as.operator, `/runs/${runId}`);
    expect(live.body).toContain('<script src="/assets/app.js?v=');
    expect(live.body).toMatch(/<noscript><meta http-equiv="refresh" content="\d+"><\/noscript>/);
    expect(live.body).toMatch(/<p id="run-status" role="status" aria-live="polite">in der Warteschlange<\/p>/);
    expect(live.body).toContain(`data-live="/runs/${runId}/live"`);
    expectNoInlineCode(live.body);
    const json = await h.app.inject({ method: 'GET', url: `/runs/${runId}/live`, headers: { cookie: `${SESSION_COOKIE}=${as.operator.cookie}; lang=en` } });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toMatchObject({ status: 'queued', finished: false, statusText: 'queued' });
    expect(json.json().phases.map((p: { name: string }) => p.name)).toEqual(['queued', 'fetch', 'provision', 'restore', 'verify', 'teardown']);

    // a second start while it waits leads to the run that is there
    const again = await post(as.operator, '/plans/never-plan/run', {});
    expect(again.headers.location).toBe(`/runs/${runId}`);
  });

  it('review: validated next to the fields, stored, and four-eyes enforced with a reason shown', async () => {
    const bad = await post(as.reviewer, `/runs/${ids.failRun}/review`, { decision: 'rejected', comment: '' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/<textarea id="review-comment" name="comment"[^>]*aria-describedby="review-comment-hint review-comment-err"[^>]*aria-invalid="true"/);
    expect(bad.body).toContain('Bitte begründen.');
    const noDev = await post(as.reviewer, `/runs/${ids.failRun}/review`, { decision: 'approved-with-deviations', comment: 'ok' });
    expect(noDev.status).toBe(400);
    expect(noDev.body).toContain('Bei „freigegeben mit Abweichungen“ bitte die Abweichung beschreiben.');

    const ok = await post(as.reviewer, `/runs/${ids.failRun}/review`, {
      decision: 'approved-with-deviations', comment: 'Prüfung schlug fehl', devTitle: 'Tabelle prüfen', devOwner: 'IT', devDue: '2030-01-31',
    });
    expect(ok.status, ok.body.slice(0, 500)).toBe(303);
    const reviews = await h.tdb.db.selectFrom('reviews').select(['decision', 'reviewer']).where('run_id', '=', ids.failRun).execute();
    expect(reviews).toEqual([{ decision: 'approved-with-deviations', reviewer: as.reviewer.email }]);
    expect((await page(as.auditor, '/reviews')).body).toContain('Tabelle prüfen');

    // the reviewer triggered this run: the page says why there is no form, and a POST is refused
    const own = await page(as.reviewer, `/runs/${ids.ownRun}`);
    expect(own.body).toContain('Sie haben diesen Test ausgelöst');
    expect(own.body).not.toContain(`action="/runs/${ids.ownRun}/review"`);
    const refused = await post(as.reviewer, `/runs/${ids.ownRun}/review`, { decision: 'approved' });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('Vier-Augen-Prinzip');
    expect(await h.tdb.db.selectFrom('reviews').select('id').where('run_id', '=', ids.ownRun).execute()).toHaveLength(0);
    // an auditor may not review
    expect((await post(as.auditor, `/runs/${ids.okRun}/review`, { decision: 'approved' })).status).toBe(403);
  });

  it('alerts: a reason is required, then the alert is acknowledged (303)', async () => {
    const bad = await post(as.operator, `/alerts/${ids.alert}/acknowledge`, { reason: '  ' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('Bitte ausfüllen.');
    expect(bad.body).toMatch(/id="ack-reason"[^>]*aria-describedby="ack-reason-err"/);
    const ok = await post(as.operator, `/alerts/${ids.alert}/acknowledge`, { reason: 'Sicherung wird repariert' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe(`/alerts/${ids.alert}`);
    const a = await h.tdb.db.selectFrom('alerts').select(['acknowledged_by', 'acknowledged_reason']).where('id', '=', ids.alert).executeTakeFirstOrThrow();
    expect(a).toEqual({ acknowledged_by: as.operator.email, acknowledged_reason: 'Sicherung wird repariert' });
    const snooze = await post(as.operator, `/alerts/${ids.alert}/snooze`, { reason: 'Urlaub', for: 'P3D' });
    expect(snooze.status).toBe(303);
    expect((await post(as.auditor, `/alerts/${ids.alert}/snooze`, { reason: 'x', for: 'P1D' })).status).toBe(403);
  });

  it('a new API token is shown once after the redirect', async () => {
    const bad = await post(as.admin, '/admin/tokens', { name: '', role: 'operator' });
    expect(bad.status).toBe(400);
    const created = await post(as.admin, '/admin/tokens', { name: 'Monitoring', role: 'auditor' });
    expect(created.status).toBe(303);
    const flash = setCookies(created.headers).find((c) => c.startsWith('ef_flash='))!;
    expect(flash).toMatch(/HttpOnly/i);
    expect(flash).toMatch(/Path=\/admin\/tokens/);
    const cookie = `${SESSION_COOKIE}=${as.admin.cookie}; ${flash.split(';')[0]}`;
    const shown = await h.app.inject({ method: 'GET', url: '/admin/tokens', headers: { cookie } });
    const token = /<code class="break">(ef_[A-Za-z0-9_-]+)<\/code>/.exec(shown.body)?.[1];
    expect(token).toBeTruthy();
    expect((await h.request('GET', '/api/v1/plans', undefined, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await page(as.admin, '/admin/tokens')).body).not.toContain(token!);
    expect((await page(as.operator, '/admin/tokens')).status).toBe(403);
  });
});

describe('provider admins and the own account', () => {
  it('a provider admin outside any tenant is led to the tenant list and enters only by a grant', async () => {
    const prov = await user(null, 'chef@dienstleister.example', 'provider-admin');
    expect((await page(prov, '/')).headers.location).toBe('/admin/tenants');
    const list = await page(prov, '/admin/tenants');
    expect(list.status).toBe(200);
    expect(list.body).toContain('Nachbarstadt');
    expect(list.body).not.toContain(`action="/admin/tenants/${DEFAULT_TENANT_ID}/enter"`);
    expectNoInlineCode(list.body);
    expect((await post(prov, `/admin/tenants/${DEFAULT_TENANT_ID}/enter`, {})).status).toBe(404);
    await h.c.tenants.createGrant({ tenantId: DEFAULT_TENANT_ID, name: as.admin.email, role: 'admin', kind: 'session', userId: as.admin.id },
      { role: 'auditor', reason: 'Support-Fall 4711', expiresAt: new Date(Date.now() + 86_400_000).toISOString() }, {});
    expect((await page(prov, '/admin/tenants')).body).toContain(`action="/admin/tenants/${DEFAULT_TENANT_ID}/enter"`);
    const entered = await post(prov, `/admin/tenants/${DEFAULT_TENANT_ID}/enter`, {});
    expect(entered.status).toBe(303);
    prov.cookie = cookieValue(entered.headers, SESSION_COOKIE)!;
    prov.csrf = (await h.c.sessions.resolve(prov.cookie))!.session.csrf_token;
    const dash = await page(prov, '/');
    expect(dash.status).toBe(200);
    expect(dash.body).toContain('Standard-Mandant');
    expect(dash.body).toContain('href="/admin/tenants"');
    expect((await page(as.admin, '/admin/tenants')).status).toBe(403);
  });

  it('the own account: a personal token shown once, then log out everywhere', async () => {
    const me = await user(DEFAULT_TENANT_ID, 'ich@musterstadt.example', 'operator');
    const acc = await page(me, '/account');
    expect(acc.status).toBe(200);
    expect(acc.body).toContain('nicht eingerichtet');
    const created = await post(me, '/account/tokens', { name: 'Mein Skript' });
    expect(created.status).toBe(303);
    const flash = setCookies(created.headers).find((c) => c.startsWith('ef_flash='))!.split(';')[0]!;
    const shown = await h.app.inject({ method: 'GET', url: '/account', headers: { cookie: `${SESSION_COOKIE}=${me.cookie}; ${flash}` } });
    const token = /<code class="break">(ef_[A-Za-z0-9_-]+)<\/code>/.exec(shown.body)![1]!;
    const row = await h.tdb.db.selectFrom('api_tokens').select(['role', 'user_id']).where('name', '=', 'Mein Skript').executeTakeFirstOrThrow();
    expect(row).toEqual({ role: 'operator', user_id: me.id });
    expect((await h.request('GET', '/api/v1/plans', undefined, { authorization: `Bearer ${token}` })).status).toBe(200);
    const out = await post(me, '/account/logout-everywhere', {});
    expect(out.status).toBe(303);
    expect((await page(me, '/account')).status).toBe(303);
  });
});

describe('sign-in pages (account service)', () => {
  const PASSWORD = 'Ein-langes-Kennwort-2026';

  it('one message for unknown e-mail and wrong password; then a session cookie and the dashboard', async () => {
    await user(DEFAULT_TENANT_ID, 'pruefer.login@musterstadt.example', 'auditor', PASSWORD);
    const unknown = await post(undefined, '/login', { email: 'niemand@musterstadt.example', password: PASSWORD });
    const wrong = await post(undefined, '/login', { email: 'pruefer.login@musterstadt.example', password: 'falsch-falsch-falsch' });
    for (const r of [unknown, wrong]) {
      expect(r.status).toBe(401);
      expect(r.body).toContain('E-Mail-Adresse oder Passwort ist falsch.');
      expect(r.body).toMatch(/id="login-password"[^>]*aria-describedby="login-errors"/);
    }
    const empty = await post(undefined, '/login', { email: '', password: '' });
    expect(empty.status).toBe(400);
    const cross = await post(undefined, '/login', { email: 'pruefer.login@musterstadt.example', password: PASSWORD }, { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(cross.status).toBe(403);
    const ok = await post(undefined, '/login', { email: 'pruefer.login@musterstadt.example', password: PASSWORD, next: '/reviews' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/reviews');
    const cookie = cookieValue(ok.headers, SESSION_COOKIE)!;
    expect(cookie).toMatch(/^efs_/);
    const live = await h.c.sessions.resolve(cookie);
    const me: Who = { cookie, csrf: live!.session.csrf_token, email: 'pruefer.login@musterstadt.example', id: live!.user.id };
    expect((await page(me, '/reviews')).status).toBe(200);
    const out = await post(me, '/logout', {});
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login?out=1');
    expect((await page(me, '/')).status).toBe(303);
  });

  it('a reviewer without 2FA is led through enrolment and sees the recovery codes once', async () => {
    await user(DEFAULT_TENANT_ID, 'neu.pruefer@musterstadt.example', 'reviewer', PASSWORD);
    const res = await post(undefined, '/login', { email: 'neu.pruefer@musterstadt.example', password: PASSWORD });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login/enrol');
    const me: Who = { cookie: cookieValue(res.headers, SESSION_COOKIE)!, csrf: '', email: '', id: '' };
    me.csrf = (await h.c.sessions.resolve(me.cookie))!.session.csrf_token;
    expect((await page(me, '/')).headers.location).toBe('/login/enrol');
    const enrolPage = await page(me, '/login/enrol');
    expect(enrolPage.status).toBe(200);
    expect(enrolPage.body).toMatch(/<svg role="img" aria-label="QR-Code für die Authenticator-App" class="qr"/);
    expectNoInlineCode(enrolPage.body);
    const secret = /<code class="secret-key break">([A-Z2-7 ]+)<\/code>/.exec(enrolPage.body)![1]!.replace(/ /g, '');
    const wrongCode = await post(me, '/login/enrol', { code: '000000' });
    expect(wrongCode.status).toBe(400);
    expect(wrongCode.body).toContain('Neu beginnen');
    const done = await post(me, '/login/enrol', { code: totpCode(secret, h.c.clock()) });
    expect(done.status, done.body.slice(0, 300)).toBe(303);
    expect(done.headers.location).toBe('/login/recovery-codes');
    me.cookie = cookieValue(done.headers, SESSION_COOKIE)!;
    const flash = setCookies(done.headers).find((c) => c.startsWith('ef_flash='))!.split(';')[0]!;
    const codes = await h.app.inject({ method: 'GET', url: '/login/recovery-codes', headers: { cookie: `${SESSION_COOKIE}=${me.cookie}; ${flash}` } });
    expect(codes.statusCode).toBe(200);
    expect(codes.body.match(/<li><code>[^<]+<\/code><\/li>/g)).toHaveLength(10);
    expect((await page(me, '/login/recovery-codes')).status).toBe(303); // once only
    expect((await page(me, '/')).status).toBe(200);
  });

  it('an invitation sets the password with errors next to the fields', async () => {
    const inv = await h.c.accounts.invite({ tenantId: DEFAULT_TENANT_ID, name: 'admin@musterstadt.example', role: 'admin', kind: 'session', userId: as.admin.id }, { email: 'eingeladen@musterstadt.example', name: 'Eva Eingeladen', role: 'operator' }, {});
    const form = await page(undefined, `/invite/${inv.inviteToken}`);
    expect(form.status).toBe(200);
    expect(form.body).toContain('Eva Eingeladen');
    const weak = await post(undefined, `/invite/${inv.inviteToken}`, { password: 'kurz', repeat: 'kurz' });
    expect(weak.status).toBe(400);
    expect(weak.body).toContain('Mindestens 12 Zeichen.');
    const mismatch = await post(undefined, `/invite/${inv.inviteToken}`, { password: PASSWORD, repeat: `${PASSWORD}x` });
    expect(mismatch.body).toContain('Die Passwörter stimmen nicht überein.');
    const ok = await post(undefined, `/invite/${inv.inviteToken}`, { password: PASSWORD, repeat: PASSWORD });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/login?invited=1');
    expect((await page(undefined, `/invite/${inv.inviteToken}`)).status).toBe(404);
    expect((await page(undefined, '/login?invited=1')).body).toContain('Ihr Passwort ist gesetzt.');
  });
});

describe('dashboard cost', () => {
  it('issues the same number of queries for 5 and 50 plans, and renders 200 plans with 50,000 runs quickly', async () => {
    let queries = 0;
    const pool = new pg.Pool({ connectionString: h.tdb.appUrl, max: 5 });
    const counting = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), log: (e) => { if (e.level === 'query') queries++; } });
    const app = await buildApp({ ...appDeps(h.c, ['api']), db: counting });
    try {
      const tenant = async (slug: string, plans: number, runsPerPlan: number) => {
        const id = (await h.tdb.db.insertInto('tenants').values({ slug, name: slug, created_at: h.c.clock() }).returning('id').executeTakeFirstOrThrow()).id;
        const now = h.c.clock(); // the app's clock, never the database's
        const def = JSON.stringify((await h.c.plans.get(DEFAULT_TENANT_ID, 'late-plan')).definition);
        await sql`insert into plans (tenant_id, id, title, origin, source_file, version_hash, definition, created_at, updated_at)
          select ${id}::uuid, 'p' || i, 'Plan ' || i, 'api', null, ${'b'.repeat(64)}, ${def}::jsonb, ${now}::timestamptz - interval '30 days', ${now}::timestamptz
          from generate_series(1, ${plans}) i`.execute(h.tdb.db);
        await sql`insert into plan_versions (tenant_id, plan_id, hash, definition, origin, source_file, created_at)
          select ${id}::uuid, 'p' || i, ${'b'.repeat(64)}, ${def}::jsonb, 'api', null, ${now}::timestamptz from generate_series(1, ${plans}) i`.execute(h.tdb.db);
        await sql`insert into runs (id, tenant_id, plan_id, plan_version_hash, status, verdict, trigger, triggered_by, queued_at, started_at, finished_at, rto)
          select gen_random_uuid(), ${id}::uuid, 'p' || (1 + i % ${plans}), ${'b'.repeat(64)}, 'finished',
            (array['passed','passed','passed','failed','error'])[1 + i % 5]::text, 'api', 'seed',
            ${now}::timestamptz - (i || ' minutes')::interval, ${now}::timestamptz - (i || ' minutes')::interval, ${now}::timestamptz - (i || ' minutes')::interval + interval '30 seconds',
            jsonb_build_object('targetSeconds', 3600, 'measuredSeconds', 30 + i % 100, 'met', true)
          from generate_series(1, ${plans * runsPerPlan}) i`.execute(h.tdb.db);
        const u = await user(id, `admin@${slug}.example`, 'admin');
        return u;
      };
      const measure = async (who: Who) => {
        queries = 0;
        const res = await page(who, '/', { app });
        expect(res.status).toBe(200);
        return { queries, body: res.body };
      };
      const small = await measure(await tenant('klein', 5, 4));
      const large = await measure(await tenant('gross', 50, 4));
      expect(small.body.match(/<tr>\n<th scope="row">/g)).toHaveLength(5);
      expect(large.body.match(/<tr>\n<th scope="row">/g)).toHaveLength(50);
      expect(large.queries).toBe(small.queries);
      expect(small.queries).toBeLessThanOrEqual(8);

      // a big tenant: still the same queries (its speed is measured by npm run bench:dashboard / bench:provider, not asserted here:
      // a shared machine's load would make a time limit flaky)
      const big = await measure(await tenant('kreis', 200, 250));
      expect(big.body.match(/<tr>\n<th scope="row">/g)).toHaveLength(200);
      expect(big.queries).toBe(small.queries);
    } finally {
      await app.close();
      await counting.destroy();
    }
  });
});
