import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { ReminderEngine } from '../../services/notify/reminders.js';

/**
 * Issue 13: the first reminder tick after an upgrade or an import may find
 * tens of thousands of plans overdue or failing without an alert. A tick
 * decides on at most `decisionsPerTick` plans (openings set-based, after
 * every other kind of decision) and leaves the rest to the next ticks:
 * nothing is lost, nothing is sent twice, and once all are open a tick
 * (also of a fresh engine) decides nothing.
 */

let h: Harness;
const cfg = { lang: 'de' as const, timezone: 'Europe/Berlin', digestTime: '07:00', decisionsPerTick: 4 };
const NOW = new Date('2026-11-02T12:00:00Z');
const OVERDUE = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7'];
const FAILING = ['f1', 'f2', 'f3'];
const failedRuns = new Map<string, string>();

async function outbox() {
  return h.tdb.db.selectFrom('notifications').select(['event', 'plan_id', 'recipient', 'alert_id', 'run_id', 'dedupe_key']).orderBy('dedupe_key').execute();
}
const openAlerts = () => h.tdb.db.selectFrom('alerts').selectAll().where('resolved_at', 'is', null).orderBy('plan_id').execute();

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => NOW });
  for (const id of OVERDUE) {
    await h.putPlan(pgPlan(id, `${id}.dump`, {
      cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' },
      notify: { overdue: ['mail:it@musterstadt.de', 'mail:isb@musterstadt.de'] },
    }));
  }
  for (const id of FAILING) {
    // f1 has failure recipients (its run told them when it ended); f2, f3 only overdue recipients (they hear of it when the alert opens)
    await h.putPlan(pgPlan(id, `${id}.dump`, {
      cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D' },
      notify: id === 'f1' ? { failure: ['mail:dba@musterstadt.de'], overdue: ['mail:it@musterstadt.de'] } : { overdue: ['mail:it@musterstadt.de'] },
    }));
  }
  // a healthy plan among them: nothing for it
  await h.putPlan(pgPlan('ok', 'ok.dump', { cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D' }, notify: { overdue: ['mail:it@musterstadt.de'] } }));
  await h.tdb.db.updateTable('plans').set({ created_at: new Date('2026-10-01T00:00:00Z') }).execute();
  for (const id of FAILING) failedRuns.set(id, await seedRun(h, { planId: id, verdict: 'failed', finishedAt: new Date('2026-11-01T10:00:00Z') }));
  await seedRun(h, { planId: 'ok', verdict: 'passed', finishedAt: new Date('2026-11-01T10:00:00Z') });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('the reminder tick is bounded per tick and loses nothing', () => {
  it('opens at most decisionsPerTick alerts per tick, set-based, the rest on the next ticks', async () => {
    const engine = new ReminderEngine(h.tdb.db, cfg, h.c.log);
    const opened: number[] = [];
    for (let i = 0; i < 4; i++) opened.push((await engine.evaluate(NOW)).opened);
    expect(opened).toEqual([4, 4, 2, 0]);
    const alerts = await openAlerts();
    expect(alerts.map((a) => [a.plan_id, a.kind])).toEqual([
      ['f1', 'failing'], ['f2', 'failing'], ['f3', 'failing'],
      ...OVERDUE.map((id) => [id, 'overdue']),
    ]);
    // failing: since the run's end, the run named; overdue: since due + grace
    for (const a of alerts.filter((x) => x.kind === 'failing')) expect(a).toMatchObject({ since: new Date('2026-11-01T10:00:00Z'), run_id: failedRuns.get(a.plan_id) });
    for (const a of alerts.filter((x) => x.kind === 'overdue')) expect(a.since).toEqual(new Date('2026-10-02T06:00:00Z'));
  });

  it('each change was told once per recipient, and the failed runs\' own messages belong to their alerts', async () => {
    const rows = await outbox();
    const alerts = new Map((await openAlerts()).map((a) => [a.plan_id, a.id]));
    const overdue = rows.filter((r) => r.event === 'overdue');
    expect(overdue).toHaveLength(OVERDUE.length * 2);
    for (const r of overdue) expect(r.alert_id).toBe(alerts.get(r.plan_id!));
    const failure = rows.filter((r) => r.event === 'failure').map((r) => [r.plan_id, r.recipient, r.run_id === failedRuns.get(r.plan_id!), r.alert_id === alerts.get(r.plan_id!)]);
    expect(failure).toEqual(expect.arrayContaining([
      ['f1', 'mail:dba@musterstadt.de', true, true],
      ['f2', 'mail:it@musterstadt.de', true, true],
      ['f3', 'mail:it@musterstadt.de', true, true],
    ]));
    expect(failure).toHaveLength(3);
    expect(new Set(rows.map((r) => r.dedupe_key)).size).toBe(rows.length);
    expect(rows.filter((r) => r.plan_id === 'ok')).toEqual([]);
  });

  it('once all are open, a tick — also of a fresh engine — decides nothing and sends nothing', async () => {
    const before = await outbox();
    for (const engine of [new ReminderEngine(h.tdb.db, cfg, h.c.log), new ReminderEngine(h.tdb.db, { ...cfg, decisionsPerTick: 1 }, h.c.log)]) {
      expect(await engine.evaluate(NOW)).toMatchObject({ dueSoon: 0, opened: 0, escalated: 0, resolved: 0 });
    }
    expect(await outbox()).toEqual(before);
  });

  it('resolutions come before openings when both wait, and the openings still follow', async () => {
    // two plans recover, two more become a problem: with room for 2 decisions, the two all-clears go first
    await seedRun(h, { planId: 'o1', verdict: 'passed', finishedAt: new Date('2026-11-02T11:00:00Z') });
    await seedRun(h, { planId: 'f1', verdict: 'passed', finishedAt: new Date('2026-11-02T11:00:00Z') });
    await seedRun(h, { planId: 'ok', verdict: 'failed', finishedAt: new Date('2026-11-02T11:30:00Z') });
    const engine = new ReminderEngine(h.tdb.db, { ...cfg, decisionsPerTick: 2 }, h.c.log);
    expect(await engine.evaluate(NOW)).toMatchObject({ resolved: 2, opened: 0 });
    expect(await engine.evaluate(NOW)).toMatchObject({ resolved: 0, opened: 1 });
    expect(await engine.evaluate(NOW)).toMatchObject({ resolved: 0, opened: 0, escalated: 0, dueSoon: 0 });
    expect((await openAlerts()).map((a) => a.plan_id)).toEqual(['f2', 'f3', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'ok']);
  });
});
