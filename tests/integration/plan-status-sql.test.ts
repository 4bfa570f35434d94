import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { DEFAULT_TENANT_ID, type Verdict } from '../../db/schema.js';
import { PlanStatusRepository } from '../../db/repositories/plan-status.repository.js';
import { planStatus, type PlanStatus } from '../../services/runs/plan-status.js';
import { addDuration } from '../../services/util/calendar.js';
import type { RestorePlan } from '../../services/plans/plan.types.js';

let h: Harness;
let repo: PlanStatusRepository;

interface Cadence { timezone?: string; requiredEvery?: string; grace?: string }
/** A run of the history: when it started (the clock start if it passed) and its verdict. */
type Hist = [startedAt: string, verdict: Verdict];

const CADENCES: Record<string, Cadence> = {
  daily: { timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' },
  weekly: { timezone: 'Europe/Berlin', requiredEvery: 'P7D', grace: 'P1D' },
  quarterly: { timezone: 'Europe/Berlin', requiredEvery: 'P3M', grace: 'P7D' },
  short: { timezone: 'Europe/Berlin', requiredEvery: '36h', grace: '2h' },
  none: { timezone: 'Europe/Berlin' },
  mixed: { timezone: 'America/New_York', requiredEvery: 'P1DT12H', grace: '30m' },
  sixhours: { timezone: 'Europe/Berlin', requiredEvery: 'PT6H' },
  shortweek: { timezone: 'Europe/Berlin', requiredEvery: '1w', grace: '1h30m' },
};

/** Histories around the DST days 2026-03-29 and 2026-10-25 (Europe/Berlin) and elsewhere. */
const HISTORIES: Record<string, { createdAt: string; runs: Hist[] }> = {
  // never ran
  fresh: { createdAt: '2026-03-28T01:30:00Z', runs: [] },
  // 02:30 CET on 28 March: + P1D lands in the spring-forward gap
  'gap-pass': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-03-27T01:30:00Z', 'failed'], ['2026-03-28T01:30:00Z', 'passed']] },
  // 02:30 CEST on 24 October: + P1D is the ambiguous 02:30 on 25 October
  'amb-pass': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-10-24T00:30:00Z', 'passed'], ['2026-10-24T06:00:00Z', 'error']] },
  // the second 02:30 (CET) on 25 October
  'amb2-pass': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-10-25T01:30:00Z', 'passed']] },
  // midnight before the spring change: PT6H crosses it
  'eve-pass': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-03-28T23:00:00Z', 'passed'], ['2026-03-29T00:10:00Z', 'cancelled']] },
  // passed, then failed: failing
  'then-failed': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-10-20T10:00:00Z', 'passed'], ['2026-10-24T10:00:00Z', 'failed']] },
  // failed, then passed: the failure is over
  'recovered': { createdAt: '2026-01-01T00:00:00Z', runs: [['2026-03-20T10:00:00Z', 'failed'], ['2026-03-28T21:00:00Z', 'passed'], ['2026-03-29T05:00:00Z', 'error']] },
  // only error/cancelled: never tested, clock from creation (31 January: + P3M = 30 April)
  'only-errors': { createdAt: '2026-01-31T12:00:00Z', runs: [['2026-03-28T10:00:00Z', 'error'], ['2026-10-24T10:00:00Z', 'cancelled']] },
};

const PLANS: { id: string; cadence: Cadence; history: string }[] = [];
for (const [c, cadence] of Object.entries(CADENCES)) {
  for (const hist of Object.keys(HISTORIES)) {
    // about 30 plans: every cadence gets the DST histories, some get all of them
    if (['daily', 'short', 'sixhours', 'weekly'].includes(c) || ['fresh', 'gap-pass', 'amb-pass', 'then-failed'].includes(hist)) {
      PLANS.push({ id: `st-${c}-${hist}`, cadence, history: hist });
    }
  }
}

const NOWS = [
  '2026-03-28T12:00:00Z', '2026-03-29T00:30:00Z', '2026-03-29T01:20:00Z', '2026-03-29T02:00:00Z', '2026-03-29T06:00:00Z',
  '2026-03-29T08:00:00Z', '2026-03-30T12:00:00Z', '2026-04-03T00:00:00Z', '2026-04-30T12:00:00Z', '2026-05-08T00:00:00Z',
  '2026-10-24T20:00:00Z', '2026-10-25T00:20:00Z', '2026-10-25T01:00:00Z', '2026-10-25T02:00:00Z', '2026-10-25T07:00:00Z',
  '2026-10-26T12:00:00Z', '2026-10-31T00:00:00Z', '2027-01-25T00:00:00Z', '2027-02-01T00:00:00Z',
];

const sec = (d: Date | null) => (d === null ? null : Math.floor(d.getTime() / 1000));

beforeAll(async () => {
  h = await startHarness({ worker: false });
  repo = new PlanStatusRepository(h.tdb.db);
  for (const p of PLANS) {
    await h.putPlan(pgPlan(p.id, `${p.id}.dump`, { cadence: p.cadence }));
    const hist = HISTORIES[p.history]!;
    await h.tdb.db.updateTable('plans').set({ created_at: new Date(hist.createdAt) }).where('id', '=', p.id).execute();
    for (const [startedAt, verdict] of hist.runs) {
      // seedRun starts the run rtoSeconds before finishedAt
      await seedRun(h, { planId: p.id, verdict, finishedAt: new Date(new Date(startedAt).getTime() + 60_000), rtoSeconds: 60 });
    }
  }
}, 600_000);
afterAll(async () => {
  await h?.close();
});

async function jsStatus(now: Date) {
  const plans = await h.tdb.db.selectFrom('plans').select(['id', 'definition', 'created_at']).where('tenant_id', '=', DEFAULT_TENANT_ID).orderBy('id').execute();
  const runs = await h.tdb.db.selectFrom('runs').select(['plan_id', 'status', 'verdict', 'queued_at', 'started_at', 'finished_at'])
    .where('tenant_id', '=', DEFAULT_TENANT_ID).orderBy('queued_at', 'desc').orderBy('id', 'desc').execute();
  return plans.map((p) => ({ planId: p.id, ...planStatus(p.definition as RestorePlan, p.created_at, runs.filter((r) => r.plan_id === p.id), now) }));
}

describe('PlanStatusRepository.statusAll', () => {
  it(`matches planStatus() for ${PLANS.length} plans at ${NOWS.length} moments, DST days included`, async () => {
    expect(PLANS.length).toBeGreaterThanOrEqual(30);
    const seen = new Set<PlanStatus>();
    const mismatches: string[] = [];
    for (const n of NOWS) {
      const now = new Date(n);
      const [fromSql, fromJs] = await Promise.all([repo.statusAll(DEFAULT_TENANT_ID, now), jsStatus(now)]);
      expect(fromSql.map((r) => r.planId)).toEqual(fromJs.map((r) => r.planId));
      fromSql.forEach((s, i) => {
        const j = fromJs[i]!;
        seen.add(s.status);
        if (s.status !== j.status || sec(s.nextDueAt) !== sec(j.nextDueAt)) {
          mismatches.push(`${n} ${s.planId}: sql ${s.status} ${s.nextDueAt?.toISOString() ?? null}, js ${j.status} ${j.nextDueAt?.toISOString() ?? null}`);
        }
      });
    }
    expect(mismatches).toEqual([]);
    expect([...seen].sort()).toEqual(['due-soon', 'failing', 'never-tested', 'ok', 'overdue']);
  });

  it('returns the last verdict and the last passed run per plan', async () => {
    const rows = await repo.statusAll(DEFAULT_TENANT_ID, new Date('2026-11-01T00:00:00Z'));
    const by = new Map(rows.map((r) => [r.planId, r]));
    expect(by.get('st-daily-fresh')).toMatchObject({ lastVerdict: null, lastPassedAt: null, status: 'overdue' }); // overdue outranks never-tested
    expect(by.get('st-none-fresh')).toMatchObject({ lastVerdict: null, nextDueAt: null, status: 'never-tested' });
    expect(by.get('st-daily-then-failed')).toMatchObject({ lastVerdict: 'failed', status: 'failing', lastPassedAt: new Date('2026-10-20T10:01:00Z') });
    expect(by.get('st-daily-recovered')).toMatchObject({ lastVerdict: 'passed', lastPassedAt: new Date('2026-03-28T21:01:00Z') });
    expect(by.get('st-daily-only-errors')).toMatchObject({ lastVerdict: null, lastPassedAt: null, status: 'overdue' });
  });

  it('adds calendar days on the Berlin wall clock across both DST days, as addDuration does', async () => {
    const rows = new Map((await repo.statusAll(DEFAULT_TENANT_ID, new Date('2026-11-01T00:00:00Z'))).map((r) => [r.planId, r]));
    // 02:30 CET + P1D: 02:30 does not exist on 29 March; both move forward to 03:30 CEST
    expect(rows.get('st-daily-gap-pass')!.nextDueAt).toEqual(new Date('2026-03-29T01:30:00Z'));
    // 02:30 CEST + P1D: the ambiguous 02:30 on 25 October is its first occurrence (CEST)
    expect(rows.get('st-daily-amb-pass')!.nextDueAt).toEqual(new Date('2026-10-25T00:30:00Z'));
    expect(rows.get('st-weekly-amb-pass')!.nextDueAt).toEqual(addDuration(new Date('2026-10-24T00:30:00Z'), 'P7D', 'Europe/Berlin'));
    // the 23-hour day: P1D from 00:00 CET on 29 March is 00:00 CEST on 30 March, 23 h later
    expect(rows.get('st-daily-eve-pass')!.nextDueAt).toEqual(new Date('2026-03-29T22:00:00Z'));
    // PT6H is elapsed time: six real hours across the change
    expect(rows.get('st-sixhours-eve-pass')!.nextDueAt).toEqual(new Date('2026-03-29T05:00:00Z'));
    // short forms are elapsed time: 36h is 36 real hours
    expect(rows.get('st-short-gap-pass')!.nextDueAt).toEqual(new Date('2026-03-29T13:30:00Z'));
  });

  it('documents where plain PostgreSQL zone arithmetic differs from addDuration', async () => {
    const q = (ts: string, iv: string) => sql<{ r: Date }>`select ((${ts}::timestamptz at time zone 'Europe/Berlin') + ${iv}::interval) at time zone 'Europe/Berlin' as r`
      .execute(h.tdb.db).then((x) => x.rows[0]!.r);
    // spring gap: same (PostgreSQL takes the offset before the change, i.e. moves forward)
    expect(await q('2026-03-28T01:30:00Z', 'P1D')).toEqual(addDuration(new Date('2026-03-28T01:30:00Z'), 'P1D', 'Europe/Berlin'));
    // ambiguous autumn time: PostgreSQL takes the SECOND occurrence (CET), addDuration the first (CEST)
    expect(await q('2026-10-24T00:30:00Z', 'P1D')).toEqual(new Date('2026-10-25T01:30:00Z'));
    expect(addDuration(new Date('2026-10-24T00:30:00Z'), 'P1D', 'Europe/Berlin')).toEqual(new Date('2026-10-25T00:30:00Z'));
    // time parts: PostgreSQL adds them on the wall clock (5 real hours here), addDuration as elapsed time (6)
    expect(await q('2026-03-28T22:00:00Z', 'PT6H')).toEqual(new Date('2026-03-29T03:00:00Z'));
    expect(addDuration(new Date('2026-03-28T22:00:00Z'), 'PT6H', 'Europe/Berlin')).toEqual(new Date('2026-03-29T04:00:00Z'));
    // time-only ISO durations are elapsed time also from the second 02:30 (CET) on 25 October: six real hours
    expect(addDuration(new Date('2026-10-25T01:30:00Z'), 'PT6H', 'Europe/Berlin')).toEqual(new Date('2026-10-25T07:30:00Z'));
    expect(addDuration(new Date('2026-10-25T01:30:00Z'), 'P0DT6H', 'Europe/Berlin')).toEqual(new Date('2026-10-25T07:30:00Z'));
    const rows = new Map((await repo.statusAll(DEFAULT_TENANT_ID, new Date('2026-11-01T00:00:00Z'))).map((r) => [r.planId, r]));
    expect(rows.get('st-sixhours-amb2-pass')!.nextDueAt).toEqual(new Date('2026-10-25T07:30:00Z'));
  });
});

describe('plan_states: the cached due dates and the runs kept by triggers', () => {
  it('with every due date cached (refreshDueDates) the status is the same as computed, at every moment', async () => {
    const computed = await Promise.all(NOWS.map((n) => repo.statusAll(DEFAULT_TENANT_ID, new Date(n))));
    let stored = 0;
    for (let n; (n = await repo.refreshDueDates(7)) > 0;) stored += n; // in bites, as a tick does
    expect(stored).toBeGreaterThanOrEqual(PLANS.length);
    expect(await repo.refreshDueDates(1000)).toBe(0); // all current now
    const cached = await Promise.all(NOWS.map((n) => repo.statusAll(DEFAULT_TENANT_ID, new Date(n))));
    expect(cached).toEqual(computed);
    // and statusAllTenants agrees with the per-tenant query
    const all = (await repo.statusAllTenants(new Date(NOWS[5]!))).filter((r) => r.tenantId === DEFAULT_TENANT_ID)
      .sort((a, b) => (a.planId < b.planId ? -1 : 1)).map(({ tenantId: _t, ...r }) => r);
    expect(all).toEqual(computed[5]);
  });

  it('a changed cadence or a new passed run is never answered from the old cached date', async () => {
    const id = 'st-weekly-fresh';
    const at = new Date('2026-03-28T12:00:00Z');
    await repo.refreshDueDates(1000);
    const before = (await repo.statusAll(DEFAULT_TENANT_ID, at)).find((r) => r.planId === id)!;
    expect(before.nextDueAt).toEqual(addDuration(new Date(HISTORIES.fresh!.createdAt), 'P7D', 'Europe/Berlin'));
    // the cadence changes (the trigger on plans copies it): the cached date no longer counts
    const plan = await h.tdb.db.selectFrom('plans').select('definition').where('id', '=', id).executeTakeFirstOrThrow();
    const def = plan.definition as { cadence: Cadence };
    await h.tdb.db.updateTable('plans').set({ definition: JSON.stringify({ ...def, cadence: { ...def.cadence, requiredEvery: 'P1D' } }) }).where('id', '=', id).execute();
    const changed = (await repo.statusAll(DEFAULT_TENANT_ID, at)).find((r) => r.planId === id)!;
    expect(changed.nextDueAt).toEqual(addDuration(new Date(HISTORIES.fresh!.createdAt), 'P1D', 'Europe/Berlin'));
    // a passed run moves the due clock: the cached date no longer counts either
    await seedRun(h, { planId: id, verdict: 'passed', finishedAt: new Date('2026-03-28T10:01:00Z'), rtoSeconds: 60 });
    const passed = (await repo.statusAll(DEFAULT_TENANT_ID, at)).find((r) => r.planId === id)!;
    expect(passed).toMatchObject({ lastVerdict: 'passed', lastPassedAt: new Date('2026-03-28T10:01:00Z'), nextDueAt: addDuration(new Date('2026-03-28T10:00:00Z'), 'P1D', 'Europe/Berlin') });
    expect(await repo.refreshDueDates(1000)).toBe(1);
    expect((await repo.statusAll(DEFAULT_TENANT_ID, at)).find((r) => r.planId === id)).toEqual(passed);
  });

  it('an older run finishing late does not replace the newest; a changed decisive run is read again from the runs', async () => {
    const id = 'st-daily-fresh';
    const at = new Date('2026-11-01T00:00:00Z');
    const newest = await seedRun(h, { planId: id, verdict: 'failed', finishedAt: new Date('2026-10-30T10:00:00Z') });
    await seedRun(h, { planId: id, verdict: 'passed', finishedAt: new Date('2026-10-29T10:00:00Z') }); // reported late, older
    const st = () => repo.statusAll(DEFAULT_TENANT_ID, at).then((rows) => rows.find((r) => r.planId === id)!);
    expect(await st()).toMatchObject({ status: 'failing', lastVerdict: 'failed', lastPassedAt: new Date('2026-10-29T10:00:00Z') });
    // by hand: the newest run's verdict corrected
    await sql`update runs set verdict = 'error' where id = ${newest}`.execute(h.tdb.db);
    expect(await st()).toMatchObject({ lastVerdict: 'passed', lastPassedAt: new Date('2026-10-29T10:00:00Z') });
    const js = (await jsStatus(at)).find((r) => r.planId === id)!;
    expect((await st()).status).toBe(js.status);
  });
});
