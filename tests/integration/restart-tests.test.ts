import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { dockerLeftovers, startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { until } from '../helpers/until.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { RestartTestCoordinator } from '../../services/systems/restart-test.service.js';

/**
 * Restart tests (issue #15 item 2, decisions/024): a process's systems
 * restored tier by tier, each with its application group (the offline test
 * app reading the restored database), the next tier only after every run of
 * the tier before passed; the sum of the tiers' times against the process's
 * RTO; a signed record naming each run's record.
 */
const SRC = 'ef_rt_restart';
const APP = 'ernstfall/test-app:1';
let h: Harness;
let dir: string;
let operator = '';
let auditor = '';

const DB_ENV = { PGHOST: '${db.host}', PGPORT: '${db.port}', PGUSER: '${db.user}', PGPASSWORD: '${db.password}', PGDATABASE: '${db.name}' };
/** A plan of `system` whose app answers healthy only if the restored database has `table`. */
const appPlan = (id: string, system: string, table = 'einwohner') => pgPlan(id, 'app.dump', {
  system,
  sandbox: { memory: '512m', cpus: 1, timeout: '4m' },
  checks: [{ name: 'Einwohner', sql: 'select count(*) from einwohner', expect: '== 300' }],
  services: [{ name: 'web', image: APP, env: { ...DB_ENV, APP_TABLE: table }, probe: { http: { port: 8080, path: '/health', status: 200 }, deadline: '20s' } }],
});
const as = (token: string, method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) => h.request(method, url, body, { authorization: `Bearer ${token}` });
const system = (id: string, name: string, process: string, tier: number) => as(operator, 'PUT', `/api/v1/systems/${id}`, { name, process, tier });
const enc = encodeURIComponent;

async function finished(id: string, timeoutMs = 400_000) {
  return until(`restart test ${id} to finish`, async () => {
    const t = (await h.request('GET', `/api/v1/restart-tests/${id}`)).body;
    return t.status === 'finished' ? t : undefined;
  }, timeoutMs, 500);
}
const codes = (x: { findings: { code: string }[] }) => x.findings.map((f) => f.code);

beforeAll(async () => {
  execFileSync('bash', [join(__dirname, '../../deploy/build-test-app-image.sh'), APP], { stdio: ['ignore', 'ignore', 'inherit'] });
  dir = await makeTempDir('ef-restart-');
  await makeHostDatabase(SRC, { rows: 300 });
  await dumpHost(SRC, 'custom', join(dir, 'app.dump'));
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '2', ERNSTFALL_SANDBOX_IMAGES: APP } });
  operator = (await h.request('POST', '/api/v1/tokens', { name: 'Otto Operator', role: 'operator' })).body.token;
  auditor = (await h.request('POST', '/api/v1/tokens', { name: 'Carla Auditorin', role: 'auditor' })).body.token;

  // Meldewesen: the register (tier 1), the citizens' portal (tier 2), the post office without a plan that can be restarted (tier 3)
  await system('ewo', 'Einwohnermeldewesen', 'Meldewesen', 1);
  await system('portal', 'Bürgerportal', 'Meldewesen', 2);
  await system('post', 'Poststelle', 'Meldewesen', 3);
  await h.putPlan(appPlan('ewo-app', 'ewo'));
  await h.putPlan(appPlan('portal-app', 'portal'));
  // Sozialwesen: its tier-1 app needs a table the backup does not have; tier 2 must then never start
  await system('sozial', 'Sozialamt', 'Sozialwesen', 1);
  await system('sozial-portal', 'Sozialportal', 'Sozialwesen', 2);
  await h.putPlan(appPlan('sozial-app', 'sozial', 'leistungen'));
  await h.putPlan(appPlan('sozial-portal-app', 'sozial-portal'));
  // Kasse: one tier, an RTO no restore meets
  await system('kasse', 'Kassenverfahren', 'Kasse', 1);
  await h.putPlan(appPlan('kasse-app', 'kasse'));
  // Archiv: systems, but no plan with services
  await system('archiv', 'Archiv', 'Archiv', 1);
  await h.putPlan(pgPlan('archiv-db', 'app.dump', { system: 'archiv' }));
}, 120_000);
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

