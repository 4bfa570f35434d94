import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { faultDumps, faultEngine, faultPlan, faultPostgres, faultRedis, recordFigure, startFaultStack, type FaultEngine, type FaultPostgres, type FaultRedis, type FaultStack } from './kit.js';
import { until } from '../helpers/until.js';

let pg: FaultPostgres;
let redis: FaultRedis;
let engine: FaultEngine;
let dumps: Awaited<ReturnType<typeof faultDumps>>;
let s: FaultStack | undefined;

beforeAll(async () => {
  [pg, redis, engine, dumps] = await Promise.all([faultPostgres(), faultRedis(), faultEngine(), faultDumps('eq')]);
});
afterAll(async () => {
  await s?.close();
  await redis?.kill();
  await dumps?.remove();
});

const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

describe('the Docker engine restarts during a restore', () => {
  it('the run ends as error with ENGINE_UNAVAILABLE, no sandbox is left, the engine serves the next run, the ledger verifies', async () => {
    s = await startFaultStack({ pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir });
    await s.putPlan(faultPlan('engine', 'big.dump'));
    const id = await s.trigger('engine');
    await s.waitForPhase(id, 'restore');
    const t0 = Date.now();
    await engine.stop();
    await engine.start();
    const run = await s.waitForRun(id, 120_000);
    const recovered = (Date.now() - t0) / 1000;
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('ENGINE_UNAVAILABLE');
    // nothing blames the backup
    expect(run.findings.filter((f) => f.severity === 'failure')).toEqual([]);
    await until('the sandbox to be gone', async () => ((await s!.sandboxesLeft()) === 0 ? true : undefined), 60_000);
    // the engine is usable again
    await s.putPlan(faultPlan('engine-after', 'small.dump'));
    const next = await s.waitForRun(await s.trigger('engine-after'), 90_000);
    expect(next.verdict).toBe('passed');
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger.ok).toBe(true);
    await recordFigure({ fault: 'Docker engine restarted mid-restore', recoveredSeconds: recovered, runs: `${run.verdict} (${codes(run).join(', ')}); next run ${next.verdict}`, containersLeft: await s.sandboxesLeft(), ledger: `ok, ${ledger.records} records` });
    await s.close();
    s = undefined;
  });
});

describe('Redis restarts (without persistence) during a restore', () => {
  it('the running test still ends with its verdict; a run queued in the lost Redis is enqueued again and runs; the ledger verifies', async () => {
    s = await startFaultStack({ pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '1' } });
    await s.putPlan(faultPlan('redis-running', 'big.dump', 0.2));
    await s.putPlan(faultPlan('redis-queued', 'small.dump'));
    const running = await s.trigger('redis-running');
    await s.waitForPhase(running, 'restore');
    // waits behind the running test (one sandbox at a time): only Redis knows its job
    const queued = await s.trigger('redis-queued');
    const t0 = Date.now();
    await redis.kill();
    await new Promise((r) => setTimeout(r, 3000));
    await redis.start();
    const a = await s.waitForRun(running, 150_000);
    const b = await s.waitForRun(queued, 150_000);
    const recovered = (Date.now() - t0) / 1000;
    expect(a.verdict).toBe('passed');
    expect(b.verdict).toBe('passed');
    await until('no sandbox left', async () => ((await s!.sandboxesLeft()) === 0 ? true : undefined), 30_000);
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger.ok).toBe(true);
    await recordFigure({ fault: 'Redis restarted (no persistence) mid-restore, one run queued', recoveredSeconds: recovered, runs: `running: ${a.verdict}; queued: ${b.verdict} (re-enqueued)`, containersLeft: await s.sandboxesLeft(), ledger: `ok, ${ledger.records} records` });
  });
});
