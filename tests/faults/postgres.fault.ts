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
  [pg, redis, engine, dumps] = await Promise.all([faultPostgres(), faultRedis(), faultEngine(), faultDumps('pg')]);
});
afterAll(async () => {
  await pg?.start().catch(() => undefined);
  await s?.close();
  await redis?.kill();
  await dumps?.remove();
});

const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

describe('PostgreSQL restarts during a restore, and is still down when the worker hands its outcome over', () => {
  it('the hand-over waits for the database; the run ends naming the database, never stays running; no sandbox left; the ledger verifies', async () => {
    s = await startFaultStack({ pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir });
    await s.putPlan(faultPlan('pg-restart', 'big.dump', 0.5));
    const id = await s.trigger('pg-restart');
    await s.waitForPhase(id, 'restore');
    const t0 = Date.now();
    await pg.stop();
    // the database stays down until the worker is through: its sandbox gone means the outcome is being handed over
    await until('the worker to finish its test', async () => ((await s!.sandboxesLeft()) === 0 ? true : undefined), 120_000);
    await new Promise((r) => setTimeout(r, 3000));
    const down = (Date.now() - t0) / 1000;
    await pg.start();
    const run = await s.waitForRun(id, 60_000);
    const recovered = (Date.now() - t0) / 1000;
    expect(run.verdict).toBe('error');
    // the cause is named: the database, not a worker that vanished
    expect(codes(run)).not.toContain('WORKER_LOST');
    expect(run.findings.some((f) => f.severity === 'error' && /database/i.test(f.message))).toBe(true);
    expect(codes(run)).toContain('DATABASE_UNAVAILABLE');
    expect(await s.sandboxesLeft()).toBe(0);
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger.ok).toBe(true);
    await recordFigure({ fault: `PostgreSQL stopped mid-restore for ${Math.round(down)} s (through the hand-over)`, recoveredSeconds: recovered, runs: `${run.verdict} (${codes(run).join(', ')})`, containersLeft: await s.sandboxesLeft(), ledger: `ok, ${ledger.records} records` });
  });
});
