import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { until } from '../helpers/until.js';
import { harnessEnv, startService, stopServices, type ServiceProcess } from '../helpers/processes.js';
import { dockerLeftovers, startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

/** A worker killed while an application group runs (decisions/021): the next worker removes its containers and its network. */
const SRC = 'ef_rt_services_crash';
const APP = 'ernstfall/test-app:1';
let h: Harness;
let dir: string;

function startWorkerProcess(): ServiceProcess {
  return startService(['worker'], harnessEnv(h, dir, { ERNSTFALL_STALE_SECONDS: '3', ERNSTFALL_HEARTBEAT_MS: '500', ERNSTFALL_SANDBOX_IMAGES: APP }));
}
const left = () => dockerLeftovers(h);

beforeAll(async () => {
  execFileSync('bash', [join(__dirname, '../../deploy/build-test-app-image.sh'), APP], { stdio: ['ignore', 'ignore', 'inherit'] });
  dir = await makeTempDir('ef-services-crash-');
  await makeHostDatabase(SRC, { rows: 300 });
  await dumpHost(SRC, 'custom', join(dir, 'app.dump'));
  h = await startHarness({ worker: false, backupRoot: dir, env: { ERNSTFALL_STALE_SECONDS: '3', ERNSTFALL_HEARTBEAT_MS: '500', ERNSTFALL_SANDBOX_IMAGES: APP } });
});
afterAll(async () => {
  await stopServices();
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

describe('a worker killed while an application group runs', () => {
  it('leaves no container, network or volume once a worker starts again, and the run ends WORKER_LOST', async () => {
    // an app that never answers healthy keeps the run in its services phase (deadline 3 minutes)
    await h.putPlan(pgPlan('group-crash', 'app.dump', {
      sandbox: { memory: '512m', cpus: 1, timeout: '5m' },
      services: [{
        name: 'web', image: APP,
        env: { PGHOST: '${db.host}', PGUSER: '${db.user}', PGPASSWORD: '${db.password}', PGDATABASE: '${db.name}', APP_TABLE: 'buerger' },
        probe: { http: { port: 8080, path: '/health' }, deadline: '3m' },
      }],
    }));
    const first = startWorkerProcess();
    const runId = await h.trigger('group-crash');
    // restore, checks and the group's start take long when the whole suite runs beside it; the worker's last lines say why if it never gets there
    await until('the service to run', async () => {
      const l = await left();
      // sandbox, probe and web: all there, on the run's network
      return l.containers === 3 && l.networks === 1 ? l : undefined;
    }, 240_000).catch((err: Error) => {
      throw new Error(`${err.message}; the worker's last lines:\n${first.output().split('\n').slice(-20).join('\n')}`);
    });
    await first.kill();
    expect((await left()).networks).toBe(1);

    startWorkerProcess();
    const run = await until('the run to end', async () => {
      const r = (await h.request('GET', `/api/v1/runs/${runId}`)).body;
      return r.status === 'finished' ? r : undefined;
    }, 120_000);
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('WORKER_LOST');
    expect(run.phases.find((p: { name: string }) => p.name === 'services')).toMatchObject({ status: 'interrupted' });
    await until('everything of the run to be removed', async () => {
      const l = await left();
      return l.containers + l.networks + l.volumes === 0 ? true : undefined;
    }, 30_000);
  }, 480_000);
});
