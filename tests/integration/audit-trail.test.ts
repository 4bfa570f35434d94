import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { parseEnvelope } from '../../services/evidence/ledger-format.js';

let h: Harness;
const T = DEFAULT_TENANT_ID;
const BOOT = { name: 'bootstrap-token', kind: 'bootstrap' };
let operator: string;
let auditor: string;
let other: { tenantId: string; operator: string; auditor: string };

const as = (token: string) => ({ authorization: `Bearer ${token}` });

/** The tenant's audit records (payloads), oldest first. */
type Payload = Record<string, any> & { seq: number };
async function auditPayloads(tenantId = T): Promise<Payload[]> {
  const records = await h.c.ledger.repo.list(tenantId, { kind: 'audit' });
  return records.map((r) => ({ ...(parseEnvelope(r).payload as Record<string, any>), seq: r.seq }));
}

async function headSeq(tenantId = T) {
  return (await h.c.ledger.repo.head(tenantId))?.seq ?? 0;
}

/** Runs `act` and returns the audit records it added (to any ledger record kind's sequence, only audit ones). */
async function added(act: () => Promise<unknown>, tenantId = T) {
  const before = await headSeq(tenantId);
  await act();
  return (await auditPayloads(tenantId)).filter((p) => p.seq > before);
}

async function one(action: string, act: () => Promise<unknown>, tenantId = T) {
  const recs = await added(act, tenantId);
  expect(recs.map((r) => r.action)).toEqual([action]);
  return recs[0]!;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  operator = (await h.request('POST', '/api/v1/tokens', { name: 'ops-anna', role: 'operator' })).body.token;
  auditor = (await h.request('POST', '/api/v1/tokens', { name: 'audit-bert', role: 'auditor' })).body.token;
  const t2 = await h.tdb.db.insertInto('tenants').values({ slug: 'zweite', name: 'Zweiter Mandant', created_at: h.c.clock() }).returning('id').executeTakeFirstOrThrow();
  other = {
    tenantId: t2.id,
    operator: (await h.c.tokens.create(t2.id, { name: 'ops-zweite', role: 'operator' }, 'test')).token,
    auditor: (await h.c.tokens.create(t2.id, { name: 'audit-zweite', role: 'auditor' }, 'test')).token,
  };
});
afterAll(async () => {
  await h?.close();
});

