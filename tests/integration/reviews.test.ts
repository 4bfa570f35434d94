import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';

let h: Harness;
const tok: Record<string, string> = {};
const as = (who: string, method: 'GET' | 'PUT' | 'POST' | 'PATCH', url: string, body?: unknown) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${tok[who]}`, ...(body ? { 'content-type': 'application/json' } : {}) }, payload: body ? JSON.stringify(body) : undefined })
    .then((r) => ({ status: r.statusCode, body: r.headers['content-type']?.toString().includes('json') ? JSON.parse(r.body) : r.rawPayload }));

function pdfText(buf: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'ef-pdf-'));
  writeFileSync(join(dir, 'a.pdf'), buf);
  const text = execFileSync('pdftotext', ['-layout', join(dir, 'a.pdf'), '-']).toString();
  rmSync(dir, { recursive: true, force: true });
  return text;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  for (const [name, role] of [['Alice Admin', 'admin'], ['Bob Prüfer', 'reviewer'], ['Carol Auditorin', 'auditor'], ['Otto Operator', 'operator']] as const) {
    const res = await h.request('POST', '/api/v1/tokens', { name, role });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(/^ef_/);
    tok[name] = res.body.token;
  }
  await h.putPlan(pgPlan('review-plan', 'x.dump'));
  await h.putPlan(pgPlan('other-plan', 'y.dump'));
});
afterAll(async () => {
  await h?.close();
});

describe('roles', () => {
  it('lets each role do its part only (403 otherwise), stores tokens only hashed', async () => {
    expect((await as('Otto Operator', 'PUT', '/api/v1/plans/otto-plan', pgPlan('otto-plan', 'o.dump'))).status).toBe(201);
    expect((await as('Bob Prüfer', 'PUT', '/api/v1/plans/bob-plan', pgPlan('bob-plan', 'o.dump'))).status).toBe(403);
    expect((await as('Carol Auditorin', 'POST', '/api/v1/plans/review-plan/runs')).status).toBe(403);
    expect((await as('Carol Auditorin', 'GET', '/api/v1/runs')).status).toBe(200);
    expect((await as('Otto Operator', 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' })).status).toBe(403);
    const stored = await h.tdb.db.selectFrom('api_tokens').select('token_hash').execute();
    expect(JSON.stringify(stored)).not.toContain(tok['Otto Operator']);
  });

  it('a revoked token is refused at once (401)', async () => {
    const created = await h.request('POST', '/api/v1/tokens', { name: 'Temp', role: 'auditor' });
    const t = created.body.token;
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: `Bearer ${t}` } })).statusCode).toBe(200);
    expect((await h.request('POST', `/api/v1/tokens/${created.body.id}/revoke`)).status).toBe(204);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: `Bearer ${t}` } })).statusCode).toBe(401);
  });
});

describe('four-eyes review and follow-up measures', () => {
  let runId: string;
  let measureId: string;

  it('refuses a sign-off by whoever triggered the run', async () => {
    runId = await seedRun(h, { planId: 'review-plan', verdict: 'failed', finishedAt: new Date(Date.now() - 3600_000), triggeredBy: 'Alice Admin' });
    const res = await as('Alice Admin', 'POST', `/api/v1/runs/${runId}/reviews`, { decision: 'approved' });
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/four-eyes/);
    expect(await h.tdb.db.selectFrom('reviews').select('id').execute()).toHaveLength(0);
  });

  it('refuses a reviewer role it lacks, and invalid reviews with details', async () => {
    expect((await as('Carol Auditorin', 'POST', `/api/v1/runs/${runId}/reviews`, { decision: 'approved' })).status).toBe(403);
    const bad = await as('Bob Prüfer', 'POST', `/api/v1/runs/${runId}/reviews`, { decision: 'approved-with-deviations', comment: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: { path: string }) => d.path)).toEqual(expect.arrayContaining(['deviations', 'comment']));
  });

  it('a second person signs off with deviations; they become measures; all of it is in the ledger', async () => {
    const res = await as('Bob Prüfer', 'POST', `/api/v1/runs/${runId}/reviews`, {
      decision: 'approved-with-deviations', comment: 'Prüfung der Meldedaten schlug fehl; Ursache klären.',
      deviations: [{ title: 'Backup-Job der EWO-Datenbank prüfen', owner: 'Otto Operator', dueDate: '2026-12-15' }],
    });
    expect(res.status).toBe(201);
    expect(res.body.measureIds).toHaveLength(1);
    measureId = res.body.measureIds[0];
    const measures = (await as('Carol Auditorin', 'GET', '/api/v1/measures?status=open')).body.items;
    expect(measures).toEqual([expect.objectContaining({ id: measureId, owner: 'Otto Operator', dueDate: '2026-12-15', status: 'open', runId })]);
    const kinds = (await h.tdb.db.selectFrom('ledger_records').select(['kind', 'subject_id']).orderBy('seq').execute()).map((r) => r.kind);
    expect(kinds.slice(-2)).toEqual(['review', 'measure']);
    expect((await h.request('GET', '/api/v1/evidence/verify')).body.ok).toBe(true);
  });

  it('closes a measure only with a later passed re-test of the same plan', async () => {
    const failedAgain = await seedRun(h, { planId: 'review-plan', verdict: 'failed', finishedAt: new Date(Date.now() + 1000) });
    const otherPlan = await seedRun(h, { planId: 'other-plan', verdict: 'passed', finishedAt: new Date(Date.now() + 2000) });
    const before = await seedRun(h, { planId: 'review-plan', verdict: 'passed', finishedAt: new Date(Date.now() - 86_400_000) });
    for (const r of [failedAgain, otherPlan, before]) {
      expect((await as('Otto Operator', 'POST', `/api/v1/measures/${measureId}/close`, { runId: r })).status).toBe(409);
    }
    const retest = await seedRun(h, { planId: 'review-plan', verdict: 'passed', finishedAt: new Date(Date.now() + 3000) });
    const closed = await as('Otto Operator', 'POST', `/api/v1/measures/${measureId}/close`, { runId: retest });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ status: 'done', closedByRunId: retest });
    expect((await as('Otto Operator', 'POST', `/api/v1/measures/${measureId}/close`, { runId: retest })).status).toBe(409);
    const last = await h.tdb.db.selectFrom('ledger_records').select(['kind', 'canonical']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(last.kind).toBe('measure');
    expect(JSON.parse(last.canonical).payload).toMatchObject({ action: 'closed', closedByRunId: retest, by: 'Otto Operator' });
  });

  it('prints the Wiederherstellungsprotokoll with the sign-off, the record hash and how to verify (de and en)', async () => {
    const pdf = await as('Carol Auditorin', 'GET', `/api/v1/runs/${runId}/protocol.pdf`);
    expect(pdf.status).toBe(200);
    const text = pdfText(pdf.body as Buffer);
    const squashed = text.replace(/\s+/g, '');
    const ev = (await h.request('GET', `/api/v1/runs/${runId}/evidence`)).body;
    expect(text).toContain('Wiederherstellungsprotokoll');
    expect(text).toContain('Bob Prüfer');
    expect(text).toContain('Backup-Job der EWO-Datenbank prüfen');
    expect(squashed).toContain(ev.record.hash);
    expect(text).toMatch(/openssl/);
    const en = pdfText((await as('Carol Auditorin', 'GET', `/api/v1/runs/${runId}/protocol.pdf?lang=en`)).body as Buffer);
    expect(en).toMatch(/Restore (test )?(protocol|report|record)/i);
  });
});
