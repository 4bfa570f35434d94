import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startHarness, type Harness } from '../helpers/harness.js';
import { MAX_UPLOAD_BYTES } from '../../services/external/manual.service.js';

/**
 * Issue #12, manual restore tests: a plan with kind: manual and steps; a
 * person starts it, records each step (the server's clock stamps it) and
 * completes it; the verdict, the RTO to the service-restoring step and the
 * signed record follow the rules of every run.
 */
let h: Harness;
let now = new Date('2026-12-07T08:00:00Z');
const clock = () => now;
const advance = (minutes: number) => { now = new Date(now.getTime() + minutes * 60_000); };

const PLAN = {
  id: 'fachverfahren-gewerbe', title: 'Gewerbeamt – Wiederanlauf nach Herstellerverfahren', kind: 'manual',
  targets: { rto: '4h', rpo: '26h' }, cadence: { requiredEvery: '365d' },
  steps: [
    { title: 'VM aus der Sicherung in das Testnetz zurückspielen', expected: 'VM startet' },
    { title: 'Datenbankdienst starten', instructions: 'systemctl start gewerbe-db', expected: 'Dienst läuft' },
    { title: 'Fachverfahren anmelden und Akte 2026/4711 öffnen', expected: 'Akte vollständig', restoresService: true, evidenceRequired: true },
    { title: 'Testumgebung zurückbauen' },
  ],
};

beforeAll(async () => {
  h = await startHarness({ worker: false, clock });
  const r = await h.request('PUT', `/api/v1/plans/${PLAN.id}`, PLAN);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
});
afterAll(async () => {
  await h?.close();
});

const step = (runId: string, index: number, body: unknown) => h.request('POST', `/api/v1/runs/${runId}/steps/${index}`, body);
/** A screenshot's stand-in: the PNG signature and some bytes. */
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('Akte 2026/4711 geöffnet')]);
const attach = (runId: string, index: number, name = 'akte.png', content = PNG) =>
  h.request('POST', `/api/v1/runs/${runId}/steps/${index}/attachments`, { name, mediaType: 'image/png', contentBase64: content.toString('base64') });
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

