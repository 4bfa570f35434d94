import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { ReminderEngine } from '../../services/notify/reminders.js';
import { Scheduler } from '../../services/scheduling/scheduler.js';
import type { NotificationMessage } from '../../services/notify/types.js';

/**
 * Issue #4 "Tests": a controllable clock drives plans through due-soon,
 * overdue, escalation and recovery, across the autumn daylight-saving change
 * (25 October 2026, Europe/Berlin: 03:00 CEST → 02:00 CET, a 25-hour day),
 * through the real scheduler tick, with every decision read back from the
 * outbox (delivery over real SMTP/webhooks is tested in notify-delivery).
 */

let h: Harness;
let now = new Date('2026-10-23T12:00:00Z');
const clock = () => now;
const cfg = { lang: 'de' as const, timezone: 'Europe/Berlin', digestTime: '07:00', publicUrl: 'https://ernstfall.musterstadt.de' };

async function tick(at: string, engine?: ReminderEngine) {
  now = new Date(at);
  const s = new Scheduler(h.tdb.db, h.c.runs, clock, h.c.log, { databaseUrl: h.tdb.appUrl, tickMs: 1000, id: `reminder-test-${at}`, reminders: engine ?? new ReminderEngine(h.tdb.db, cfg, h.c.log) });
  try {
    const r = await s.tick();
    expect(r.leader).toBe(true);
    return r.reminders!;
  } finally {
    await s.stop();
  }
}

async function outbox(planId?: string) {
  let q = h.tdb.db.selectFrom('notifications').selectAll().orderBy('created_at').orderBy('dedupe_key');
  if (planId) q = q.where('plan_id', '=', planId);
  return (await q.execute()).map((n) => ({ event: n.event, to: n.recipient, message: n.message as NotificationMessage, alertId: n.alert_id, runId: n.run_id }));
}
const summary = (rows: { event: string; to: string }[]) => rows.map((r) => `${r.event} → ${r.to}`);

