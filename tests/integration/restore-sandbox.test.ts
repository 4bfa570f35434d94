import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { touchNow } from '../fixtures/test-clock.js';
import { dumpInImage } from '../fixtures/docker-dumps.js';

const SRC = 'ef_rt_sandbox';
let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('ef-sandbox-');
  await makeHostDatabase(SRC, { rows: 200_000 });
  await dumpHost(SRC, 'custom', join(dir, 'mid.dump'));
  await dumpHost(SRC, 'directory', join(dir, 'mid-dir'));
  // one sandbox at a time, copied in as for a remote engine, quick loss detection
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '1', ERNSTFALL_SANDBOX_TRANSFER: 'copy', ERNSTFALL_HEARTBEAT_MS: '300', ERNSTFALL_SANDBOX_IMAGES: 'ernstfall/sandbox-postgres:does-not-exist' } });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

const count = { name: 'Einwohner', sql: 'select count(*) from einwohner', expect: '== 200000' };

describe('sandbox image choice', () => {
  it('restores a PostgreSQL 17 dump in the 17 image (the smallest major >= the dump)', async () => {
    await dumpInImage(17, dir, 'pg17.dump');
    await h.putPlan(pgPlan('pg17', 'pg17.dump', { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 1500' }] }));
    const run = await h.waitForRun(await h.trigger('pg17'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox.image).toBe('ernstfall/sandbox-postgres:17');
    expect(run.sandbox.postgresMajor).toBe(17);
    expect(run.backup.dumpVersion).toMatch(/^17\./);
  });

  it('a plain PostgreSQL 17 dump (with settings 15 lacks) also goes to 17', async () => {
    await dumpInImage(17, dir, 'pg17.sql', { format: 'plain' });
    await h.putPlan(pgPlan('pg17-plain', 'pg17.sql', { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 1500' }] }));
    const run = await h.waitForRun(await h.trigger('pg17-plain'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox.image).toBe('ernstfall/sandbox-postgres:17');
  });

  it('a missing image is a clear error naming how to build it, never a pull', async () => {
    await h.putPlan(pgPlan('no-image', 'mid.dump', { restore: { driver: 'postgres', database: 'app', image: 'ernstfall/sandbox-postgres:does-not-exist' } }));
    const run = await h.waitForRun(await h.trigger('no-image'));
    expect(run.verdict).toBe('error');
    const missing = run.findings.find((f: { code: string }) => f.code === 'IMAGE_MISSING');
    expect(missing?.message, JSON.stringify(run.findings)).toContain('npm run setup');
    expect(run.findings.filter((f: { severity: string }) => f.severity === 'error').map((f: { code: string }) => f.code)).toEqual(['IMAGE_MISSING']);
  });
});

describe('copy-in transfer (remote Docker engines)', () => {
  it('restores a custom file and a directory dump copied into the sandbox', async () => {
    await h.putPlan(pgPlan('copy-file', 'mid.dump', { checks: [count] }));
    await h.putPlan(pgPlan('copy-dir', 'mid-dir', { checks: [count] }));
    const a = await h.waitForRun(await h.trigger('copy-file'));
    const b = await h.waitForRun(await h.trigger('copy-dir'));
    for (const run of [a, b]) {
      expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
      expect(run.sandbox.transfer).toBe('copy');
    }
  });
});

describe('limits, timeout and cancel', () => {
  it('runs at most ERNSTFALL_WORKER_CONCURRENCY sandboxes at once', async () => {
    await h.putPlan(pgPlan('conc-a', 'mid.dump', { checks: [count] }));
    await h.putPlan(pgPlan('conc-b', 'mid.dump', { checks: [count] }));
    const [ia, ib] = [await h.trigger('conc-a'), await h.trigger('conc-b')];
    const [a, b] = [await h.waitForRun(ia), await h.waitForRun(ib)];
    const spans = [a, b].map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const).sort((x, y) => x[0] - y[0]);
    expect(spans[1]![0]).toBeGreaterThanOrEqual(spans[0]![1] - 50);
  });

  it('a sandbox timeout ends the run as error TIMEOUT and removes the sandbox', async () => {
    await h.putPlan(pgPlan('timeout', 'mid.dump', { sandbox: { cpus: 0.1, timeout: '3s' }, checks: [count] }));
    const run = await h.waitForRun(await h.trigger('timeout'));
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('TIMEOUT');
    expect(run.checks[0].status).toBe('skipped');
    expect(await h.sandboxesLeft()).toBe(0);
  });

  it('cancelling a running restore stops it within a heartbeat: cancelled, sandbox gone', async () => {
    await h.putPlan(pgPlan('cancel-running', 'mid.dump', { sandbox: { cpus: 0.1, timeout: '10m' }, checks: [count] }));
    const id = await h.trigger('cancel-running');
    await h.waitForPhase(id, 'restore');
    expect((await h.request('POST', `/api/v1/runs/${id}/cancel`)).status).toBe(202);
    const run = await h.waitForRun(id, 30_000);
    expect(run.verdict).toBe('cancelled');
    expect(run.checks.every((c: { status: string }) => c.status === 'skipped')).toBe(true);
    const restore = run.phases.find((p: { name: string }) => p.name === 'restore');
    expect(restore).toMatchObject({ status: 'interrupted', note: 'cancelled by a person' });
    expect(restore.durationMs).toBeGreaterThan(0);
    expect(run.phases.find((p: { name: string }) => p.name === 'teardown').status).toBe('ok');
    expect(await h.sandboxesLeft()).toBe(0);
  });

  it('a backup replaced during the restore does not matter: the sandbox restores its own copy of the hashed bytes', async () => {
    const { copyFile, rename, writeFile } = await import('node:fs/promises');
    const { createHash } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    await copyFile(join(dir, 'mid.dump'), join(dir, 'rotating.dump'));
    await touchNow(join(dir, 'rotating.dump')); // the copy's file time is the kernel's, not the tests' clock
    const original = createHash('sha256').update(await readFile(join(dir, 'rotating.dump'))).digest('hex');
    await h.putPlan(pgPlan('rotating', 'rotating.dump', { sandbox: { cpus: 0.2, timeout: '10m' }, checks: [count] }));
    const id = await h.trigger('rotating');
    await h.waitForPhase(id, 'restore');
    // a backup job rotating "latest" by rename: a new (here: broken) file at the same path
    await writeFile(join(dir, 'rotating.new'), 'not a dump');
    await rename(join(dir, 'rotating.new'), join(dir, 'rotating.dump'));
    const run = await h.waitForRun(id);
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.backup.sha256).toBe(original); // the evidence names exactly what was restored
    expect(run.sandbox.transfer).toBe('copy');
    expect(run.findings.map((f: { code: string }) => f.code)).not.toContain('BACKUP_CHANGED');
  });

  // last in this file: it closes the worker
  it('a worker shutdown stops a running restore: error INTERRUPTED, the restore phase interrupted, sandbox removed', async () => {
    await h.putPlan(pgPlan('shutdown', 'mid.dump', { sandbox: { cpus: 0.1, timeout: '10m' }, checks: [count] }));
    const id = await h.trigger('shutdown');
    await h.waitForPhase(id, 'restore');
    // while it runs, the API shows the phase as running, not as done
    const live = (await h.request('GET', `/api/v1/runs/${id}`)).body;
    await new Promise((r) => setTimeout(r, 700)); // one heartbeat (300 ms) at least
    const during = (await h.request('GET', `/api/v1/runs/${id}`)).body;
    expect(during.phases.find((p: { name: string }) => p.name === 'restore')?.status, JSON.stringify([live.phases, during.phases])).toBe('running');
    await h.worker!.close();
    // the worker handed its outcome over before closing; the signer ends the run
    const run = await h.waitForRun(id, 15_000);
    expect(run.status).toBe('finished');
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('INTERRUPTED');
    expect(run.phases.map((p: { name: string; status: string }) => `${p.name}:${p.status}`)).toEqual([
      'fetch:ok', 'provision:ok', 'restore:interrupted', 'verify:skipped', 'teardown:ok',
    ]);
    expect(run.phases.find((p: { name: string }) => p.name === 'restore').note).toBe('the worker was shut down');
    expect(await h.sandboxesLeft()).toBe(0);
  });
});