describe('manual restore tests', () => {
  it('every step done: passed, the RTO measured from the start to the step that brought the service back, in the signed ledger', async () => {
    const start = await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`);
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    expect(start.body).toMatchObject({ status: 'running', origin: 'manual', trigger: 'manual', startedAt: '2026-12-07T08:00:00.000Z' });
    expect(start.body.checks.map((c: { status: string }) => c.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
    const id = start.body.id as string;
    // a second start while one is in progress
    expect((await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).status).toBe(409);
    advance(40);
    expect((await step(id, 0, { result: 'ok' })).status).toBe(200);
    advance(15);
    expect((await step(id, 1, { result: 'ok', note: 'nach 2 min oben' })).status).toBe(200);
    advance(50);
    expect((await attach(id, 2)).status).toBe(201);
    const s2 = await step(id, 2, { result: 'ok', note: 'Akte vollständig, 14 Dokumente' });
    expect(s2.body.checks[2]).toMatchObject({ status: 'passed', actual: 'erledigt', message: 'Akte vollständig, 14 Dokumente', step: { at: '2026-12-07T09:45:00.000Z', by: 'bootstrap-token', restoresService: true } });
    advance(20);
    await step(id, 3, { result: 'ok' });
    const done = await h.request('POST', `/api/v1/runs/${id}/complete`, { note: 'Übung mit Gewerbeamt' });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ status: 'finished', verdict: 'passed', finishedAt: '2026-12-07T10:05:00.000Z', rto: { measuredSeconds: 105 * 60, met: true } });
    expect(done.body.restore).toMatchObject({ steps: 4, done: 4, note: 'Übung mit Gewerbeamt' });
    const ev = await h.request('GET', `/api/v1/runs/${id}/evidence`);
    expect(ev.body.verified).toMatchObject({ hash: true, signature: true });
    expect(ev.body.envelope.payload.run.checks).toHaveLength(4);
    // finished is finished
    expect((await step(id, 0, { result: 'deviation', note: 'zu spät' })).status).toBe(409);
    expect((await h.request('POST', `/api/v1/runs/${id}/complete`)).status).toBe(409);
    // the person who ran it cannot sign it off (four-eyes, as for every run)
    const review = await h.request('POST', `/api/v1/runs/${id}/reviews`, { decision: 'approved', comment: 'selbst' });
    expect(review.status).toBe(403);
  });

  it('a deviation fails the test with its note; a step not done keeps it from passing; the RTO over the target fails it', async () => {
    const a = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    await step(a, 0, { result: 'ok' });
    expect((await step(a, 1, { result: 'deviation' })).status).toBe(400); // a deviation needs its note
    await step(a, 1, { result: 'deviation', note: 'Dienst startet erst nach Neuinstallation der Lizenz' });
    await attach(a, 2);
    await step(a, 2, { result: 'ok' });
    await step(a, 3, { result: 'ok' });
    const failed = (await h.request('POST', `/api/v1/runs/${a}/complete`)).body;
    expect(failed.verdict).toBe('failed');
    expect(codes(failed)).toEqual(['MANUAL_DEVIATION']);
    expect(failed.findings[0].message).toContain('Neuinstallation der Lizenz');

    const b = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    await step(b, 0, { result: 'ok' });
    await step(b, 1, { result: 'not-done', note: 'Techniker nicht da' });
    const open = (await h.request('POST', `/api/v1/runs/${b}/complete`)).body;
    expect(open.verdict).toBe('error');
    expect(codes(open)).toEqual(['MANUAL_STEPS_NOT_DONE']);
    expect(open.rto.measuredSeconds).toBeNull();

    const c = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    await step(c, 0, { result: 'ok' });
    await step(c, 1, { result: 'ok' });
    advance(5 * 60);
    await attach(c, 2);
    await step(c, 2, { result: 'ok' });
    await step(c, 3, { result: 'ok' });
    const slow = (await h.request('POST', `/api/v1/runs/${c}/complete`)).body;
    expect(slow.verdict).toBe('failed');
    expect(codes(slow)).toEqual(['RTO_EXCEEDED']);
  });

  it('cancelled while in progress: cancelled with the steps so far; bad input is 400, unknown runs 404', async () => {
    const id = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    await step(id, 0, { result: 'ok' });
    expect((await step(id, 9, { result: 'ok' })).status).toBe(400);
    expect((await step(id, 0, { result: 'maybe' })).status).toBe(400);
    expect((await step('00000000-0000-4000-8000-00000000abcd', 0, { result: 'ok' })).status).toBe(404);
    const cancel = await h.request('POST', `/api/v1/runs/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const run = (await h.request('GET', `/api/v1/runs/${id}`)).body;
    expect(run).toMatchObject({ status: 'finished', verdict: 'cancelled' });
    expect(run.checks[0]).toMatchObject({ status: 'passed' });
    // ernstfall never starts it by itself, and the plan takes no sandbox keys
    expect((await h.request('POST', `/api/v1/plans/${PLAN.id}/runs`)).status).toBe(409);
    const bad = await h.request('PUT', '/api/v1/plans/manual-bad', { ...PLAN, id: 'manual-bad', restore: { driver: 'files' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('a manual plan has no \\"restore\\"');
    const twice = await h.request('PUT', '/api/v1/plans/manual-bad', { ...PLAN, id: 'manual-bad', steps: [{ title: 'a', restoresService: true }, { title: 'b', restoresService: true }] });
    expect(twice.status).toBe(400);
  });

  it('the plan page lists the steps and marks the one that ends the RTO', async () => {
    const page = await h.request('GET', `/plans/${PLAN.id}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Schritte (manueller Test)');
    expect(page.body).toContain('Fachverfahren anmelden und Akte 2026/4711 öffnen');
    expect(page.body).toContain('hier ist der Dienst wieder da (RTO)');
  });

  it('the audit report counts manual tests and says what kind they are', async () => {
    const r = await h.request('GET', '/api/v1/reports/audit?from=2026-12-01&to=2026-12-31&format=json');
    expect(r.status).toBe(200);
    const row = r.body.systems.find((x: { planId: string }) => x.planId === PLAN.id);
    expect(row).toMatchObject({ kind: 'manual', kindLabel: 'manuell, 4 Schritte', runs: 5, passed: 1, failed: 2, errors: 1 });
    const csv = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2026-12-01&to=2026-12-31&format=csv', headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    // German Excel's CSV: semicolons, CRLF
    expect(csv.body.split('\r\n').find((l) => l.startsWith(`${PLAN.id};`))).toMatch(/;manual$/);
  });

  it('evidence: files handed in per step are kept with the run, hashed into its signed record at completion, and downloadable', async () => {
    const id = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    const first = await attach(id, 2, '../Bildschirm foto.png');
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    // the name is made safe (no path, no spaces) and names the step; a second file of that name gets a number
    expect(first.body).toEqual({ name: 'step-03-Bildschirm_foto.png', sha256: createHash('sha256').update(PNG).digest('hex'), sizeBytes: PNG.length, mediaType: 'image/png' });
    const log = Buffer.from('gewerbe-db: started\n');
    const second = await attach(id, 2, 'Bildschirm foto.png', log);
    expect(second.body.name).toBe('step-03-Bildschirm_foto-2.png');
    // an empty file, one over the limit, a step the test does not have: 400, nothing kept
    expect((await attach(id, 2, 'leer.txt', Buffer.alloc(0))).status).toBe(400);
    expect((await attach(id, 9)).status).toBe(400);
    const big = await attach(id, 1, 'gross.bin', Buffer.alloc(MAX_UPLOAD_BYTES + 1, 1));
    expect(big.status).toBe(400);
    expect(JSON.stringify(big.body)).toContain('at most 10 MiB');
    // while the test runs: downloadable, always as a download, never rendered
    const dl = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${id}/attachments/step-03-Bildschirm_foto.png`, headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload.equals(PNG)).toBe(true);
    expect(dl.headers['content-disposition']).toMatch(/^attachment; filename="step-03-Bildschirm_foto.png"/);
    expect(dl.headers['content-security-policy']).toContain('sandbox');
    expect(dl.headers['x-content-type-options']).toBe('nosniff');
    for (const i of [0, 1, 2, 3]) await step(id, i, { result: 'ok' });
    const run = (await h.request('GET', `/api/v1/runs/${id}`)).body;
    expect(run.checks[2].step.attachments.map((a: { name: string }) => a.name)).toEqual(['step-03-Bildschirm_foto.png', 'step-03-Bildschirm_foto-2.png']);
    const done = (await h.request('POST', `/api/v1/runs/${id}/complete`)).body;
    expect(done.verdict, JSON.stringify(done.findings)).toBe('passed');
    // in the signed record: each file's name, hash and size, and the bytes as the record's attachments
    const ev = (await h.request('GET', `/api/v1/runs/${id}/evidence`)).body;
    expect(ev.verified).toMatchObject({ hash: true, signature: true });
    // kept as long as the record (ten years), not pruned with tool output after its shorter retention
    const recordRetain = ev.envelope.retainUntil as string;
    expect(ev.envelope.payload.attachments).toEqual([
      { name: 'step-03-Bildschirm_foto-2.png', sha256: createHash('sha256').update(log).digest('hex'), sizeBytes: log.length, retainUntil: recordRetain },
      { name: 'step-03-Bildschirm_foto.png', sha256: first.body.sha256, sizeBytes: PNG.length, retainUntil: recordRetain },
    ]);
    const kept = await h.tdb.db.selectFrom('run_uploads').select(['name', 'content']).where('run_id', '=', id).execute();
    expect(kept.map((k) => k.content)).toEqual([null, null]);
    const after = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${id}/attachments/step-03-Bildschirm_foto-2.png`, headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(after.statusCode).toBe(200);
    expect(after.rawPayload.equals(log)).toBe(true);
    expect((await h.request('GET', `/api/v1/runs/${id}/attachments/nope.png`)).status).toBe(404);
    // a finished test takes no more files
    expect((await attach(id, 2)).status).toBe(409);
  });

  it('a step that needs evidence, done without a file: not proven, never passed', async () => {
    const id = (await h.request('POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    for (const i of [0, 1, 2, 3]) await step(id, i, { result: 'ok' });
    const run = (await h.request('POST', `/api/v1/runs/${id}/complete`)).body;
    expect(run.verdict).toBe('error');
    expect(codes(run)).toEqual(['MANUAL_EVIDENCE_MISSING']);
    expect(run.findings[0].message).toContain('3. Fachverfahren anmelden');
  });

  it('four eyes: whoever recorded a step or completed the test cannot sign it off; a third person can', async () => {
    const tokens: Record<string, string> = {};
    for (const [name, role] of [['Olga Operator', 'operator'], ['Adam Admin', 'admin'], ['Rita Prüferin', 'reviewer']] as const) {
      tokens[name] = (await h.request('POST', '/api/v1/tokens', { name, role })).body.token as string;
    }
    const as = (who: string, method: 'POST' | 'GET', url: string, body?: unknown) => h.request(method, url, body, { authorization: `Bearer ${tokens[who]!}` });
    const id = (await as('Olga Operator', 'POST', `/api/v1/plans/${PLAN.id}/manual-runs`)).body.id as string;
    await as('Olga Operator', 'POST', `/api/v1/runs/${id}/steps/2/attachments`, { name: 'akte.png', contentBase64: PNG.toString('base64') });
    for (const i of [0, 1, 3]) await as('Olga Operator', 'POST', `/api/v1/runs/${id}/steps/${i}`, { result: 'ok' });
    await as('Adam Admin', 'POST', `/api/v1/runs/${id}/steps/2`, { result: 'ok', note: 'Akte geprüft' });
    expect((await as('Olga Operator', 'POST', `/api/v1/runs/${id}/complete`)).body.verdict).toBe('passed');
    const adam = await as('Adam Admin', 'POST', `/api/v1/runs/${id}/reviews`, { decision: 'approved', comment: '' });
    expect(adam.status).toBe(403);
    expect(adam.body.message).toContain('four-eyes');
    const rita = await as('Rita Prüferin', 'POST', `/api/v1/runs/${id}/reviews`, { decision: 'approved', comment: 'Protokoll geprüft' });
    expect(rita.status, JSON.stringify(rita.body)).toBe(201);
  });

  it('a file is read only where a form takes one: elsewhere, signed in or not, a multipart upload is refused unread', async () => {
    const boundary = 'ef-test-boundary';
    const body = [`--${boundary}`, 'Content-Disposition: form-data; name="email"', '', 'a@b.de', `--${boundary}`,
      'Content-Disposition: form-data; name="file"; filename="gross.bin"', 'Content-Type: application/octet-stream', '', 'x'.repeat(4096), `--${boundary}--`, ''].join('\r\n');
    const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    // a public page (no session): never buffered
    expect((await h.app.inject({ method: 'POST', url: '/login', payload: body, headers })).statusCode).toBe(403);
    // an API route, signed in: not a route that takes a file
    const api = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: body, headers: { ...headers, authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(api.statusCode).toBe(403);
  });
});
