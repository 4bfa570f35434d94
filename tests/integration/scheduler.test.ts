import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { Scheduler } from '../../services/scheduling/scheduler.js';
import { ScheduleRepository } from '../../db/repositories/schedule.repository.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';

const TZ = 'Europe/Berlin';
let h: Harness;
let now = new Date('2026-12-01T00:00:00Z');
const clock = () => now;
const at = (iso: string) => {
  now = new Date(iso);
};
const schedulers: Scheduler[] = [];

function scheduler(id: string, tickMs = 60_000): Scheduler {
  const s = new Scheduler(h.tdb.db, h.c.runs, clock, h.c.log, { databaseUrl: h.tdb.appUrl, tickMs, id });
  schedulers.push(s);
  return s;
}

async function plan(id: string, schedule: string, createdAt: string): Promise<void> {
  await h.putPlan(pgPlan(id, `${id}.dump`, { cadence: { schedule, timezone: TZ } }));
  await h.tdb.db.updateTable('plans').set({ created_at: new Date(createdAt) }).where('id', '=', id).execute();
}

async function slots(planId: string): Promise<string[]> {
  const rows = await h.tdb.db.selectFrom('runs').select(['slot', 'trigger', 'triggered_by']).where('plan_id', '=', planId).orderBy('slot').execute();
  for (const r of rows) expect([r.trigger, r.triggered_by]).toEqual(['schedule', 'scheduler']);
  return rows.map((r) => r.slot!.toISOString());
}

/** No worker here: end the plan's queued runs so that the next slot is not blocked by "one active run per plan". */
async function finishRuns(planId: string): Promise<void> {
  await h.tdb.db.updateTable('runs').set({ status: 'finished', verdict: 'cancelled', finished_at: new Date() })
    .where('plan_id', '=', planId).where('status', '<>', 'finished').execute();
}

const until = async (cond: () => Promise<boolean> | boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
};

beforeAll(async () => {
  h = await startHarness({ worker: false, clock });
});

// a failed test must not leave schedulers ticking into the next one (they share the clock)
afterEach(async () => {
  for (const s of schedulers) await s.stop();
});

afterAll(async () => {
  await h?.close();
});