describe('the audit trail', () => {
  it('records token creation and revocation with name and role, never the token', async () => {
    let created: any;
    const rec = await one('token.created', async () => {
      created = (await h.request('POST', '/api/v1/tokens', { name: 'ci-pipeline', role: 'operator', expiresAt: '2099-01-01T00:00:00Z' })).body;
    });
    expect(rec).toMatchObject({
      actor: BOOT, subject: { type: 'token', id: created.id },
      details: { name: 'ci-pipeline', role: 'operator', expiresAt: '2099-01-01T00:00:00.000Z' },
    });
    expect(rec.ip).toBe('127.0.0.1');
    const revoked = await one('token.revoked', () => h.request('POST', `/api/v1/tokens/${created.id}/revoke`));
    expect(revoked).toMatchObject({ actor: BOOT, subject: { type: 'token', id: created.id } });

    // no token value in any ledger record of any tenant
    const all = await h.tdb.db.selectFrom('ledger_records').select('canonical').execute();
    for (const secret of [created.token, operator, auditor, other.operator, other.auditor]) {
      expect(all.some((r) => r.canonical.includes(secret))).toBe(false);
    }
  });

  it('records a plan change once per new version, with the version it replaced', async () => {
    const first = await one('plan.changed', () => h.request('PUT', '/api/v1/plans/audit-plan', pgPlan('audit-plan', 'a.dump'), as(operator)));
    expect(first).toMatchObject({ actor: { name: 'ops-anna', kind: 'token' }, subject: { type: 'plan', id: 'audit-plan' }, details: { created: true, previousVersion: null } });
    expect(first.details.version).toMatch(/^[0-9a-f]{64}$/);

    // the same content again: no new version, nothing recorded
    expect(await added(() => h.request('PUT', '/api/v1/plans/audit-plan', pgPlan('audit-plan', 'a.dump'), as(operator)))).toEqual([]);

    const changed = await one('plan.changed', () => h.request('PUT', '/api/v1/plans/audit-plan', pgPlan('audit-plan', 'b.dump'), as(operator)));
    expect(changed.details).toMatchObject({ created: false, previousVersion: first.details.version });
    expect(changed.details.version).not.toBe(first.details.version);

    // a refused change records nothing
    expect(await added(() => h.request('PUT', '/api/v1/plans/audit-plan', { id: 'audit-plan' }, as(operator)))).toEqual([]);
  });

  it('records manual runs and cancellations with who did it', async () => {
    let runId = '';
    const triggered = await one('run.triggered', async () => {
      const res = await h.request('POST', '/api/v1/plans/audit-plan/runs', undefined, as(operator));
      expect(res.status).toBe(202);
      runId = res.body.id;
    });
    expect(triggered).toMatchObject({ actor: { name: 'ops-anna', kind: 'token' }, subject: { type: 'run', id: runId }, details: { planId: 'audit-plan' } });

    const before = await headSeq();
    const res = await h.request('POST', `/api/v1/runs/${runId}/cancel`, undefined, as(operator));
    expect(res.status).toBe(202);
    const recs = (await auditPayloads()).filter((p) => p.seq > before);
    expect(recs.map((r) => r.action)).toEqual(['run.cancelled']);
    expect(recs[0]).toMatchObject({ actor: { name: 'ops-anna', kind: 'token' }, subject: { type: 'run', id: runId }, details: { planId: 'audit-plan' } });
    // a refused action (run finished already) records nothing
    expect(await added(() => h.request('POST', `/api/v1/runs/${runId}/cancel`, undefined, as(operator)))).toEqual([]);
  });

  it('records pausing and resuming a schedule with the reason', async () => {
    const paused = await one('schedule.paused', () => h.request('POST', '/api/v1/plans/audit-plan/pause', { reason: 'Migration (Ticket 4711)' }, as(operator)));
    expect(paused).toMatchObject({ actor: { name: 'ops-anna' }, subject: { type: 'plan', id: 'audit-plan' }, details: { reason: 'Migration (Ticket 4711)' } });
    const resumed = await one('schedule.resumed', () => h.request('POST', '/api/v1/plans/audit-plan/resume', undefined, as(operator)));
    expect(resumed).toMatchObject({ actor: { name: 'ops-anna' }, details: { pauseReason: 'Migration (Ticket 4711)', pausedBy: 'ops-anna' } });
  });

  it('records calendar feeds created and revoked, never their URL', async () => {
    let feed: any;
    const created = await one('calendar-feed.created', async () => {
      feed = (await h.request('POST', '/api/v1/calendar-feeds', { name: 'Outlook IT-Leitung' }, as(operator))).body;
    });
    expect(created).toMatchObject({ actor: { name: 'ops-anna' }, subject: { type: 'calendar-feed', id: feed.id }, details: { name: 'Outlook IT-Leitung', lang: 'de' } });
    const revoked = await one('calendar-feed.revoked', () => h.app.inject({ method: 'DELETE', url: `/api/v1/calendar-feeds/${feed.id}`, headers: as(operator) }));
    expect(revoked.subject).toEqual({ type: 'calendar-feed', id: feed.id });
    const all = await h.tdb.db.selectFrom('ledger_records').select('canonical').execute();
    expect(all.some((r) => r.canonical.includes(feed.token) || r.canonical.includes(feed.url))).toBe(false);
  });

  it('records exports: run protocol, audit report, evidence bundle', async () => {
    const runId = await seedRun(h, { planId: 'audit-plan', verdict: 'passed', finishedAt: new Date() });
    const protocol = await one('export.protocol', async () => {
      expect((await h.request('GET', `/api/v1/runs/${runId}/protocol.pdf?lang=en`, undefined, as(auditor))).status).toBe(200);
    });
    expect(protocol).toMatchObject({ actor: { name: 'audit-bert', kind: 'token' }, subject: { type: 'run', id: runId }, details: { lang: 'en' } });

    const report = await one('export.audit-report', async () => {
      expect((await h.request('GET', '/api/v1/reports/audit?from=2026-01-01&to=2026-12-31&format=csv', undefined, as(auditor))).status).toBe(200);
    });
    expect(report).toMatchObject({ actor: { name: 'audit-bert' }, details: { from: '2026-01-01', to: '2026-12-31', format: 'csv' } });

    const head = await headSeq();
    const bundle = await one('export.evidence-bundle', async () => {
      const res = await h.request('GET', '/api/v1/evidence/bundle?fromSeq=2', undefined, as(auditor));
      expect(res.status).toBe(200);
      expect(res.body.records.at(-1).seq).toBe(head);
    });
    expect(bundle.details).toEqual({ fromSeq: 2, toSeq: head });
    // a refused export (wrong role) records nothing
    expect(await added(() => h.request('GET', '/api/v1/evidence/bundle', undefined, as(operator)))).toEqual([]);
  });

  it('shows the activity of the period in the audit report', async () => {
    const res = await h.request('GET', `/api/v1/reports/audit?from=2000-01-01&to=2099-12-31&format=json`, undefined, as(auditor));
    expect(res.status).toBe(200);
    const actions = res.body.activity.map((a: { action: string }) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['token.created', 'plan.changed', 'run.triggered', 'run.cancelled', 'export.protocol']));
    expect(res.body.activity.find((a: { action: string }) => a.action === 'run.triggered')).toMatchObject({ actor: 'ops-anna', subject: expect.stringMatching(/^run /) });
    const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2000-01-01&to=2099-12-31', headers: as(auditor) });
    expect(pdf.statusCode).toBe(200);
  });

  it('records plan files synced at start as changed by the file, and only when a file changed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-plans-'));
    const yaml = (id: string, db: string) => `id: ${id}\ntitle: Aus Datei\ntargets: { rto: 1h, rpo: 1d }\nsource: { path: f.dump }\nrestore: { driver: postgres, database: ${db} }\n`;
    await writeFile(join(dir, 'a.yaml'), yaml('file-a', 'a'));
    await writeFile(join(dir, 'b.yaml'), yaml('file-b', 'b'));
    await mkdir(join(dir, 'zweite'));
    await writeFile(join(dir, 'zweite', 'c.yaml'), yaml('file-c', 'c'));

    const first = await added(() => h.c.plans.syncFromDir(dir));
    expect(first.map((r) => [r.action, r.subject.id, r.actor])).toEqual([
      ['plan.changed', 'file-a', { kind: 'system', name: 'restore-plans/a.yaml' }],
      ['plan.changed', 'file-b', { kind: 'system', name: 'restore-plans/b.yaml' }],
    ]);
    expect(first[0]!.details).toMatchObject({ created: true, previousVersion: null });
    // the sub-folder's plan goes to that tenant's chain
    expect((await auditPayloads(other.tenantId)).filter((p) => p.subject?.id === 'file-c')).toHaveLength(1);

    // a restart without changes records nothing
    const otherHead = await headSeq(other.tenantId);
    expect(await added(() => h.c.plans.syncFromDir(dir))).toEqual([]);
    expect(await headSeq(other.tenantId)).toBe(otherHead);

    await writeFile(join(dir, 'b.yaml'), yaml('file-b', 'b2'));
    const changed = await added(() => h.c.plans.syncFromDir(dir));
    expect(changed.map((r) => r.subject.id)).toEqual(['file-b']);
    expect(changed[0]!.details).toMatchObject({ created: false, previousVersion: first[1]!.details.version });
    await rm(dir, { recursive: true, force: true });
  });
});

