import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { TEST_TOKEN } from '../helpers/config.js';

const PUBLIC_URL = 'https://ernstfall.musterstadt.example';
const CANARY = 'Kanarie-Kalender-Geheimnis-4711';
const OTHER_TENANT = '00000000-0000-4000-8000-0000000ca1e0';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let h: Harness;
let now = new Date('2026-12-01T00:00:00Z');
let logs = '';
/** every feed token this file ever saw: none of them may reach the log */
const seenTokens: string[] = [];
const tok: Record<string, string> = {};

const as = (token: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body?: unknown) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, payload: body ? JSON.stringify(body) : undefined })
    .then((r) => ({ status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined }));

/** A calendar client: no Authorization header, only the URL. */
const fetchFeed = (url: string) => h.app.inject({ method: 'GET', url: url.replace(PUBLIC_URL, '') });

async function createFeed(body: Record<string, unknown>, token?: string) {
  const res = token ? await as(token, 'POST', '/api/v1/calendar-feeds', body) : await h.request('POST', '/api/v1/calendar-feeds', body);
  if (res.status === 201) seenTokens.push(res.body.token);
  return res;
}

interface VEvent { [prop: string]: string }

/** Unfolds the lines (RFC 5545 3.1) and reads each VEVENT into "NAME;PARAMS" -> value. */
function parseIcs(text: string): { lines: string[]; events: VEvent[] } {
  expect(text).toContain('\r\n');
  const lines = text.replace(/\r\n[ \t]/g, '').split('\r\n').filter(Boolean);
  const events: VEvent[] = [];
  let cur: VEvent | null = null;
  for (const line of lines) {
    if (line === 'BEGIN:VEVENT') cur = {};
    else if (line === 'END:VEVENT') {
      events.push(cur!);
      cur = null;
    } else if (cur) {
      const i = line.indexOf(':');
      cur[line.slice(0, i)] = line.slice(i + 1);
    }
  }
  return { lines, events };
}
const byUid = (events: VEvent[], uid: string) => events.find((e) => e.UID === uid);
/** An occurrence's UID: kind, plan, its time (UTC, to the minute) and the tenant; today's overdue event has no time. */
const uid = (kind: string, planId: string, at?: string, tenantId = DEFAULT_TENANT_ID) => `${kind}-${planId}${at ? `-${at}` : ''}-${tenantId}@ernstfall`;
const ofPlan = (events: VEvent[], kind: string, planId: string) => events.filter((e) => e.UID!.startsWith(`${kind}-${planId}-`));

async function plan(id: string, title: string, cadence: Record<string, unknown> | undefined, createdAt: string, over: Record<string, unknown> = {}) {
  await h.putPlan(pgPlan(id, `geheimer-pfad/${id}.dump`, { title, ...(cadence ? { cadence } : {}), ...over }));
  await h.tdb.db.updateTable('plans').set({ created_at: new Date(createdAt) }).where('id', '=', id).execute();
}

beforeAll(async () => {
  h = await startHarness({
    worker: false,
    clock: () => now,
    env: { LOG_LEVEL: 'debug', ERNSTFALL_PUBLIC_URL: PUBLIC_URL },
    logSink: { write: (s: string) => { logs += s; } },
  });
  for (const [name, role] of [['Otto Operator', 'operator'], ['Bob Prüfer', 'reviewer'], ['Carol Auditorin', 'auditor']] as const) {
    const res = await h.request('POST', '/api/v1/tokens', { name, role });
    expect(res.status).toBe(201);
    tok[name] = res.body.token;
  }
  // winter: Berlin is UTC+1
  await plan('nightly', 'Einwohnermeldewesen', { schedule: '0 2 * * *', timezone: 'Europe/Berlin', requiredEvery: 'P7D' }, '2026-11-28T00:00:00Z',
    { checks: [{ canary: { sql: 'select 1', equals: CANARY } }] });
  await plan('london', 'Partnerstadt-Server', { schedule: '0 2 * * *', timezone: 'Europe/London' }, '2026-11-28T00:00:00Z');
  await plan('late', 'Kfz-Zulassung', { requiredEvery: 'P1D' }, '2026-11-20T10:00:00Z');
  await plan('paused-plan', 'Finanzwesen', { schedule: '0 3 * * *', timezone: 'Europe/Berlin', requiredEvery: 'P30D' }, '2026-11-28T00:00:00Z');
  await plan('manual', 'Ohne Zeitplan', undefined, '2026-11-28T00:00:00Z');
  expect((await h.request('POST', '/api/v1/plans/paused-plan/pause', { reason: 'Umzug ins neue Rechenzentrum' })).status).toBe(200);
});
afterAll(async () => {
  await h?.close();
});