describe('scheduler', () => {
  it('plan status says whether a scheduler is ticking (watching the watcher); unscheduled plans say nothing', async () => {
    await plan('watched', '0 3 * * *', '2026-11-01T00:00:00Z');
    await h.putPlan(pgPlan('unwatched', 'u.dump'));
    // first test in this file: no scheduler has ever ticked
    expect((await h.request('GET', '/api/v1/plans/watched')).body.scheduler).toEqual({ lastTickAt: null, healthy: false });
    expect((await h.request('GET', '/api/v1/plans/unwatched')).body.scheduler).toBeNull();
    const s = scheduler('watcher');
    at('2026-12-01T00:00:00Z');
    await s.tick();
    const after = (await h.request('GET', '/api/v1/plans/watched')).body.scheduler;
    expect(after.healthy).toBe(true);
    expect(after.lastTickAt).not.toBeNull();
    await s.stop();
    await finishRuns('watched');
    // keep it out of the later tests' ticks
    expect((await h.request('POST', '/api/v1/plans/watched/pause', { reason: 'nur für diesen Test' })).status).toBe(200);
  });

  it('enqueues a nightly slot once, at its minute, in the plan time zone (winter: 02:00 CET = 01:00 UTC)', async () => {
    await plan('nightly', '0 2 * * *', '2026-11-30T12:00:00Z');
    const s = scheduler('a');
    at('2026-12-01T00:59:00Z'); // 01:59 local
    expect(await s.tick()).toMatchObject({ leader: true, enqueued: [] });
    at('2026-12-01T01:00:00Z');
    const r = await s.tick();
    expect(r.enqueued).toHaveLength(1);
    expect(await slots('nightly')).toEqual(['2026-12-01T01:00:00.000Z']);
    // a double tick (or the run finishing meanwhile) does not run the slot again
    expect((await s.tick()).enqueued).toEqual([]);
    await finishRuns('nightly');
    at('2026-12-01T01:05:00Z');
    expect((await s.tick()).enqueued).toEqual([]);
    expect(await slots('nightly')).toEqual(['2026-12-01T01:00:00.000Z']);
    await s.stop();
  });

  it('after downtime runs the newest missed slot once, not once per missed slot', async () => {
    await plan('downtime', '0 2 * * *', '2026-01-01T00:00:00Z');
    await new ScheduleRepository(h.tdb.db).advance(DEFAULT_TENANT_ID, 'downtime', new Date('2026-11-28T01:00:00Z'), new Date('2026-11-28T01:00:00Z'));
    const s = scheduler('b');
    at('2026-12-01T09:00:00Z'); // slots of Nov 29, 30 and Dec 1 were missed
    expect((await s.tick()).enqueued).toHaveLength(1);
    await finishRuns('downtime');
    at('2026-12-01T09:01:00Z');
    expect((await s.tick()).enqueued).toEqual([]);
    expect(await slots('downtime')).toEqual(['2026-12-01T01:00:00.000Z']);
    await s.stop();
  });

  it('two schedulers started together: one leads, each slot runs once; the other takes over when the leader stops', async () => {
    await plan('twins', '0 2 * * *', '2026-11-30T12:00:00Z');
    at('2026-12-01T01:00:00Z');
    const one = scheduler('one', 20);
    const two = scheduler('two', 20);
    one.start();
    two.start();
    await until(async () => (await slots('twins')).length === 1);
    await new Promise((r) => setTimeout(r, 300)); // many more ticks of both
    expect(await slots('twins')).toEqual(['2026-12-01T01:00:00.000Z']);
    expect([one.isLeader, two.isLeader].filter(Boolean)).toHaveLength(1);
    const beats = await h.tdb.db.selectFrom('scheduler_heartbeats').select(['id', 'is_leader']).where('id', 'in', ['one', 'two']).execute();
    expect(beats.filter((b) => b.is_leader)).toHaveLength(1);

    // the leader stops: the other leads from its next tick and runs the next slot
    await expect(one.readinessProbe().check()).resolves.toHaveProperty('leader');
    await expect(scheduler('never-ticked').readinessProbe().check()).rejects.toThrow(/no tick/);
    const [leader, other] = one.isLeader ? [one, two] : [two, one];
    await leader.stop();
    await until(() => other.isLeader);
    await finishRuns('twins');
    at('2026-12-02T01:00:00Z');
    await until(async () => (await slots('twins')).length === 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(await slots('twins')).toEqual(['2026-12-01T01:00:00.000Z', '2026-12-02T01:00:00.000Z']);
    const after = await h.tdb.db.selectFrom('scheduler_heartbeats').select(['id', 'is_leader']).where('id', 'in', ['one', 'two']).execute();
    expect(after.filter((b) => b.is_leader).map((b) => b.id)).toEqual([other.id]);
    await one.stop();
    await two.stop();
  });

  it('a leader whose lock session dies steps down; another takes over on its next tick; no slot runs twice', async () => {
    await plan('failover', '0 2 * * *', '2026-11-30T12:00:00Z');
    at('2026-11-30T20:00:00Z');
    const p = scheduler('p');
    const q = scheduler('q');
    expect((await p.tick()).leader).toBe(true);
    expect((await q.tick()).leader).toBe(false);
    // the leader's process "dies": its session ends, and with it the lock
    const killed = await sql<{ ok: boolean }>`select pg_terminate_backend(pid) as ok from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`.execute(h.tdb.db);
    expect(killed.rows).toEqual([{ ok: true }]);
    await until(async () => (await q.tick()).leader);
    expect((await p.tick()).leader).toBe(false);
    expect((await p.tick()).leader).toBe(false);
    at('2026-12-01T01:00:00Z');
    const both = await Promise.all([p.tick(), q.tick()]);
    expect(both.flatMap((r) => r.enqueued)).toHaveLength(1);
    expect(await slots('failover')).toEqual(['2026-12-01T01:00:00.000Z']);
    expect(await new ScheduleRepository(h.tdb.db).lastLeaderTick()).toMatchObject({ ageSeconds: expect.any(Number) });
  });

  it('a paused plan enqueues nothing and shows who paused it and why; after resume the next slot runs', async () => {
    await plan('paused', '0 2 * * *', '2026-11-30T12:00:00Z');
    const s = scheduler('d');
    at('2026-11-30T20:00:00Z');
    expect((await h.request('POST', '/api/v1/plans/paused/pause', { reason: '  ' })).status).toBe(400);
    const paused = await h.request('POST', '/api/v1/plans/paused/pause', { reason: 'Server wird migriert (Ticket 4711)' });
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toEqual({ at: '2026-11-30T20:00:00.000Z', reason: 'Server wird migriert (Ticket 4711)', by: 'bootstrap-token' });
    expect(paused.body.nextScheduledAt).toBeNull();
    expect((await h.request('POST', '/api/v1/plans/paused/pause', { reason: 'again' })).status).toBe(409);
    expect((await h.request('POST', '/api/v1/plans/nope/pause', { reason: 'x' })).status).toBe(404);

    at('2026-12-01T01:00:00Z');
    expect((await s.tick()).enqueued).toEqual([]);
    at('2026-12-02T01:00:00Z');
    expect((await s.tick()).enqueued).toEqual([]);
    const view = await h.request('GET', '/api/v1/plans/paused/schedule');
    expect(view.body).toMatchObject({
      schedule: '0 2 * * *', timezone: TZ, paused: { reason: 'Server wird migriert (Ticket 4711)' },
      lastMissed: { slot: '2026-12-02T01:00:00.000Z', reason: 'paused' },
    });

    at('2026-12-02T09:00:00Z');
    const resumed = await h.request('POST', '/api/v1/plans/paused/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ paused: null, nextScheduledAt: '2026-12-03T01:00:00.000Z' });
    expect((await h.request('POST', '/api/v1/plans/paused/resume')).status).toBe(409);
    expect((await s.tick()).enqueued).toEqual([]); // the slots of the pause are not caught up
    at('2026-12-03T01:00:00Z');
    expect((await s.tick()).enqueued).toHaveLength(1);
    expect(await slots('paused')).toEqual(['2026-12-03T01:00:00.000Z']);
    await s.stop();
  });

  it('a slot while the plan is still being tested is recorded as missed, and the next slot runs', async () => {
    await plan('busy', '0 2 * * *', '2026-11-30T12:00:00Z');
    const s = scheduler('busy');
    at('2026-12-01T00:30:00Z');
    await h.c.runs.trigger(DEFAULT_TENANT_ID, 'busy', { trigger: 'api', triggeredBy: 'someone' });
    at('2026-12-01T01:00:00Z');
    expect(await s.tick()).toMatchObject({ enqueued: [], missed: ['busy@2026-12-01T01:00:00.000Z'] });
    const view = await h.request('GET', '/api/v1/plans/busy/schedule');
    expect(view.body).toMatchObject({ lastSlot: '2026-12-01T01:00:00.000Z', lastMissed: { slot: '2026-12-01T01:00:00.000Z', reason: 'active-run' } });
    await finishRuns('busy');
    at('2026-12-01T01:10:00Z');
    expect((await s.tick()).enqueued).toEqual([]);
    at('2026-12-02T01:00:00Z');
    expect((await s.tick()).enqueued).toHaveLength(1);
    await s.stop();
  });

  it('on the spring-forward day (2026-03-29) the skipped 02:30 runs once, at 03:30 CEST', async () => {
    await plan('dst', '30 2 * * *', '2026-03-01T00:00:00Z');
    await new ScheduleRepository(h.tdb.db).advance(DEFAULT_TENANT_ID, 'dst', new Date('2026-03-28T01:30:00Z'), new Date('2026-03-28T01:30:00Z'));
    const s = scheduler('e');
    const enqueuedAt: string[] = [];
    for (let t = Date.parse('2026-03-28T23:00:00Z'); t <= Date.parse('2026-03-29T04:00:00Z'); t += 10 * 60_000) {
      now = new Date(t);
      if ((await s.tick()).enqueued.length) enqueuedAt.push(now.toISOString());
      await finishRuns('dst');
    }
    expect(enqueuedAt).toEqual(['2026-03-29T01:30:00.000Z']);
    expect(await slots('dst')).toEqual(['2026-03-29T01:30:00.000Z']);
    await s.stop();
  });
  it('keeps each plan\'s next slot in the database: a tick looks only at plans whose slot has come or whose schedule changed', async () => {
    await plan('next-a', '15 4 * * *', '2026-11-30T12:00:00Z');
    await plan('next-b', '45 4 * * *', '2026-11-30T12:00:00Z');
    const s = scheduler('next');
    const nextOf = async (id: string) => (await sql<{ next_slot: Date; next_slot_key: string }>`select next_slot, next_slot_key from plan_schedules where plan_id = ${id}`.execute(h.tdb.db)).rows[0];
    at('2026-12-02T00:00:00Z');
    await s.tick(); // 1 December's slots (the plans were created the day before), and the next slots worked out
    expect([...await slots('next-a'), ...await slots('next-b')]).toEqual(['2026-12-01T03:15:00.000Z', '2026-12-01T03:45:00.000Z']);
    await finishRuns('next-a');
    await finishRuns('next-b');
    expect(await nextOf('next-a')).toEqual({ next_slot: new Date('2026-12-02T03:15:00Z'), next_slot_key: '15 4 * * *|Europe/Berlin' });
    expect((await nextOf('next-b'))!.next_slot).toEqual(new Date('2026-12-02T03:45:00Z'));
    // nothing due, nothing unknown: the tick looks at no plan of these (others may be in the database)
    at('2026-12-02T03:00:00Z');
    await s.tick();
    expect([...await slots('next-a'), ...await slots('next-b')]).toHaveLength(2);
    at('2026-12-02T03:15:00Z');
    await s.tick();
    expect(await slots('next-a')).toEqual(['2026-12-01T03:15:00.000Z', '2026-12-02T03:15:00.000Z']);
    expect((await nextOf('next-a'))!.next_slot).toEqual(new Date('2026-12-03T03:15:00Z'));
    await finishRuns('next-a');
    // a changed schedule makes the stored next slot unknown: the next tick works it out again
    await h.putPlan(pgPlan('next-b', 'next-b.dump', { cadence: { schedule: '20 4 * * *', timezone: TZ } }));
    at('2026-12-02T03:20:00Z');
    await s.tick();
    expect(await slots('next-b')).toEqual(['2026-12-01T03:45:00.000Z', '2026-12-02T03:20:00.000Z']);
    expect(await nextOf('next-b')).toEqual({ next_slot: new Date('2026-12-03T03:20:00Z'), next_slot_key: '20 4 * * *|Europe/Berlin' });
    await finishRuns('next-b');
    for (const id of ['next-a', 'next-b']) expect((await h.request('POST', `/api/v1/plans/${id}/pause`, { reason: 'nur für diesen Test' })).status).toBe(200);
    await s.stop();
  });
});
