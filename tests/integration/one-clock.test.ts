import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { parseEnvelope } from '../../services/evidence/ledger-format.js';

/**
 * One clock (docs/decisions/018-one-clock.md): with the application's clock set
 * six years before the database's, every business time the product stores comes
 * from the application's clock, and every expiry is decided on it. A time taken
 * from the database's now() would land in the database's present and fail here.
 */
const T0 = new Date('2020-03-02T09:00:00.000Z');
let now = T0;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => now });
  const dbNow = (await sql<{ now: Date }>`select now() as now`.execute(h.tdb.db)).rows[0]!.now;
  // the premise: the two clocks are years apart
  expect(dbNow.getTime() - T0.getTime()).toBeGreaterThan(365 * 86_400_000);
});
afterAll(async () => {
  await h?.close();
});

describe('one clock for business time', () => {
  it('plans, versions, runs, schedules, tokens, calendar feeds and ledger records take the application clock', async () => {
    await h.putPlan(pgPlan('clock-plan', 'x.dump'));
    const plan = await h.tdb.db.selectFrom('plans').select(['created_at', 'updated_at']).where('id', '=', 'clock-plan').executeTakeFirstOrThrow();
    expect(plan).toEqual({ created_at: T0, updated_at: T0 });
    const version = await h.tdb.db.selectFrom('plan_versions').select('created_at').where('plan_id', '=', 'clock-plan').executeTakeFirstOrThrow();
    expect(version.created_at).toEqual(T0);

    now = new Date(T0.getTime() + 60_000);
    const started = await h.request('POST', '/api/v1/plans/clock-plan/runs');
    expect(started.status).toBe(202);
    now = new Date(T0.getTime() + 120_000);
    expect((await h.request('POST', `/api/v1/runs/${started.body.id}/cancel`)).status).toBeLessThan(300);
    const run = await h.tdb.db.selectFrom('runs').select(['queued_at', 'cancel_requested_at', 'finished_at', 'verdict']).where('id', '=', started.body.id).executeTakeFirstOrThrow();
    expect(run).toEqual({ queued_at: new Date(T0.getTime() + 60_000), cancel_requested_at: now, finished_at: now, verdict: 'cancelled' });

    expect((await h.request('POST', '/api/v1/plans/clock-plan/pause', { reason: 'Umzug des Rechenzentrums' })).status).toBe(200);
    const schedule = await h.tdb.db.selectFrom('plan_schedules').select(['paused_at', 'updated_at']).where('plan_id', '=', 'clock-plan').executeTakeFirstOrThrow();
    expect(schedule).toEqual({ paused_at: now, updated_at: now });

    const token = await h.request('POST', '/api/v1/tokens', { name: 'Uhr', role: 'auditor' });
    expect((await h.tdb.db.selectFrom('api_tokens').select('created_at').where('id', '=', token.body.id).executeTakeFirstOrThrow()).created_at).toEqual(now);
    const feed = await h.request('POST', '/api/v1/calendar-feeds', { name: 'Outlook IT-Leitung' });
    expect(feed.status).toBe(201);
    expect((await h.tdb.db.selectFrom('calendar_feeds').select('created_at').executeTakeFirstOrThrow()).created_at).toEqual(now);

    // every record of the ledger so far (plan, run, audit) carries an application time, none the database's
    const records = await h.c.ledger.repo.list(DEFAULT_TENANT_ID);
    expect(records.length).toBeGreaterThan(3);
    for (const r of records) {
      const at = Date.parse(parseEnvelope(r).createdAt);
      expect(at).toBeGreaterThanOrEqual(T0.getTime());
      expect(at).toBeLessThanOrEqual(now.getTime());
    }
  });

  it('a session lives and expires on the application clock, not the database\'s', async () => {
    now = T0;
    const user = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'uhr@musterstadt.de', name: 'Uhr', role: 'auditor', created_by: 'test' });
    expect({ created: user.created_at, validAfter: user.sessions_valid_after }).toEqual({ created: T0, validAfter: T0 });
    const { token, session } = await h.c.sessions.start(user, { stage: 'full', method: 'password' });
    expect({ created: session.created_at, seen: session.last_seen_at, expires: session.expires_at })
      .toEqual({ created: T0, seen: T0, expires: new Date(T0.getTime() + h.config.auth.sessionMaxSeconds * 1000) });
    // expired by the database's clock years ago; alive by the application's
    expect((await h.c.sessions.resolve(token))?.user.id).toBe(user.id);
    // idle past the limit by the application's clock: over, although the database's clock has not moved
    now = new Date(T0.getTime() + (h.config.auth.sessionIdleSeconds + 1) * 1000);
    expect(await h.c.sessions.resolve(token)).toBeUndefined();
  });

  it('an API token\'s expiry is decided on the application clock', async () => {
    now = T0;
    const created = await h.request('POST', '/api/v1/tokens', { name: 'Befristet', role: 'auditor', expiresAt: new Date(T0.getTime() + 3600_000).toISOString() });
    expect(created.status).toBe(201);
    const use = () => h.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: `Bearer ${created.body.token}` } }).then((r) => r.statusCode);
    // in the database's present this token ran out years ago
    expect(await use()).toBe(200);
    now = new Date(T0.getTime() + 3600_000 + 1000);
    expect(await use()).toBe(401);
  });
});
