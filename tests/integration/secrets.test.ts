import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { dropHostDatabase, dumpHost, hostPsql, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

const SRC = 'ef_rt_secrets';
const CANARY = 'Kanarienvogel-Geheimnis-8812-xq';
let h: Harness;
let dir: string;
let logs = '';

beforeAll(async () => {
  dir = await makeTempDir('ef-secrets-');
  await makeHostDatabase(SRC, { rows: 500 });
  await hostPsql(`create table ef_canary (token text); insert into ef_canary values ('${CANARY}')`, SRC);
  await dumpHost(SRC, 'custom', join(dir, 'c.dump'));
  h = await startHarness({ backupRoot: dir, env: { LOG_LEVEL: 'debug' }, logSink: { write: (s: string) => { logs += s; } } });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

describe('secrets stay out of logs, job payloads, API output and stored runs', () => {
  it('a canary value is compared but never shown, stored or logged', async () => {
    await h.putPlan(pgPlan('canary-ok', 'c.dump', { checks: [{ canary: { sql: 'select token from ef_canary', equals: CANARY } }] }));
    // a wrong expectation: the actual value must not leak through the mismatch message either
    await h.putPlan(pgPlan('canary-bad', 'c.dump', { checks: [{ canary: { sql: 'select token from ef_canary', equals: 'something-else-entirely' } }] }));
    const ok = await h.waitForRun(await h.trigger('canary-ok'));
    const bad = await h.waitForRun(await h.trigger('canary-bad'));
    expect(ok.verdict).toBe('passed');
    expect(ok.checks[0]).toMatchObject({ status: 'passed', actual: 'übereinstimmend' });
    // not even the plan store keeps the plain value
    const planStore = JSON.stringify(await h.tdb.db.selectFrom('plan_versions').select('definition').execute());
    expect(planStore).not.toContain(CANARY);
    expect(bad.verdict).toBe('failed');
    expect(bad.checks[0]).toMatchObject({ status: 'failed', actual: 'abweichend' });

    const plans = JSON.stringify((await h.request('GET', '/api/v1/plans')).body);
    const runs = JSON.stringify((await h.request('GET', '/api/v1/runs')).body);
    const stored = JSON.stringify((await sql`select * from runs`.execute(h.tdb.db)).rows);
    const jobs = JSON.stringify(await Promise.all((await h.c.queue.queue.getJobs(['completed', 'waiting', 'active', 'failed'])).map((j) => j.data)));
    expect(logs.length).toBeGreaterThan(1000); // debug logs were really captured
    for (const [where, text] of Object.entries({ plans, runs, stored, jobs, logs })) {
      expect(text, where).not.toContain(CANARY);
      expect(text, where).not.toContain('something-else-entirely');
    }
  });

  it('the bearer token and database password never reach the log', async () => {
    await h.request('GET', '/api/v1/plans');
    const password = decodeURIComponent(new URL(h.tdb.appUrl).password);
    expect(password.length).toBeGreaterThan(8);
    expect(logs).not.toContain(TEST_TOKEN);
    expect(logs).not.toContain(password);
  });
});
