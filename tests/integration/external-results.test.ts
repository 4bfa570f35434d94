import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { createLogger } from '../../services/logger.js';
import { VeeamSyslogListener } from '../../services/external/syslog.js';
import { startHarness, type Harness } from '../helpers/harness.js';

/**
 * Issue #12, results from other tools: plans with kind: external, per-plan
 * ingest tokens, the tools' own words (recorded samples in
 * tests/fixtures/external), runs with origin external in the signed ledger.
 */
let h: Harness;
// one clock for the service and the test: every result lies in December 2026, whatever today is
const NOW = new Date('2026-12-07T12:00:00Z');
const sample = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/external', name), 'utf8');

const SUREBACKUP = {
  id: 'surebackup-bauamt', title: 'Bauamt-VMs (Veeam SureBackup)', kind: 'external',
  targets: { rto: '4h', rpo: '26h' }, cadence: { requiredEvery: '7d' },
  external: { tool: 'Veeam SureBackup', veeamJob: 'SureBackup Bauamt' },
  notify: { failure: ['mail:it@kommune.example'] },
};
const REPO = { id: 'restic-check-fs1', title: 'restic check (fs1)', kind: 'external', targets: { rto: '8h', rpo: '26h' }, external: { tool: 'restic check' } };

/** POST a result with a bearer token (an ingest token, or the harness's admin token when none is given). */
async function report(planId: string, body: unknown, token?: string) {
  return h.request('POST', `/api/v1/plans/${planId}/results`, body, token ? { authorization: `Bearer ${token}` } : {});
}
async function ingestToken(planId: string, name = 'VBR01'): Promise<{ id: string; token: string }> {
  const r = await h.request('POST', `/api/v1/plans/${planId}/ingest-tokens`, { name });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);
const runsOf = async (planId: string) => (await h.request('GET', `/api/v1/runs?planId=${planId}&limit=100`)).body.items as { id: string }[];

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => NOW, logSink: { write: (s) => { if (s.includes("\"level\":50")) process.stderr.write(s); } } });
  for (const p of [SUREBACKUP, REPO]) {
    const r = await h.request('PUT', `/api/v1/plans/${p.id}`, p);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  }
});
afterAll(async () => {
  await h?.close();
});

