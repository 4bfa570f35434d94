import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { until } from '../helpers/until.js';
import { harnessEnv, startService, stopServices, type ServiceProcess } from '../helpers/processes.js';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

const SRC = 'ef_rt_crash';
let h: Harness;
let dir: string;

function startWorkerProcess(): ServiceProcess {
  return startService(['worker'], harnessEnv(h, dir, { ERNSTFALL_STALE_SECONDS: '3', ERNSTFALL_HEARTBEAT_MS: '500' }));
}

beforeAll(async () => {
  dir = await makeTempDir('ef-crash-');
  await makeHostDatabase(SRC, { rows: 400_000 });
  await dumpHost(SRC, 'custom', join(dir, 'big.dump'));
  h = await startHarness({ worker: false, backupRoot: dir, env: { ERNSTFALL_STALE_SECONDS: '3', ERNSTFALL_HEARTBEAT_MS: '500' } });
});
afterAll(async () => {
  // every worker process gone first: its database connections must close before the test database is dropped
  await stopServices();
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

describe('a worker killed during a restore', () => {
  it('leaves no container and no run stuck in running once a worker starts again', async () => {
    // a slow sandbox (a tenth of a CPU) keeps the restore running long enough to kill the worker in it
    await h.putPlan(pgPlan('crash', 'big.dump', { sandbox: { cpus: 0.1, memory: '1g', timeout: '10m' } }));
    const first = startWorkerProcess();
    const runId = await h.trigger('crash');
    // a tenth of a CPU starts PostgreSQL slowly when the whole suite runs beside it; the worker's last lines say why if it never gets there
    await until('the restore phase', async () => {
      const run = (await h.request('GET', `/api/v1/runs/${runId}`)).body;
      return run.status === 'running' && run.phases.some((p: { name: string }) => p.name === 'restore') ? run : undefined;
    }, 240_000).catch((err: Error) => {
      throw new Error(`${err.message}; the worker's last lines:\n${first.output().split('\n').slice(-20).join('\n')}`);
    });
    await first.kill();
    // the dead worker's sandbox is still there, and the run still says running
    expect(await h.sandboxesLeft()).toBe(1);
    expect((await h.request('GET', `/api/v1/runs/${runId}`)).body.status).toBe('running');

    startWorkerProcess();
    const run = await until('the run to end', async () => {
      const r = (await h.request('GET', `/api/v1/runs/${runId}`)).body;
      return r.status === 'finished' ? r : undefined;
    });
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('WORKER_LOST');
    // the timeline says where it stopped and who cleaned up: not "restore ok in 0 ms, teardown skipped"
    const byName = Object.fromEntries(run.phases.map((p: { name: string }) => [p.name, p]));
    expect(byName.restore).toMatchObject({ status: 'interrupted', note: 'the worker stopped responding during this phase' });
    expect(byName.restore.durationMs).toBeGreaterThan(0);
    expect(byName.verify.status).toBe('skipped');
    expect(byName.teardown).toMatchObject({ status: 'ok', note: 'the reaper removed 1 sandbox(es) of this run' });
    await until('the sandbox to be reaped', async () => ((await h.sandboxesLeft()) === 0 ? true : undefined), 30_000);

    // and the plan can be tested again right away
    const again = await h.trigger('crash');
    expect(again).not.toBe(runId);
    await h.request('POST', `/api/v1/runs/${again}/cancel`);
    const cancelled = await h.waitForRun(again);
    expect(cancelled.verdict).toBe('cancelled');
    await until('the cancelled sandbox to be removed', async () => ((await h.sandboxesLeft()) === 0 ? true : undefined), 30_000);
  }, 420_000);
});
