import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { harnessEnv, startService, stopServices } from '../helpers/processes.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { createContainer } from '../../services/container.js';
import { createLogger } from '../../services/logger.js';
import { OutcomeHandover } from '../../services/runs/outcome-handover.js';
import { RunRepository } from '../../db/repositories/run.repository.js';
import { OutcomeRepository } from '../../db/repositories/outcome.repository.js';
import { SigningKeyError } from '../../services/evidence/signing-key.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { buildMetricsRegistry } from '../../services/metrics/metrics.js';

const SRC = 'ef_rt_signing';
let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('ef-signing-');
  await makeHostDatabase(SRC, { rows: 2000 });
  await dumpHost(SRC, 'custom', join(dir, 'small.dump'));
  h = await startHarness({ worker: false, backupRoot: dir });
  await h.putPlan(pgPlan('signed', 'small.dump', { checks: [{ name: 'rows', sql: 'select count(*) from einwohner', expect: '== 2000' }] }));
});
afterAll(async () => {
  // the worker process gone first: its database connections must close before the test database is dropped
  await stopServices();
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

/** A queued run of the plan, claimed by `workerId` as a worker would (no Docker). */
async function claimedRun(workerId: string, planId = 'signed'): Promise<string> {
  const id = await h.trigger(planId);
  const claimed = await new RunRepository(h.c.db).claim(id, workerId, h.c.clock());
  expect(claimed?.status).toBe('running');
  return id;
}

const passed = { verdict: 'passed' as const, findings: [], checks: [] };

async function recordsOf(runId: string) {
  return h.tdb.db.selectFrom('ledger_records').select(['seq', 'canonical']).where('subject_id', '=', runId).execute();
}

describe('central signing: workers hand outcomes over, a process with the key signs', () => {
  it('a handed-over outcome ends the run with a signed record naming the worker; the outcome keeps no content', async () => {
    const id = await claimedRun('w-one');
    expect(await new OutcomeHandover(h.c.db, h.c.clock).claimed(id, 'w-one', passed, [{ name: 'restore-tool.log', content: Buffer.from('pg_restore: done\n') }])).toBe(true);
    const run = await h.waitForRun(id, 10_000);
    expect(run).toMatchObject({ status: 'finished', verdict: 'passed' });
    const [rec] = await recordsOf(id);
    const payload = JSON.parse(rec!.canonical).payload;
    expect(payload.reportedBy).toEqual({ worker: 'w-one' });
    expect(payload.attachments.map((a: { name: string }) => a.name)).toEqual(['restore-tool.log']);
    const ev = await h.request('GET', `/api/v1/runs/${id}/evidence`);
    expect(ev.body.verified).toEqual({ hash: true, signature: true, trustedKey: true });
    const row = await h.tdb.db.selectFrom('run_outcomes').selectAll().where('run_id', '=', id).executeTakeFirstOrThrow();
    expect(row.signed_at).not.toBeNull();
    expect(row.outcome).toBeNull();
    expect((await h.request('GET', '/api/v1/evidence/verify')).body.ok).toBe(true);
  });

  it('refuses an outcome from a worker that does not hold the run, and a second outcome for the same run', async () => {
    const id = await claimedRun('w-holder');
    const handover = new OutcomeHandover(h.c.db, h.c.clock);
    expect(await handover.claimed(id, 'w-intruder', { verdict: 'failed', findings: [] })).toBe(false);
    expect(await handover.claimed(id, 'w-holder', passed)).toBe(true);
    expect(await handover.claimed(id, 'w-holder', { verdict: 'failed', findings: [] })).toBe(false);
    const run = await h.waitForRun(id, 10_000);
    expect(run.verdict).toBe('passed');
    expect(await recordsOf(id)).toHaveLength(1);
  });

  it('an outcome waits while no signer runs: the run stays running, is not declared lost, and is signed once a signer starts', async () => {
    await h.signer.stop();
    try {
      const id = await claimedRun('w-waiting');
      await sql`update runs set heartbeat_at = now() - interval '1 hour' where id = ${id}`.execute(h.tdb.db);
      expect(await new OutcomeHandover(h.c.db, h.c.clock).claimed(id, 'w-waiting', passed)).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await h.request('GET', `/api/v1/runs/${id}`)).body.status).toBe('running');
      // a worker's lost-run check (and the signer's) skips it: the worker reported, it is not lost
      expect((await new RunRepository(h.c.db).stale(60)).map((r) => r.id)).not.toContain(id);
      expect((await new OutcomeRepository(h.c.db).backlog()).count).toBe(1);
      const metrics = await buildMetricsRegistry({ db: h.c.db, tenantLabels: false, defaultMetrics: false, clock: h.c.clock }).metrics();
      expect(metrics).toMatch(/^ernstfall_outcomes_unsigned 1$/m);
      expect(Number(/^ernstfall_outcomes_oldest_unsigned_age_seconds (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(1);
      await h.signer.start();
      expect((await h.waitForRun(id, 10_000)).verdict).toBe('passed');
    } finally {
      await h.signer.start();
    }
  });

  it('two signers at once sign every outcome exactly once, and the chain verifies', async () => {
    await h.signer.stop();
    const second = h.c.outcomeSigner({ pollMs: 60_000 });
    try {
      const ids: string[] = [];
      // one plan has one active run at a time: a plan each
      for (let i = 0; i < 12; i++) {
        await h.putPlan(pgPlan(`race-${i}`, 'small.dump'));
        ids.push(await claimedRun(`w-race-${i}`, `race-${i}`));
      }
      const handover = new OutcomeHandover(h.c.db, h.c.clock);
      for (const [i, id] of ids.entries()) expect(await handover.claimed(id, `w-race-${i}`, passed)).toBe(true);
      await h.signer.start();
      await second.start();
      await Promise.all([h.signer.kick(), second.kick()]);
      for (const id of ids) {
        expect((await h.waitForRun(id, 10_000)).verdict).toBe('passed');
        expect(await recordsOf(id)).toHaveLength(1);
      }
      expect((await h.request('GET', '/api/v1/evidence/verify')).body.ok).toBe(true);
    } finally {
      await second.stop();
      await h.signer.start();
    }
  });

  it('a run whose worker vanished and that no worker reports is ended by the signer as lost (WORKER_LOST), signed', async () => {
    const id = await claimedRun('w-vanished');
    await h.putPlan(pgPlan('alive', 'small.dump'));
    const fresh = await claimedRun('w-alive', 'alive');
    await sql`update runs set heartbeat_at = now() - interval '1 hour' where id = ${id}`.execute(h.tdb.db);
    const signer = h.c.outcomeSigner({ pollMs: 60_000 });
    await signer.start();
    try {
      const run = await h.waitForRun(id, 10_000);
      expect(run.verdict).toBe('error');
      expect(run.findings.map((f: { code: string }) => f.code)).toContain('WORKER_LOST');
      expect(await recordsOf(id)).toHaveLength(1);
      // a run with a live heartbeat is left alone
      expect((await h.request('GET', `/api/v1/runs/${fresh}`)).body.status).toBe('running');
    } finally {
      await signer.stop();
    }
  });

  it('an outcome that cannot be read ends the run as error, signed, saying why', async () => {
    const id = await claimedRun('w-garbled');
    await h.tdb.db.insertInto('run_outcomes').values({ run_id: id, tenant_id: DEFAULT_TENANT_ID, worker_id: 'w-garbled', outcome: JSON.stringify({ mode: 'claimed', result: { verdict: 'splendid' } }) }).execute();
    await h.signer.kick();
    const run = await h.waitForRun(id, 10_000);
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f: { code: string; message: string }) => `${f.code}: ${f.message}`).join('\n')).toMatch(/INTERNAL_ERROR: the worker's outcome could not be read: outcome has no valid verdict/);
    expect(await recordsOf(id)).toHaveLength(1);
  });

  it('a worker-only container loads no key, and anything that would sign there fails loudly', async () => {
    const config = { ...h.config, evidence: { ...h.config.evidence, signingKeyFile: '/nonexistent/signing-key.pem' } };
    const c = createContainer(config, createLogger('silent'), { signing: false });
    try {
      await expect(c.ledger.appendNow({ tenantId: DEFAULT_TENANT_ID, kind: 'run', subjectId: randomUUID(), payload: {} })).rejects.toThrow(SigningKeyError);
      expect(() => c.ledger.keyId).toThrow(/holds no signing key/);
    } finally {
      await c.close();
    }
    // with signing, a missing key is a start-up error as before
    expect(() => createContainer(config, createLogger('silent'))).toThrow(/does not exist/);
  });

  it('a real worker process without any signing key restores a backup; the API process signs the result', async () => {
    // no key anywhere: the worker must not need one
    const worker = startService(['worker'], harnessEnv(h, dir, { ERNSTFALL_SIGNING_KEY_FILE: '/nonexistent/signing-key.pem', PORT: '0' }));
    const id = await h.trigger('signed');
    const run = await h.waitForRun(id, 150_000).catch((err: Error) => {
      throw new Error(`${err.message}; worker output:\n${worker.output()}`);
    });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    const [rec] = await recordsOf(id);
    expect(JSON.parse(rec!.canonical).payload.reportedBy.worker).toMatch(/^.+-\d+-[0-9a-f]{6}$/);
    const ev = await h.request('GET', `/api/v1/runs/${id}/evidence`);
    expect(ev.body.verified).toEqual({ hash: true, signature: true, trustedKey: true });
    expect(await h.sandboxesLeft()).toBe(0);
  });
});