describe('GET /api/v1/audit', () => {
  it('is for admins and auditors only', async () => {
    expect((await h.request('GET', '/api/v1/audit', undefined, as(operator))).status).toBe(403);
    expect((await h.request('GET', '/api/v1/audit', undefined, as(auditor))).status).toBe(200);
    expect((await h.request('GET', '/api/v1/audit')).status).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(401);
  });

  it('lists the audit records newest first, a page at a time', async () => {
    const expected = (await auditPayloads()).map((p) => p.seq).reverse();
    expect(expected.length).toBeGreaterThan(10);
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await h.request('GET', `/api/v1/audit?limit=4${cursor ? `&cursor=${cursor}` : ''}`, undefined, as(auditor));
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(4);
      seen.push(...res.body.items.map((i: { seq: number }) => i.seq));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen).toEqual(expected);

    const first = (await h.request('GET', '/api/v1/audit?limit=1', undefined, as(auditor))).body.items[0];
    expect(Object.keys(first).sort()).toEqual(['action', 'actor', 'at', 'details', 'ip', 'recordHash', 'seq', 'subject']);
  });

  it('filters by action and period, and refuses a bad cursor or date', async () => {
    const res = await h.request('GET', '/api/v1/audit?action=run.triggered', undefined, as(auditor));
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0]).toMatchObject({ action: 'run.triggered', actor: { name: 'ops-anna', kind: 'token' }, subject: { type: 'run' }, details: { planId: 'audit-plan' } });
    const today = new Date().toISOString().slice(0, 10);
    expect((await h.request('GET', `/api/v1/audit?from=${today}&to=${today}`, undefined, as(auditor))).body.items.length).toBeGreaterThan(0);
    expect((await h.request('GET', '/api/v1/audit?to=2000-01-01', undefined, as(auditor))).body.items).toEqual([]);
    expect((await h.request('GET', '/api/v1/audit?cursor=abc', undefined, as(auditor))).status).toBe(400);
    expect((await h.request('GET', '/api/v1/audit?from=gestern', undefined, as(auditor))).status).toBe(400);
  });

  it('shows the older alert records in the same shape', async () => {
    const alertId = '0b6f9c1e-3a52-4f5e-9d55-2f5a1c7e8d90';
    await h.c.ledger.appendNow({
      tenantId: T, kind: 'audit', subjectId: alertId,
      payload: { action: 'alert.acknowledged', alertId, planId: 'audit-plan', alertKind: 'overdue', level: 1, by: 'isb@example.org', reason: 'bekannt', at: new Date().toISOString() },
    });
    const item = (await h.request('GET', '/api/v1/audit?action=alert.acknowledged', undefined, as(auditor))).body.items[0];
    expect(item).toMatchObject({ actor: { name: 'isb@example.org' }, subject: { type: 'alert', id: alertId }, details: { reason: 'bekannt', planId: 'audit-plan' } });
  });

  it("never shows another tenant's records", async () => {
    const mine = await one('calendar-feed.created', () => h.request('POST', '/api/v1/calendar-feeds', { name: 'zweiter Kalender' }, as(other.operator)), other.tenantId);
    expect(mine.actor).toEqual({ name: 'ops-zweite', kind: 'token' });
    const theirs = (await h.request('GET', '/api/v1/audit?limit=500', undefined, as(other.auditor))).body.items;
    expect(theirs.map((i: { action: string }) => i.action).sort()).toEqual(['calendar-feed.created', 'plan.changed']);
    const ours = (await h.request('GET', '/api/v1/audit?limit=500', undefined, as(auditor))).body.items;
    expect(ours.some((i: { actor: { name: string } | null }) => i.actor?.name === 'ops-zweite')).toBe(false);
    expect(ours.some((i: { subject: { id: string } | null }) => i.subject?.id === 'file-c')).toBe(false);
  });

  it('leaves every chain verifiable', async () => {
    const v = await h.request('GET', '/api/v1/evidence/verify');
    expect(v.body).toMatchObject({ ok: true, firstBroken: null });
    expect((await h.request('GET', '/api/v1/evidence/verify', undefined, as(other.auditor))).body.ok).toBe(true);
  });
});