describe('restart tests', () => {
  it('the process RTO is set by operators and validated; auditors read it; a process no system names is a 404', async () => {
    expect((await as(operator, 'PUT', `/api/v1/processes/${enc('Meldewesen')}`, { rto: '2h' })).body).toMatchObject({ name: 'Meldewesen', rtoSeconds: 7200 });
    const bad = await as(operator, 'PUT', `/api/v1/processes/${enc('Meldewesen')}`, { rto: 'bald' });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe('rto');
    expect((await as(auditor, 'PUT', `/api/v1/processes/${enc('Meldewesen')}`, { rto: '1h' })).status).toBe(403);
    expect((await as(auditor, 'POST', `/api/v1/processes/${enc('Meldewesen')}/restart-tests`)).status).toBe(403);
    const list = (await as(auditor, 'GET', '/api/v1/processes')).body.items;
    expect(list.find((p: { name: string }) => p.name === 'Meldewesen')).toMatchObject({
      rtoSeconds: 7200, systems: [{ id: 'ewo', tier: 1 }, { id: 'portal', tier: 2 }, { id: 'post', tier: 3 }], lastTest: null,
    });
    expect((await as(operator, 'POST', `/api/v1/processes/${enc('Gibt es nicht')}/restart-tests`)).status).toBe(404);
    // systems without a plan with services: nothing to restart, said so
    const none = await as(operator, 'POST', `/api/v1/processes/${enc('Archiv')}/restart-tests`);
    expect(none.status).toBe(409);
    expect(none.body.message).toContain('no system of process Archiv');
    expect((await h.request('GET', '/api/v1/restart-tests/00000000-0000-4000-8000-000000000999')).status).toBe(404);
  });

  it('restores the tiers in order, each after the one before passed; the time is the sum of the tiers; passed within the RTO, with a record naming every run\'s record', async () => {
    const start = await as(operator, 'POST', `/api/v1/processes/${enc('Meldewesen')}/restart-tests`);
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    expect(start.body).toMatchObject({ status: 'running', currentTier: 1, rtoSeconds: 7200 });
    expect(start.body.tiers[0].runs[0].runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(start.body.tiers[1].runs[0].runId).toBeNull();
    // a second one of the same process while it runs: refused
    expect((await as(operator, 'POST', `/api/v1/processes/${enc('Meldewesen')}/restart-tests`)).status).toBe(409);

    const t = await finished(start.body.id);
    expect(t.verdict, JSON.stringify(t.findings)).toBe('passed');
    expect(t.tiers.map((x: { tier: number; state: string }) => [x.tier, x.state])).toEqual([[1, 'passed'], [2, 'passed']]);
    // the post office is named, not silently left out, and not in the time
    expect(t.notTested).toEqual([expect.objectContaining({ systemId: 'post', tier: 3, reason: 'no plan names this system' })]);
    expect(codes(t)).toEqual(['SYSTEMS_NOT_TESTED']);

    const [ewo, portal] = await Promise.all(t.tiers.map((x: { runs: { runId: string }[] }) => h.request('GET', `/api/v1/runs/${x.runs[0]!.runId}`).then((r) => r.body)));
    expect(ewo.verdict).toBe('passed');
    expect(portal.verdict).toBe('passed');
    expect(ewo.trigger).toBe('restart-test');
    // tier 2 was queued only after tier 1's run had ended
    expect(Date.parse(portal.queuedAt)).toBeGreaterThanOrEqual(Date.parse(ewo.finishedAt));
    // each tier's time is its run's service RTO; the test's time their sum, against the process's RTO
    expect(t.tiers[0].seconds).toBe(ewo.restore.serviceRtoSeconds);
    expect(t.tiers[1].seconds).toBe(portal.restore.serviceRtoSeconds);
    expect(t.result.measuredSeconds).toBeCloseTo(ewo.restore.serviceRtoSeconds + portal.restore.serviceRtoSeconds, 1);
    expect(t.result.rto).toEqual({ targetSeconds: 7200, measuredSeconds: t.result.measuredSeconds, met: true });

    // the signed record names each run's own record
    const [record] = await h.c.repos.ledger.bySubject(DEFAULT_TENANT_ID, 'restart-test', t.id);
    const payload = JSON.parse(record!.canonical).payload.restartTest;
    const runRecord = async (id: string) => (await h.c.repos.ledger.bySubject(DEFAULT_TENANT_ID, 'run', id))[0]!.hash;
    expect(payload.tiers.map((x: { runs: { recordHash: string }[] }) => x.runs[0]!.recordHash)).toEqual([await runRecord(ewo.id), await runRecord(portal.id)]);
    expect(payload).toMatchObject({ process: 'Meldewesen', verdict: 'passed', rto: { targetSeconds: 7200, met: true } });
    expect(JSON.stringify(payload)).not.toMatch(/password/i);

    const listed = (await as(auditor, 'GET', '/api/v1/processes')).body.items.find((p: { name: string }) => p.name === 'Meldewesen');
    expect(listed.lastTest).toMatchObject({ id: t.id, verdict: 'passed', measuredSeconds: t.result.measuredSeconds });
    expect(await dockerLeftovers(h)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 480_000);

  it('a tier whose application does not come back fails the test (TIER_FAILED); the next tier is never started', async () => {
    const start = await as(operator, 'POST', `/api/v1/processes/${enc('Sozialwesen')}/restart-tests`);
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    const t = await finished(start.body.id);
    expect(t.verdict).toBe('failed');
    expect(codes(t)).toEqual(['TIER_FAILED']);
    expect(t.findings[0].message).toContain('Sozialamt');
    expect(t.tiers.map((x: { state: string }) => x.state)).toEqual(['failed', 'not started']);
    expect(t.tiers[1].runs[0].runId).toBeNull();
    expect(t.result.measuredSeconds).toBeNull();
    const run = (await h.request('GET', `/api/v1/runs/${t.tiers[0].runs[0].runId}`)).body;
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('SERVICE_UNHEALTHY');
    // the portal's plan never ran
    expect((await h.request('GET', '/api/v1/runs?planId=sozial-portal-app')).body.items).toEqual([]);
    expect(await dockerLeftovers(h)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 480_000);

  it('over the process\'s RTO: failed with RTO_EXCEEDED naming the tiers\' times', async () => {
    await as(operator, 'PUT', `/api/v1/processes/${enc('Kasse')}`, { rto: '1s' });
    const start = await as(operator, 'POST', `/api/v1/processes/${enc('Kasse')}/restart-tests`);
    const t = await finished(start.body.id);
    expect(t.verdict).toBe('failed');
    expect(codes(t)).toEqual(['RTO_EXCEEDED']);
    expect(t.findings[0].message).toContain('tier 1:');
    expect(t.result.rto).toMatchObject({ targetSeconds: 1, met: false });
    expect(t.result.measuredSeconds).toBeGreaterThan(1);
  }, 480_000);

  it('cancelled: its running tier\'s runs are cancelled, no further tier starts, the test ends cancelled', async () => {
    // Sozialwesen's tier-1 app answers for 20 s before its run ends: the cancel reaches a running run
    const start = await as(operator, 'POST', `/api/v1/processes/${enc('Sozialwesen')}/restart-tests`);
    expect(start.status).toBe(202);
    const cancelled = await as(operator, 'POST', `/api/v1/restart-tests/${start.body.id}/cancel`);
    expect(cancelled.status).toBe(202);
    const t = await finished(start.body.id, 120_000);
    expect(t.verdict).toBe('cancelled');
    expect(t.tiers.map((x: { state: string }) => x.state)).toEqual(['cancelled', 'not started']);
    expect((await h.request('GET', `/api/v1/runs/${t.tiers[0].runs[0].runId}`)).body.verdict).toBe('cancelled');
    expect((await as(operator, 'POST', `/api/v1/restart-tests/${t.id}/cancel`)).status).toBe(409);
    await until('the sandbox to be gone', async () => {
      const l = await dockerLeftovers(h);
      return l.containers + l.networks + l.volumes === 0 ? true : undefined;
    }, 60_000);
  }, 240_000);

  it('the systems page lists the processes with their newest restart test; the test\'s page shows its tiers', async () => {
    const user = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'pruefung@musterstadt.de', name: 'Prüfung', role: 'auditor', created_by: 'test' });
    const cookie = `ef_session=${(await h.c.sessions.start(user, { stage: 'full', method: 'password' })).token}`;
    const systems = await h.app.inject({ method: 'GET', url: '/systems', headers: { cookie } });
    expect(systems.statusCode).toBe(200);
    expect(systems.body).toContain('Wiederanlauftests');
    expect(systems.body).toContain('Meldewesen');
    // an auditor sees, but gets no start button
    expect(systems.body).not.toContain('Wiederanlauftest starten');
    const last = (await h.request('GET', `/api/v1/restart-tests?process=${enc('Sozialwesen')}`)).body.items.find((x: { verdict: string }) => x.verdict === 'failed');
    const page = await h.app.inject({ method: 'GET', url: `/restart-tests/${last.id}`, headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Sozialamt');
    expect(page.body).toContain('TIER_FAILED');
    expect(page.body).toContain('nicht begonnen');
  });

  it('the audit report lists the period\'s restart tests from their records (JSON and PDF)', async () => {
    const day = (ms: number) => new Date(h.c.clock().getTime() + ms).toISOString().slice(0, 10);
    const url = `/api/v1/reports/audit?from=${day(-86_400_000)}&to=${day(86_400_000)}`;
    const json = await h.request('GET', `${url}&format=json`);
    expect(json.status).toBe(200);
    const rows = json.body.restartTests;
    expect(rows.map((x: { process: string; verdict: string }) => [x.process, x.verdict])).toEqual([
      ['Meldewesen', 'passed'], ['Sozialwesen', 'failed'], ['Kasse', 'failed'], ['Sozialwesen', 'cancelled'],
    ]);
    expect(rows[0].tiers.map((x: { systems: string[] }) => x.systems)).toEqual([['Einwohnermeldewesen'], ['Bürgerportal']]);
    expect(rows[0].notTested).toEqual(['Poststelle']);
    expect(rows[2]).toMatchObject({ rto: { targetSeconds: 1, met: false }, findings: ['RTO_EXCEEDED'] });
    const pdf = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auditor}` } });
    expect(pdf.statusCode).toBe(200);
    const file = join(dir, 'audit.pdf');
    await writeFile(file, pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
    expect(text).toContain('Wiederanlauftests');
    expect(text).toContain('Sozialwesen');
  });

  it('outlives the process that advanced it: its state is the row, and another process takes it to the end', async () => {
    // this process stops advancing restart tests (as if it died after starting one)
    await h.restarts.stop();
    const start = await as(operator, 'POST', `/api/v1/processes/${enc('Kasse')}/restart-tests`);
    expect(start.status).toBe(202);
    const runId = start.body.tiers[0].runs[0].runId;
    await h.waitForRun(runId, 240_000);
    // the run ended; nobody advanced the test
    expect((await h.request('GET', `/api/v1/restart-tests/${start.body.id}`)).body).toMatchObject({ status: 'running', currentTier: 1 });
    const other = new RestartTestCoordinator(h.c.restartTests, h.c.log, 500);
    other.start();
    try {
      const t = await finished(start.body.id, 60_000);
      expect(t.tiers[0].runs[0]).toMatchObject({ runId, verdict: 'passed' });
      expect(t.verdict).toBe('failed'); // Kasse's RTO is still one second
      expect(codes(t)).toEqual(['RTO_EXCEEDED']);
    } finally {
      await other.stop();
    }
  }, 300_000);
});