describe('results from other tools', () => {
  it('a Veeam SureBackup success through the plan\'s ingest token: a passed run of origin external, in the signed ledger; reported again, the same run', async () => {
    const { token } = await ingestToken(SUREBACKUP.id);
    expect(token).toMatch(/^efi_/);
    const r = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-390-success.syslog') }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({
      planId: SUREBACKUP.id, status: 'finished', verdict: 'passed', origin: 'external', trigger: 'external', triggeredBy: 'ingest:VBR01',
      externalId: 'veeam:9f1c2e7a-5b1d-4c3e-8a0f-2d6b7e9c1a44', finishedAt: '2026-12-06T21:41:07.512Z',
      restore: { tool: 'Veeam SureBackup', format: 'veeam-syslog', message: "SureBackup job 'SureBackup Bauamt' finished with Success." },
    });
    expect(codes(r.body)).toEqual(['EXTERNAL_PASSED']);
    // the record is signed and verifies; the raw message is an attachment hashed into it
    const ev = await h.request('GET', `/api/v1/runs/${r.body.id}/evidence`);
    expect(ev.status).toBe(200);
    expect(ev.body.verified).toMatchObject({ hash: true, signature: true });
    expect(ev.body.envelope.payload.run).toMatchObject({ id: r.body.id, origin: 'external', verdict: 'passed' });
    expect(ev.body.attachments.map((a: { name: string }) => a.name)).toEqual(['veeam-syslog.txt']);
    // the same event again (Veeam resends, a script retries): recorded once
    const again = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-390-success.syslog') }, token);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(r.body.id);
    expect((await runsOf(SUREBACKUP.id)).filter((x) => x.id === r.body.id)).toHaveLength(1);
    expect((await h.request('GET', '/api/v1/evidence/verify')).body).toMatchObject({ ok: true });
    // the run page and the protocol PDF show it as what it is: reported, no sandbox, the tool's words
    const planPage = await h.request('GET', `/plans/${SUREBACKUP.id}`);
    expect(planPage.status).toBe(200);
    expect(planPage.body).toContain('Veeam SureBackup (Veeam-Job: SureBackup Bauamt)');
    const page = await h.request('GET', `/runs/${r.body.id}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('gemeldet von einem anderen Werkzeug');
    expect(page.body).toContain("SureBackup job &#39;SureBackup Bauamt&#39; finished with Success.");
    const pdf = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${r.body.id}/protocol.pdf`, headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('a warning and a failure fail (and raise the failure alert); another job\'s event and a non-result event are errors, never passes', async () => {
    const { token } = await ingestToken(SUREBACKUP.id, 'VBR01 second');
    const warn = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-390-warning.syslog') }, token);
    expect(warn.body).toMatchObject({ verdict: 'failed', origin: 'external' });
    expect(codes(warn.body)).toEqual(['EXTERNAL_FAILED']);
    const failed = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-390-failed.syslog') }, token);
    expect(failed.body.verdict).toBe('failed');
    expect(failed.body.findings[0].message).toContain("VM 'db-kaemmerei' failed to boot");
    const other = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-390-other-job.syslog') }, token);
    expect(other.status).toBe(201);
    expect(other.body.verdict).toBe('error');
    expect(codes(other.body)).toEqual(['EXTERNAL_UNMAPPED']);
    expect(other.body.findings[0].message).toContain("'SureBackup Standesamt'");
    const notResult = await report(SUREBACKUP.id, { format: 'veeam-syslog', message: sample('veeam-110-backup-started.syslog') }, token);
    expect(notResult.body.verdict).toBe('error');
    expect(codes(notResult.body)).toEqual(['EXTERNAL_UNREADABLE']);
    // the failure alert of a failed external test goes into the outbox like any failed run's
    const queued = await h.c.db.selectFrom('notifications').select(['event', 'recipient', 'run_id']).where('run_id', '=', failed.body.id).execute();
    expect(queued.length).toBeGreaterThan(0);
    expect(queued[0]).toMatchObject({ recipient: 'mail:it@kommune.example' });
    // the plan's status counts external runs: the newest decisive one failed
    const plan = await h.request('GET', `/api/v1/plans/${SUREBACKUP.id}`);
    expect(plan.body.status).toBe('failing');
  });

  it('the ingest token opens nothing else: a wrong or revoked token is 401 and records nothing; another plan is 404; reads and triggers are 401', async () => {
    const { id, token } = await ingestToken(SUREBACKUP.id, 'VBR01 to revoke');
    const before = (await runsOf(SUREBACKUP.id)).length;
    const body = { format: 'veeam-syslog', message: sample('veeam-390-success.syslog').replace('9f1c2e7a', 'aaaaaaaa') };
    expect((await report(SUREBACKUP.id, body, `${token.slice(0, -2)}xx`)).status).toBe(401);
    expect((await report(SUREBACKUP.id, body, 'efi_not-a-token')).status).toBe(401);
    expect((await report(REPO.id, { status: 'passed' }, token)).status).toBe(404);
    expect((await h.request('GET', `/api/v1/plans/${SUREBACKUP.id}`, undefined, { authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await h.request('GET', '/api/v1/runs', undefined, { authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await h.request('GET', `/api/v1/plans/${SUREBACKUP.id}/ingest-tokens`, undefined, { authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await h.request('POST', `/api/v1/plans/${SUREBACKUP.id}/ingest-tokens`, { name: 'more' }, { authorization: `Bearer ${token}` })).status).toBe(401);
    const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/plans/${SUREBACKUP.id}/ingest-tokens/${id}`, headers: { authorization: `Bearer ${(h.config.auth.bootstrapToken)!}` } });
    expect(del.statusCode).toBe(204);
    expect((await report(SUREBACKUP.id, body, token)).status).toBe(401);
    expect((await runsOf(SUREBACKUP.id)).length).toBe(before);
    // listed without their values, revoked ones with the time
    const list = await h.request('GET', `/api/v1/plans/${SUREBACKUP.id}/ingest-tokens`);
    expect(JSON.stringify(list.body)).not.toContain('efi_');
    expect(list.body.items.find((t: { id: string }) => t.id === id).revokedAt).not.toBeNull();
  });

  it('restic and borg check output, an AWS validation and the plain shape; RTO and RPO are judged as for ernstfall\'s own runs', async () => {
    const ok = await report(REPO.id, { format: 'restic-check', output: sample('restic-check-ok.txt'), exitCode: 0 });
    expect(ok.body).toMatchObject({ verdict: 'passed', origin: 'external', triggeredBy: 'bootstrap-token' });
    const bad = await report(REPO.id, { format: 'restic-check', output: sample('restic-check-damaged.txt'), exitCode: 1 });
    expect(bad.body.verdict).toBe('failed');
    const borg = await report(REPO.id, { format: 'borg-check', output: sample('borg-check-wrong-passphrase.txt'), exitCode: 2 });
    expect(borg.body.verdict).toBe('failed');
    const aws = await report(REPO.id, { format: 'aws-restore-validation', validation: JSON.parse(sample('aws-validation-timed-out.json')) });
    expect(aws.body).toMatchObject({ verdict: 'failed', externalId: 'aws:5A1B2C3D-0000-4E5F-8A9B-ABCDEF012347' });
    // 2 h of validation against an 8 h RTO: met
    expect(aws.body.rto).toMatchObject({ measuredSeconds: 7200, met: true });
    const now = NOW.getTime();
    const plain = await report(REPO.id, {
      status: 'passed', startedAt: new Date(now - 9 * 3600_000).toISOString(), finishedAt: new Date(now - 60_000).toISOString(),
      backupCreatedAt: new Date(now - 40 * 3600_000).toISOString(), message: 'restore by hand, 12 files compared',
      attachments: [{ name: 'protokoll.txt', contentBase64: Buffer.from('Protokoll: alles da').toString('base64') }],
    });
    expect(plain.status, JSON.stringify(plain.body)).toBe(201);
    // a pass that took 9 h, of a backup 31 h old when the test began: both targets missed, so the run fails
    expect(plain.body.verdict).toBe('failed');
    expect(codes(plain.body).sort()).toEqual(['EXTERNAL_PASSED', 'RPO_EXCEEDED', 'RTO_EXCEEDED']);
    const ev = await h.request('GET', `/api/v1/runs/${plain.body.id}/evidence`);
    expect(ev.body.attachments.map((a: { name: string }) => a.name)).toEqual(['protokoll.txt']);
  });

  it('bad input is 400 with details and records nothing; results are only for external plans, and an external plan is never run by ernstfall', async () => {
    const before = (await runsOf(REPO.id)).length;
    const noStatus = await report(REPO.id, { message: 'hm' });
    expect(noStatus.status).toBe(400);
    expect(JSON.stringify(noStatus.body)).toContain('status');
    const backwards = await report(REPO.id, { status: 'passed', startedAt: '2026-12-06T10:00:00Z', finishedAt: '2026-12-06T09:00:00Z' });
    expect(backwards.status).toBe(400);
    expect(JSON.stringify(backwards.body)).toContain('startedAt is after finishedAt');
    const future = await report(REPO.id, { status: 'passed', finishedAt: new Date(NOW.getTime() + 3600_000).toISOString() });
    expect(future.status).toBe(400);
    expect((await report(REPO.id, { status: 'passed', verdict: 'passed' })).status).toBe(400);
    expect((await report(REPO.id, { status: 'maybe' })).status).toBe(400);
    expect((await report(REPO.id, { format: 'restic-check' })).status).toBe(400);
    expect((await runsOf(REPO.id)).length).toBe(before);
    expect((await report('no-such-plan', { status: 'passed' })).status).toBe(404);
    const trig = await h.request('POST', `/api/v1/plans/${REPO.id}/runs`);
    expect(trig.status, JSON.stringify(trig.body)).toBe(409);
    // a plan ernstfall restores itself takes no reports
    await h.putPlan({ id: 'pg-own', title: 'x', targets: { rto: '1h', rpo: '1d' }, source: { type: 'file', path: join(h.backupRoot, 'x.dump') }, restore: { driver: 'postgres', database: 'app' } });
    const own = await report('pg-own', { status: 'passed' });
    expect(own.status, JSON.stringify(own.body)).toBe(409);
    expect((await h.request('POST', '/api/v1/plans/pg-own/ingest-tokens', { name: 'VBR01' })).status).toBe(409);
  });

  it('the audit report counts the reported tests and names the tool', async () => {
    const r = await h.request('GET', '/api/v1/reports/audit?from=2026-12-01&to=2026-12-31&format=json');
    expect(r.status).toBe(200);
    const row = r.body.systems.find((x: { planId: string }) => x.planId === SUREBACKUP.id);
    expect(row).toMatchObject({ kind: 'external', kindLabel: 'gemeldet von Veeam SureBackup', passed: 1, failed: 2, errors: 2 });
  });

  it('plans: an external plan has no source, restore, sandbox or checks; external belongs to it alone', async () => {
    const both = await h.request('PUT', '/api/v1/plans/ext-bad', { ...REPO, id: 'ext-bad', source: { type: 'file', path: '/x' }, checks: [] });
    expect(both.status).toBe(400);
    expect(JSON.stringify(both.body)).toContain('an external plan has no \\"source\\"');
    const missing = await h.request('PUT', '/api/v1/plans/ext-bad', { id: 'ext-bad', title: 'x', kind: 'external', targets: { rto: '1h', rpo: '1d' } });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body)).toContain('external');
    const stray = await h.request('PUT', '/api/v1/plans/pg-bad', { id: 'pg-bad', title: 'x', targets: { rto: '1h', rpo: '1d' }, source: { type: 'file', path: join(h.backupRoot, 'x.dump') }, restore: { driver: 'postgres', database: 'app' }, external: { tool: 'x' } });
    expect(stray.status).toBe(400);
    expect(JSON.stringify(stray.body)).toContain('kind: external');
  });
});

describe('the syslog listener for Veeam', () => {
  /** Sends the messages over one TCP connection, the first octet-counted (RFC 6587), the rest ended by a line feed. */
  async function send(port: number, messages: string[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        messages.forEach((m, i) => sock.write(i === 0 ? `${Buffer.byteLength(m)} ${m}` : `${m}\n`));
        sock.end();
      });
      sock.on('close', () => resolve());
      sock.on('error', reject);
    });
  }

  it('records event 390 for the plan that names the job, once per session; other events, other jobs and unmapped senders record nothing', async () => {
    const plan = { ...SUREBACKUP, id: 'surebackup-syslog', external: { tool: 'Veeam SureBackup', veeamJob: 'SureBackup Standesamt' } };
    expect((await h.request('PUT', `/api/v1/plans/${plan.id}`, plan)).status).toBeLessThan(300);
    const runsBauamt = (await runsOf(SUREBACKUP.id)).length;
    const listener = new VeeamSyslogListener(h.c.db, h.c.external, { host: '127.0.0.1', port: 0, sources: new Map([['127.0.0.1', 'default']]) }, createLogger('silent'));
    const port = await listener.start();
    try {
      const other = sample('veeam-390-other-job.syslog').trim(); // JobName "SureBackup Standesamt": this plan's
      const nobodys = sample('veeam-390-success.syslog').replace(/SureBackup Bauamt/g, 'SureBackup Nirgendwo').replace('9f1c2e7a', '12345678').trim();
      // the Bauamt event belongs to the first test's plan and was recorded there already: the same run, nothing new
      await send(port, [other, sample('veeam-110-backup-started.syslog').trim(), nobodys, sample('veeam-390-success.syslog').trim(), other]);
      const deadline = Date.now() + 10_000;
      while (listener.stats.received < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await listener.close();
      expect(listener.stats).toMatchObject({ received: 5, recorded: 1, ignored: 1, unmapped: 1 });
      expect((await runsOf(SUREBACKUP.id)).length).toBe(runsBauamt);
      const runs = await runsOf(plan.id);
      expect(runs).toHaveLength(1);
      const run = (await h.request('GET', `/api/v1/runs/${runs[0]!.id}`)).body;
      expect(run).toMatchObject({ verdict: 'passed', origin: 'external', triggeredBy: 'syslog:127.0.0.1', externalId: 'veeam:77aa01b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b' });
    } finally {
      await listener.close();
    }
    // a sender no tenant is mapped to is turned away before it can say anything
    const strict = new VeeamSyslogListener(h.c.db, h.c.external, { host: '127.0.0.1', port: 0, sources: new Map([['10.9.9.9', 'default']]) }, createLogger('silent'));
    const p2 = await strict.start();
    try {
      await send(p2, [sample('veeam-390-other-job.syslog').replace('77aa01b2', '88bb01b2').trim()]);
      await new Promise((r) => setTimeout(r, 200));
      expect(strict.stats).toMatchObject({ refused: 1, received: 0 });
      expect(await runsOf(plan.id)).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });
});