beforeAll(async () => {
  h = await startHarness({ worker: false, clock });
  await h.putPlan(pgPlan('ewo', 'ewo.dump', {
    title: 'Einwohnermeldewesen',
    system: { name: 'OK.EWO' },
    cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' },
    notify: {
      failure: ['mail:it@musterstadt.de'],
      overdue: ['mail:it@musterstadt.de'],
      escalate: [{ after: 'PT12H', to: ['mail:isb@musterstadt.de'] }, { after: 'P1D', to: ['mail:it-leitung@musterstadt.de', 'webhook:teams-leitung'] }],
      digest: ['mail:it-leitung@musterstadt.de'],
    },
  }));
  // a plan that stays healthy: nothing may fire for it
  await h.putPlan(pgPlan('healthy', 'healthy.dump', {
    cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D', grace: 'P1D' },
    notify: { failure: ['mail:it@musterstadt.de'], overdue: ['mail:it@musterstadt.de'], escalate: [{ after: 'PT1H', to: ['mail:isb@musterstadt.de'] }] },
  }));
  // overdue, but paused with a reason: no reminders
  await h.putPlan(pgPlan('paused', 'paused.dump', {
    cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D' },
    notify: { overdue: ['mail:it@musterstadt.de'] },
  }));
  await h.tdb.db.updateTable('plans').set({ created_at: new Date('2026-10-01T00:00:00Z') }).execute();
  await seedRun(h, { planId: 'ewo', verdict: 'passed', finishedAt: new Date('2026-10-23T06:01:00Z') });
  await seedRun(h, { planId: 'healthy', verdict: 'passed', finishedAt: new Date('2026-10-23T06:01:00Z') });
  now = new Date('2026-10-20T00:00:00Z');
  expect((await h.request('POST', '/api/v1/plans/paused/pause', { reason: 'System wird abgelöst' })).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('reminders through the scheduler tick, across the autumn DST change', () => {
  it('is quiet while the plan is ok', async () => {
    const r = await tick('2026-10-23T12:00:00Z');
    expect(r).toMatchObject({ dueSoon: 0, opened: 0, escalated: 0, resolved: 0 });
    expect(summary(await outbox('ewo'))).toEqual([]);
  });

  it('reminds once when the test is due soon (the overdue recipients by default)', async () => {
    // due 2026-10-24T06:00Z (08:00 CEST), due-soon from 20 % of the day before: 01:12Z
    await tick('2026-10-24T01:11:00Z');
    expect(await outbox('ewo')).toEqual([]);
    expect((await tick('2026-10-24T02:00:00Z')).dueSoon).toBe(1);
    await tick('2026-10-24T02:01:00Z');
    await tick('2026-10-24T11:59:00Z'); // past the due date, inside the grace: still only the reminder
    const rows = await outbox('ewo');
    expect(summary(rows)).toEqual(['due-soon → mail:it@musterstadt.de']);
    expect(rows[0]!.message).toMatchObject({ event: 'due-soon', status: 'due-soon', dueAt: '2026-10-24T06:00:00.000Z', plan: { id: 'ewo', title: 'Einwohnermeldewesen', system: 'OK.EWO' }, links: { plan: 'https://ernstfall.musterstadt.de/plans/ewo' } });
  });

  it('opens one alert when overdue (due + grace) and tells the overdue recipients once', async () => {
    const r = await tick('2026-10-24T12:01:00Z');
    expect(r.opened).toBe(1);
    await tick('2026-10-24T12:02:00Z');
    const rows = (await outbox('ewo')).filter((x) => x.event === 'overdue');
    expect(summary(rows)).toEqual(['overdue → mail:it@musterstadt.de']);
    expect(rows[0]!.message).toMatchObject({ status: 'overdue', overdueSince: '2026-10-24T12:00:00.000Z' });
    const alerts = (await h.request('GET', '/api/v1/alerts')).body.items;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ planId: 'ewo', kind: 'overdue', since: '2026-10-24T12:00:00.000Z', escalationLevel: 0, acknowledged: null, resolved: null });
  });

  it('escalates along the chain; P1D counts on the wall clock over the 25-hour day', async () => {
    await tick('2026-10-24T23:59:00Z');
    expect((await outbox('ewo')).filter((x) => x.event === 'escalation')).toEqual([]);
    expect((await tick('2026-10-25T00:01:00Z')).escalated).toBe(1); // PT12H: elapsed
    // 24 h after the start is not yet "one day later" on 25 October: 14:00 CEST + P1D = 14:00 CET = 13:00Z
    await tick('2026-10-25T12:01:00Z');
    expect(summary((await outbox('ewo')).filter((x) => x.event === 'escalation'))).toEqual(['escalation → mail:isb@musterstadt.de']);
    expect((await tick('2026-10-25T13:01:00Z')).escalated).toBe(1);
    await tick('2026-10-25T13:30:00Z');
    const esc = (await outbox('ewo')).filter((x) => x.event === 'escalation');
    expect(summary(esc)).toEqual(['escalation → mail:isb@musterstadt.de', 'escalation → mail:it-leitung@musterstadt.de', 'escalation → webhook:teams-leitung']);
    expect(esc.map((e) => e.message.alert!.level)).toEqual([1, 2, 2]);
    expect((await h.request('GET', '/api/v1/alerts')).body.items[0].escalationLevel).toBe(2);
  });

  it('sends one digest a day after 07:00 Berlin time to the digest recipients', async () => {
    const digests = (await outbox()).filter((x) => x.event === 'digest');
    // 23 Oct (14:00 CEST), 24 Oct (first tick after 07:00 local: 13:59 CEST), 25 Oct (first tick after 07:00 CET: 13:01 CET)
    expect(digests.map((d) => [d.to, d.message.digest!.date])).toEqual([
      ['mail:it-leitung@musterstadt.de', '2026-10-23'], ['mail:it-leitung@musterstadt.de', '2026-10-24'], ['mail:it-leitung@musterstadt.de', '2026-10-25'],
    ]);
    expect(digests[0]!.message.digest!.items).toEqual([expect.objectContaining({ planId: 'ewo', status: 'ok' })]);
    expect(digests[1]!.message.digest!.items).toEqual([expect.objectContaining({ planId: 'ewo', status: 'due-soon' })]);
    expect(digests[2]!.message.digest!.items).toEqual([expect.objectContaining({ planId: 'ewo', status: 'overdue' })]);
  });

  it('sends the all-clear to everyone told, once, when a test passes; a restart resends nothing', async () => {
    await seedRun(h, { planId: 'ewo', verdict: 'passed', finishedAt: new Date('2026-10-25T14:30:00Z') });
    expect((await tick('2026-10-25T15:00:00Z')).resolved).toBe(1);
    const before = await outbox();
    // a restarted scheduler (fresh engine, same moment and later) finds everything decided already
    const fresh = new ReminderEngine(h.tdb.db, cfg, h.c.log);
    expect(await tick('2026-10-25T15:00:00Z', fresh)).toMatchObject({ dueSoon: 0, opened: 0, escalated: 0, resolved: 0, digests: 0 });
    await tick('2026-10-25T15:05:00Z', fresh);
    expect(await outbox()).toEqual(before);
    const clear = before.filter((x) => x.event === 'recovered');
    expect(summary(clear)).toEqual(['recovered → mail:isb@musterstadt.de', 'recovered → mail:it-leitung@musterstadt.de', 'recovered → mail:it@musterstadt.de', 'recovered → webhook:teams-leitung']);
    expect(clear[0]!.message).toMatchObject({ resolution: 'passed', status: 'ok' });
    const alert = (await h.request('GET', '/api/v1/alerts?state=all')).body.items[0];
    expect(alert.resolved).toMatchObject({ at: '2026-10-25T15:00:00.000Z' });
    expect(alert.resolved.runId).toEqual(expect.any(String));
  });

  it('never fired for the healthy plan or the paused one', async () => {
    expect(await outbox('healthy')).toEqual([]);
    expect(await outbox('paused')).toEqual([]);
    expect((await h.request('GET', '/api/v1/alerts?state=all&planId=paused')).body.items).toEqual([]);
  });
});

describe('failure alerts, acknowledge and snooze', () => {
  beforeAll(async () => {
    // created on the app's clock the morning of the failures: not yet due, so only failure alerts can open
    now = new Date('2026-11-02T08:00:00Z');
    await h.putPlan(pgPlan('finanz', 'finanz.dump', {
      title: 'Finanzwesen',
      cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D' },
      notify: { failure: ['mail:ops@musterstadt.de'], escalate: [{ after: 'PT1H', to: ['mail:isb@musterstadt.de'] }, { after: 'PT2H', to: ['mail:it-leitung@musterstadt.de'] }] },
    }));
  });

  it('an error run alerts the failure recipients but opens no alert (an error is not a test result)', async () => {
    const runId = await seedRun(h, { planId: 'finanz', verdict: 'error', finishedAt: new Date('2026-11-02T09:00:00Z') });
    await tick('2026-11-02T09:01:00Z');
    const rows = await outbox('finanz');
    expect(summary(rows)).toEqual(['failure → mail:ops@musterstadt.de']);
    expect(rows[0]).toMatchObject({ runId, alertId: null, message: { run: { id: runId, verdict: 'error' } } });
    expect((await h.request('GET', '/api/v1/alerts?planId=finanz')).body.items).toEqual([]);
  });

  it('a failed run: failure message in the run\'s own transaction, then a failing alert without a second message', async () => {
    const runId = await seedRun(h, { planId: 'finanz', verdict: 'failed', finishedAt: new Date('2026-11-02T10:00:00Z') });
    const mine = (await outbox('finanz')).filter((x) => x.runId === runId);
    expect(summary(mine)).toEqual(['failure → mail:ops@musterstadt.de']);
    expect(mine[0]!.message.run!.findings).toEqual([{ code: 'CHECK_FAILED', severity: 'failure', message: 'seeded' }]);
    expect((await tick('2026-11-02T10:01:00Z')).opened).toBe(1);
    const alert = (await h.request('GET', '/api/v1/alerts?planId=finanz')).body.items[0];
    expect(alert).toMatchObject({ kind: 'failing', since: '2026-11-02T10:00:00.000Z', runId });
    expect((await outbox('finanz')).filter((x) => x.runId === runId && x.alertId === alert.id)).toHaveLength(1);
  });

  it('a snooze holds the escalation; steps that fell due meanwhile go out as one message afterwards', async () => {
    const alert = (await h.request('GET', '/api/v1/alerts?planId=finanz')).body.items[0];
    now = new Date('2026-11-02T10:05:00Z');
    const bad = await h.request('POST', `/api/v1/alerts/${alert.id}/snooze`, { reason: 'Wartungsfenster', for: 'P40D' });
    expect(bad.status).toBe(400);
    const past = await h.request('POST', `/api/v1/alerts/${alert.id}/snooze`, { reason: 'x', until: '2026-11-01T00:00:00Z' });
    expect(past.status).toBe(400);
    const res = await h.request('POST', `/api/v1/alerts/${alert.id}/snooze`, { reason: 'Wartungsfenster bis 13 Uhr', for: 'PT3H' });
    expect(res.status).toBe(200);
    expect(res.body.snoozed).toMatchObject({ until: '2026-11-02T13:05:00.000Z', by: 'bootstrap-token', reason: 'Wartungsfenster bis 13 Uhr' });
    await tick('2026-11-02T11:05:00Z');
    await tick('2026-11-02T13:00:00Z');
    expect((await outbox('finanz')).filter((x) => x.event === 'escalation')).toEqual([]);
    expect((await tick('2026-11-02T13:06:00Z')).escalated).toBe(1);
    const esc = (await outbox('finanz')).filter((x) => x.event === 'escalation');
    expect(summary(esc)).toEqual(['escalation → mail:isb@musterstadt.de', 'escalation → mail:it-leitung@musterstadt.de']);
    expect(esc.every((e) => e.message.alert!.level === 2)).toBe(true);
  });

  it('acknowledging stops further escalation, is recorded in the ledger, and cannot be done twice', async () => {
    await h.putPlan(pgPlan('kita', 'kita.dump', {
      cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D' },
      notify: { failure: ['mail:ops@musterstadt.de'], escalate: [{ after: 'PT1H', to: ['mail:isb@musterstadt.de'] }] },
    }));
    await seedRun(h, { planId: 'kita', verdict: 'failed', finishedAt: new Date('2026-11-03T08:00:00Z') });
    await tick('2026-11-03T08:01:00Z');
    const alert = (await h.request('GET', '/api/v1/alerts?planId=kita')).body.items[0];
    const auditor = await h.request('POST', '/api/v1/tokens', { name: 'Carla Auditorin', role: 'auditor' });
    now = new Date('2026-11-03T08:30:00Z');
    const denied = await h.request('POST', `/api/v1/alerts/${alert.id}/acknowledge`, { reason: 'x' }, { authorization: `Bearer ${auditor.body.token}` });
    expect(denied.status).toBe(403);
    expect((await h.request('POST', `/api/v1/alerts/${alert.id}/acknowledge`, {})).status).toBe(400);
    const ack = await h.request('POST', `/api/v1/alerts/${alert.id}/acknowledge`, { reason: 'Dump-Job repariert, Test läuft heute Nacht' });
    expect(ack.status).toBe(200);
    expect(ack.body.acknowledged).toEqual({ at: '2026-11-03T08:30:00.000Z', by: 'bootstrap-token', reason: 'Dump-Job repariert, Test läuft heute Nacht' });
    expect((await h.request('POST', `/api/v1/alerts/${alert.id}/acknowledge`, { reason: 'again' })).status).toBe(409);
    await tick('2026-11-03T12:00:00Z');
    expect((await outbox('kita')).filter((x) => x.event === 'escalation')).toEqual([]);
    const rec = await h.tdb.db.selectFrom('ledger_records').select(['kind', 'canonical']).where('subject_id', '=', alert.id).execute();
    expect(rec).toHaveLength(1);
    expect(rec[0]!.kind).toBe('audit');
    expect(JSON.parse(rec[0]!.canonical).payload).toMatchObject({ action: 'alert.acknowledged', planId: 'kita', by: 'bootstrap-token' });
    expect((await h.request('GET', '/api/v1/evidence/verify')).body).toMatchObject({ ok: true });
  });

  it('a later failed run joins the open alert, and the all-clear reaches everyone told', async () => {
    const second = await seedRun(h, { planId: 'finanz', verdict: 'failed', finishedAt: new Date('2026-11-02T14:00:00Z') });
    const alert = (await h.request('GET', '/api/v1/alerts?planId=finanz')).body.items[0];
    expect((await outbox('finanz')).find((x) => x.runId === second)).toMatchObject({ event: 'failure', alertId: alert.id });
    await seedRun(h, { planId: 'finanz', verdict: 'passed', finishedAt: new Date('2026-11-02T16:00:00Z') });
    expect((await tick('2026-11-02T16:01:00Z')).resolved).toBe(1);
    expect(summary((await outbox('finanz')).filter((x) => x.event === 'recovered'))).toEqual([
      'recovered → mail:isb@musterstadt.de', 'recovered → mail:it-leitung@musterstadt.de', 'recovered → mail:ops@musterstadt.de',
    ]);
  });

  it('keeps alerts and notifications of another tenant invisible (404)', async () => {
    const alert = (await h.request('GET', '/api/v1/alerts?state=all&planId=finanz')).body.items[0];
    const other = await h.request('POST', '/api/v1/tokens', { name: 'fremd', role: 'admin' });
    // move the token to another tenant (as a provider would create it there)
    const pg = (await import('pg')).default;
    const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
    await owner.connect();
    const tenant = '00000000-0000-4000-8000-00000000a1a1';
    await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbar', 'Nachbarstadt', $2)`, [tenant, h.c.clock()]);
    await owner.query('update api_tokens set tenant_id = $1 where id = $2', [tenant, other.body.id]);
    await owner.end();
    const as = { authorization: `Bearer ${other.body.token}` };
    expect((await h.request('GET', `/api/v1/alerts/${alert.id}`, undefined, as)).status).toBe(404);
    expect((await h.request('POST', `/api/v1/alerts/${alert.id}/acknowledge`, { reason: 'x' }, as)).status).toBe(404);
    expect((await h.request('POST', `/api/v1/alerts/${alert.id}/snooze`, { reason: 'x', for: 'PT1H' }, as)).status).toBe(404);
    expect((await h.request('GET', '/api/v1/alerts?state=all', undefined, as)).body.items).toEqual([]);
    expect((await h.request('GET', '/api/v1/notifications', undefined, as)).body.items).toEqual([]);
    const mine = (await h.request('GET', '/api/v1/notifications?limit=1')).body.items[0];
    expect((await h.request('POST', `/api/v1/notifications/${mine.id}/retry`, undefined, as)).status).toBe(404);
  });
});

describe('plan views', () => {
  it('the list (set-based status) and each single plan (per-plan rules) agree, open alert included', async () => {
    now = new Date('2026-11-03T12:00:00Z');
    const list = (await h.request('GET', '/api/v1/plans')).body.items as Record<string, unknown>[];
    expect(list.length).toBeGreaterThanOrEqual(5);
    for (const p of list) {
      const one = (await h.request('GET', `/api/v1/plans/${p.id as string}`)).body;
      expect(p).toEqual(one);
    }
    const kita = list.find((p) => p.id === 'kita')!;
    expect(kita).toMatchObject({ status: 'failing', alert: { kind: 'failing', acknowledged: true, escalationLevel: 0 } });
    // by November the weekly plan is overdue too (it was quiet while it was fine, see above); the paused one never alerts
    expect(list.find((p) => p.id === 'healthy')).toMatchObject({ status: 'overdue', alert: { kind: 'overdue', since: '2026-10-31T07:00:00.000Z' } });
    expect(list.find((p) => p.id === 'paused')).toMatchObject({ status: 'overdue', alert: null, paused: { reason: 'System wird abgelöst' } });
  });
});
