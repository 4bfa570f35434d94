import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  // nothing listens on port 1: Redis is "down" for this whole file
  h = await startHarness({ worker: false, env: { REDIS_URL: 'redis://127.0.0.1:1' } });
});
afterAll(async () => {
  await h?.close();
});

describe('with Redis down', () => {
  it('readyz names redis, and starting a run answers quickly instead of hanging; the run stays queued', async () => {
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(JSON.parse(ready.body).failing).toContain('redis');

    await h.putPlan(pgPlan('no-redis', 'x.dump'));
    const t0 = Date.now();
    const res = await h.request('POST', '/api/v1/plans/no-redis/runs');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(res.status).toBe(202);
    const run = (await h.request('GET', `/api/v1/runs/${res.body.id}`)).body;
    // kept, not lost: a worker's maintenance pass enqueues it again once Redis is back
    expect(run.status).toBe('queued');
    const t1 = Date.now();
    expect((await h.request('POST', `/api/v1/runs/${res.body.id}/cancel`)).status).toBe(202);
    expect(Date.now() - t1).toBeLessThan(10_000);
  });
});