describe('calendar feed', () => {
  let feed: { id: string; url: string; token: string };

  it('creates a feed: the URL and token are shown once and stored only as SHA-256', async () => {
    const res = await createFeed({ name: 'Outlook IT-Leitung' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'Outlook IT-Leitung', lang: 'de', id: expect.any(String), createdAt: expect.any(String) });
    expect(res.body.token).toMatch(/^efcal_[A-Za-z0-9_-]{43}$/);
    expect(res.body.url).toBe(`${PUBLIC_URL}/calendar/${res.body.token}.ics`);
    feed = res.body;
    const stored = await h.tdb.db.selectFrom('calendar_feeds').selectAll().where('id', '=', feed.id).executeTakeFirstOrThrow();
    expect(stored.token_hash).toBe(sha256(feed.token));
    expect(JSON.stringify(stored)).not.toContain(feed.token.slice(6));
    const list = await h.request('GET', '/api/v1/calendar-feeds');
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([{
      id: feed.id, name: 'Outlook IT-Leitung', lang: 'de', createdAt: res.body.createdAt, createdBy: 'bootstrap-token', revokedAt: null, lastUsedAt: null,
    }]);
    expect(JSON.stringify(list.body)).not.toContain(feed.token);
    expect((await h.request('POST', '/api/v1/calendar-feeds', { name: '' })).status).toBe(400);
    expect((await h.request('POST', '/api/v1/calendar-feeds', { name: 'x', lang: 'fr' })).status).toBe(400);
  });

  it('serves the .ics without a bearer token: next scheduled test in Europe/Berlin, due dates, today\'s overdue event (German)', async () => {
    const res = await fetchFeed(feed.url);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/calendar; charset=utf-8');
    expect(res.headers['cache-control']).toBe('private, max-age=300');
    const { lines, events } = parseIcs(res.body);
    expect(lines[0]).toBe('BEGIN:VCALENDAR');
    expect(lines.at(-1)).toBe('END:VCALENDAR');
    expect(lines).toContain('VERSION:2.0');
    expect(lines).toContain('X-WR-CALNAME:ernstfall – Standard-Mandant');
    expect(lines).toContain('TZID:Europe/Berlin'); // the VTIMEZONE the events refer to

    // 02:00 Berlin = 01:00 UTC, the first slot after "now" (2026-12-01 00:00 UTC)
    const nightly = byUid(events, uid('scheduled', 'nightly', '20261201T0100'))!;
    expect(nightly).toMatchObject({
      SUMMARY: 'Wiederherstellungstest: Einwohnermeldewesen',
      'DTSTART;TZID=Europe/Berlin': '20261201T020000',
      'DTEND;TZID=Europe/Berlin': '20261201T023000',
      'URL;VALUE=URI': `${PUBLIC_URL}/plans/nightly`,
      TRANSP: 'TRANSPARENT',
    });
    expect(nightly.DTSTAMP).toBe('20261201T000000Z');
    expect(nightly.DESCRIPTION).toContain('Status: noch nie getestet');
    expect(nightly.DESCRIPTION).toContain(`${PUBLIC_URL}/plans/nightly`);
    // every slot in the horizon (90 days: 1 Dec to 28 Feb), each at 02:00 Berlin, winter and all
    const slots = ofPlan(events, 'scheduled', 'nightly');
    expect(slots).toHaveLength(90);
    expect(new Set(slots.map((e) => e['DTSTART;TZID=Europe/Berlin']!.slice(9)))).toEqual(new Set(['020000']));
    expect(slots.at(-1)!['DTSTART;TZID=Europe/Berlin']).toBe('20270228T020000');
    // a plan scheduled in another zone shows at the same instant, in Berlin time: 02:00 London = 03:00 Berlin
    expect(byUid(events, uid('scheduled', 'london', '20261201T0200'))).toMatchObject({ 'DTSTART;TZID=Europe/Berlin': '20261201T030000' });
    expect(ofPlan(events, 'scheduled', 'london')).toHaveLength(90);
    // due 7 days after creation (2026-11-28 00:00 UTC = 01:00 Berlin) as an all-day event; the schedule's slots stand for later ones
    expect(byUid(events, uid('due', 'nightly', '20261205T0000'))).toMatchObject({ SUMMARY: 'Fällig: Einwohnermeldewesen', 'DTSTART;VALUE=DATE': '20261205', 'DTEND;VALUE=DATE': '20261206' });
    expect(ofPlan(events, 'due', 'nightly')).toHaveLength(1);

    // overdue: the due date in the past stays, an event today says so, and without a schedule every later due date is projected from today
    expect(byUid(events, uid('due', 'late', '20261121T1000'))).toMatchObject({ SUMMARY: 'Fällig: Kfz-Zulassung', 'DTSTART;VALUE=DATE': '20261121' });
    const lateDues = ofPlan(events, 'due', 'late');
    expect(lateDues.slice(1).map((e) => e['DTSTART;VALUE=DATE'])).toEqual(Array.from({ length: 90 }, (_, i) => new Date(Date.UTC(2026, 11, 2 + i)).toISOString().slice(0, 10).replace(/-/g, '')));
    expect(lateDues[1]!.DESCRIPTION).toContain('Hochgerechnet');
    const overdue = byUid(events, uid('overdue', 'late'))!;
    expect(overdue).toMatchObject({ SUMMARY: 'ÜBERFÄLLIG: Kfz-Zulassung', 'DTSTART;VALUE=DATE': '20261201', 'DTEND;VALUE=DATE': '20261202' });
    expect(overdue.DESCRIPTION).toContain('Status: überfällig');
    // not overdue: no overdue event
    expect(events.filter((e) => e.UID!.startsWith('overdue-')).map((e) => e.UID)).toEqual([uid('overdue', 'late')]);

    // paused: no scheduled event; the due events say it is paused and why, and later ones are projected (30 days apart)
    expect(ofPlan(events, 'scheduled', 'paused-plan')).toEqual([]);
    const paused = ofPlan(events, 'due', 'paused-plan');
    expect(paused.map((e) => e['DTSTART;VALUE=DATE'])).toEqual(['20261228', '20270127', '20270226']);
    expect(paused[0]!.DESCRIPTION).toContain('Zeitplan pausiert seit 01.12.2026');
    expect(paused[0]!.DESCRIPTION).toContain('Umzug ins neue Rechenzentrum');
    // no schedule and no deadline: nothing to put in a calendar
    expect(events.filter((e) => e.UID!.includes('-manual-'))).toEqual([]);
    expect(events).toHaveLength(90 + 1 + 90 + 91 + 1 + 3);

    // no canary values, no backup paths, no tokens
    expect(res.body).not.toContain(CANARY);
    expect(res.body).not.toContain('geheimer-pfad');
    expect(res.body).not.toContain(feed.token);

    const list = await h.request('GET', '/api/v1/calendar-feeds');
    expect(list.body.items[0].lastUsedAt).not.toBeNull();
  });

  it('keeps UIDs stable: a later fetch drops the slot that passed, keeps every other occurrence as it was and adds the next one', async () => {
    const before = parseIcs((await fetchFeed(feed.url)).body).events.filter((e) => e.UID!.startsWith('scheduled-nightly-'));
    now = new Date('2026-12-01T06:00:00Z'); // after today's 02:00 slot
    const after = parseIcs((await fetchFeed(feed.url)).body).events.filter((e) => e.UID!.startsWith('scheduled-nightly-'));
    now = new Date('2026-12-01T00:00:00Z');
    const was = new Map(before.map((e) => [e.UID, e['DTSTART;TZID=Europe/Berlin']]));
    expect(after.map((e) => e.UID)).not.toContain(uid('scheduled', 'nightly', '20261201T0100'));
    for (const e of after.slice(0, -1)) expect(e['DTSTART;TZID=Europe/Berlin']).toBe(was.get(e.UID));
    expect(after.at(-1)!['DTSTART;TZID=Europe/Berlin']).toBe('20270301T020000');
    expect(after).toHaveLength(before.length);
  });

  it('speaks English when the feed was created with lang en', async () => {
    const res = await createFeed({ name: 'Thunderbird deputy', lang: 'en' });
    expect(res.status).toBe(201);
    expect(res.body.lang).toBe('en');
    const { events } = parseIcs((await fetchFeed(res.body.url)).body);
    expect(byUid(events, uid('scheduled', 'nightly', '20261201T0100'))!.SUMMARY).toBe('Restore test: Einwohnermeldewesen');
    expect(byUid(events, uid('due', 'late', '20261121T1000'))!.SUMMARY).toBe('Due: Kfz-Zulassung');
    expect(byUid(events, uid('overdue', 'late'))!.SUMMARY).toBe('OVERDUE: Kfz-Zulassung');
    expect(byUid(events, uid('due', 'paused-plan', '20261228T0000'))!.DESCRIPTION).toContain('Schedule paused since');
  });

  it('answers 404 alike for a revoked, an unknown and a malformed feed URL', async () => {
    const res = await createFeed({ name: 'wird widerrufen' });
    expect((await fetchFeed(res.body.url)).statusCode).toBe(200);
    expect((await as(TEST_TOKEN, 'DELETE', `/api/v1/calendar-feeds/${res.body.id}`)).status).toBe(204);
    const revoked = await fetchFeed(res.body.url);
    expect(revoked.statusCode).toBe(404);
    const unknown = await fetchFeed(`/calendar/efcal_${randomBytes(32).toString('base64url')}.ics`);
    const malformed = await Promise.all([
      `/calendar/${res.body.token}`, '/calendar/nope.ics', '/calendar/efcal_short.ics', `/calendar/${res.body.token.toUpperCase()}.ics`, `/calendar/${res.body.token}.ics.ics`,
    ].map(fetchFeed));
    for (const r of [unknown, ...malformed]) {
      expect(r.statusCode).toBe(404);
      expect(r.body).toBe(revoked.body);
    }
    expect(JSON.parse(revoked.body)).toEqual({ error: 'NotFound', message: 'calendar feed not found' });
    // revoking again, or an id that does not exist: 404
    expect((await as(TEST_TOKEN, 'DELETE', `/api/v1/calendar-feeds/${res.body.id}`)).status).toBe(404);
    expect((await as(TEST_TOKEN, 'DELETE', `/api/v1/calendar-feeds/${randomUUID()}`)).status).toBe(404);
    const listed = (await h.request('GET', '/api/v1/calendar-feeds')).body.items.find((f: { id: string }) => f.id === res.body.id);
    expect(listed.revokedAt).not.toBeNull();
    // the other feeds still work
    expect((await fetchFeed(feed.url)).statusCode).toBe(200);
  });

  it('lets operators and admins create and revoke feeds; reviewers and auditors only list them (403)', async () => {
    for (const who of ['Bob Prüfer', 'Carol Auditorin']) {
      expect((await as(tok[who]!, 'POST', '/api/v1/calendar-feeds', { name: 'x' })).status).toBe(403);
      expect((await as(tok[who]!, 'DELETE', `/api/v1/calendar-feeds/${feed.id}`)).status).toBe(403);
      expect((await as(tok[who]!, 'GET', '/api/v1/calendar-feeds')).status).toBe(200);
    }
    const created = await createFeed({ name: 'Ottos Kalender' }, tok['Otto Operator']);
    expect(created.status).toBe(201);
    expect((await as(tok['Otto Operator']!, 'GET', '/api/v1/calendar-feeds')).body.items.find((f: { id: string }) => f.id === created.body.id).createdBy).toBe('Otto Operator');
    expect((await as(tok['Otto Operator']!, 'DELETE', `/api/v1/calendar-feeds/${created.body.id}`)).status).toBe(204);
    // without any token: 401, not the feed list
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/calendar-feeds' })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/calendar-feeds', payload: { name: 'x' } })).statusCode).toBe(401);
  });

  it('keeps tenants apart: another tenant\'s feed id is 404 here, and each feed shows only its own tenant\'s plans', async () => {
    const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
    await owner.connect();
    const otherToken = `ef_${randomBytes(32).toString('base64url')}`;
    await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbarstadt', 'Nachbarstadt', $2)`, [OTHER_TENANT, h.c.clock()]);
    await owner.query(`insert into api_tokens (id, tenant_id, name, role, token_hash, created_by, created_at) values ($1, $2, 'Nachbar Admin', 'admin', $3, 'test', $4)`,
      [randomUUID(), OTHER_TENANT, sha256(otherToken), h.c.clock()]);
    await owner.end();
    // created (by the app's clock, as every business time) ten days before "now": a daily plan never tested is overdue
    const today = now;
    now = new Date('2026-11-21T10:00:00Z');
    expect((await as(otherToken, 'PUT', '/api/v1/plans/nachbar-geheim', pgPlan('nachbar-geheim', 'n.dump', { title: 'Geheimplan Nachbarstadt', cadence: { requiredEvery: 'P1D' } }))).status).toBe(201);
    now = today;
    const theirs = await createFeed({ name: 'Nachbar-Kalender' }, otherToken);
    expect(theirs.status).toBe(201);

    // we can neither see nor revoke their feed
    expect((await as(TEST_TOKEN, 'DELETE', `/api/v1/calendar-feeds/${theirs.body.id}`)).status).toBe(404);
    expect((await h.request('GET', '/api/v1/calendar-feeds')).body.items.map((f: { id: string }) => f.id)).not.toContain(theirs.body.id);
    expect((await as(otherToken, 'GET', '/api/v1/calendar-feeds')).body.items.map((f: { id: string }) => f.id)).toEqual([theirs.body.id]);
    expect((await as(otherToken, 'DELETE', `/api/v1/calendar-feeds/${feed.id}`)).status).toBe(404);

    const ours = await fetchFeed(feed.url);
    const their = await fetchFeed(theirs.body.url);
    expect(their.statusCode).toBe(200);
    const theirEvents = parseIcs(their.body).events;
    expect(theirEvents.every((e) => e.UID!.endsWith(`-${OTHER_TENANT}@ernstfall`) && e.UID!.includes('-nachbar-geheim-'))).toBe(true);
    expect(theirEvents.map((e) => e.UID)).toEqual(expect.arrayContaining([uid('due', 'nachbar-geheim', '20261122T1000', OTHER_TENANT), uid('overdue', 'nachbar-geheim', undefined, OTHER_TENANT)]));
    expect(their.body).toContain('X-WR-CALNAME:ernstfall – Nachbarstadt');
    expect(their.body).not.toContain('Einwohnermeldewesen');
    expect(ours.body).not.toContain('Geheimplan Nachbarstadt');
    expect(ours.body).not.toContain('nachbar-geheim');
  });

  it('never writes a feed token to the log, though every fetch is logged', async () => {
    expect(seenTokens.length).toBeGreaterThanOrEqual(5);
    expect(logs).toContain('calendar feed created'); // debug logs were really captured
    for (const t of seenTokens) {
      expect(logs).not.toContain(t);
      expect(logs).not.toContain(t.slice(6, 30));
    }
    // the access log of a fetch is there, without the secret
    expect(logs).toContain('/calendar/[redacted].ics');
  });
});
