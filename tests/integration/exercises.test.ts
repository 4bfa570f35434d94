import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/harness.js';

/**
 * Issue #12, exercises: a plan with kind: exercise (scenario, format, roles);
 * people start one with participants, record observations as they happen,
 * and complete it. A finding becomes a follow-up measure with an owner and a
 * due date, recorded with the run; a later passed exercise closes it.
 */
let h: Harness;
let now = new Date('2026-12-08T08:00:00Z');
const clock = () => now;
const advance = (minutes: number) => { now = new Date(now.getTime() + minutes * 60_000); };

const PLAN = {
  id: 'notfalluebung-rz', title: 'Notfallübung: Ausfall des Rechenzentrums Rathaus', kind: 'exercise',
  targets: { rto: '8h', rpo: '26h' }, cadence: { requiredEvery: '365d' },
  exercise: {
    scenario: 'Montag 7:30: Ransomware hat den Fileserver und die Domänencontroller verschlüsselt. Das Bürgerbüro öffnet um 8:00.',
    format: 'tabletop', roles: ['Krisenstab', 'IT-Leitung', 'Bürgerbüro'],
  },
};
const PEOPLE = [
  { name: 'Frau Berger', role: 'Krisenstab' }, { name: 'Herr Yılmaz', role: 'IT-Leitung' }, { name: 'Frau Schulz', role: 'Bürgerbüro' },
];

beforeAll(async () => {
  h = await startHarness({ worker: false, clock });
  const r = await h.request('PUT', `/api/v1/plans/${PLAN.id}`, PLAN);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
});
afterAll(async () => {
  await h?.close();
});

const observe = (runId: string, body: unknown) => h.request('POST', `/api/v1/runs/${runId}/observations`, body);
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

describe('exercises', () => {
  it('refuses a plan without a scenario or with sandbox keys, naming the path', async () => {
    const noScenario = await h.request('PUT', '/api/v1/plans/uebung-bad', { ...PLAN, id: 'uebung-bad', exercise: { format: 'tabletop' } });
    expect(noScenario.status).toBe(400);
    expect(JSON.stringify(noScenario.body)).toContain('exercise.scenario');
    const format = await h.request('PUT', '/api/v1/plans/uebung-bad', { ...PLAN, id: 'uebung-bad', exercise: { ...PLAN.exercise, format: 'kaffeeklatsch' } });
    expect(format.status).toBe(400);
    expect(JSON.stringify(format.body)).toContain('exercise.format');
    const sandbox = await h.request('PUT', '/api/v1/plans/uebung-bad', { ...PLAN, id: 'uebung-bad', source: { type: 'file', path: 'x.dump' } });
    expect(sandbox.status).toBe(400);
    expect(JSON.stringify(sandbox.body)).toContain('an exercise has no \\"source\\"');
    // ernstfall never starts an exercise by itself
    expect((await h.request('POST', `/api/v1/plans/${PLAN.id}/runs`)).status).toBe(409);
  });

  it('a finding fails the exercise and becomes a measure with owner and due date; the RTO runs to the service\'s return', async () => {
    expect((await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: [] })).status).toBe(400);
    const start = await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: PEOPLE });
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    expect(start.body).toMatchObject({ status: 'running', origin: 'exercise', startedAt: '2026-12-08T08:00:00.000Z' });
    expect(start.body.restore.participants).toEqual(PEOPLE);
    const id = start.body.id as string;
    expect((await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: PEOPLE })).status).toBe(409);

    advance(20);
    expect((await observe(id, { kind: 'note', text: 'Krisenstab tritt zusammen, Meldekette funktioniert' })).status).toBe(200);
    advance(25);
    // a finding needs its measure; a note may not have one
    expect((await observe(id, { kind: 'finding', text: 'Notfallhandbuch liegt nur auf dem verschlüsselten Fileserver' })).status).toBe(400);
    expect((await observe(id, { kind: 'note', text: 'x', measure: { title: 't', owner: 'o', dueDate: '2027-01-31' } })).status).toBe(400);
    expect((await observe(id, { kind: 'finding', text: 'y', measure: { title: 't', owner: 'o', dueDate: '2027-02-30' } })).status).toBe(400);
    const f = await observe(id, {
      kind: 'finding', text: 'Notfallhandbuch liegt nur auf dem verschlüsselten Fileserver',
      measure: { title: 'Notfallhandbuch ausgedruckt im Tresor hinterlegen', owner: 'IT-Leitung', dueDate: '2027-01-31' },
    });
    expect(f.status, JSON.stringify(f.body)).toBe(200);
    expect(f.body.checks[1]).toMatchObject({ kind: 'observation', status: 'failed', observation: { kind: 'finding', at: '2026-12-08T08:45:00.000Z', by: 'bootstrap-token' } });
    advance(135);
    await observe(id, { kind: 'service-restored', text: 'Bürgerbüro arbeitet mit Ersatz-Laptops und dem Melderegister aus der Sicherung' });
    advance(30);
    const done = await h.request('POST', `/api/v1/runs/${id}/complete`, { note: 'Planbesprechung im Sitzungssaal' });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ status: 'finished', verdict: 'failed', rto: { measuredSeconds: 3 * 3600, met: true } });
    expect(codes(done.body)).toEqual(['EXERCISE_FINDING']);
    expect(done.body.findings[0].message).toContain('Notfallhandbuch ausgedruckt im Tresor hinterlegen (IT-Leitung, 2027-01-31)');
    expect(done.body.restore).toMatchObject({ observations: 3, note: 'Planbesprechung im Sitzungssaal', exercise: { format: 'tabletop' } });

    // the measure: open, on the plan, from this run, and in the ledger with the run
    const measures = (await h.request('GET', `/api/v1/measures?planId=${PLAN.id}`)).body.items;
    expect(measures).toHaveLength(1);
    expect(measures[0]).toMatchObject({ runId: id, title: 'Notfallhandbuch ausgedruckt im Tresor hinterlegen', owner: 'IT-Leitung', dueDate: '2027-01-31', status: 'open' });
    const records = await h.tdb.db.selectFrom('ledger_records').select(['kind', 'subject_id']).where('subject_id', 'in', [id, measures[0].id]).orderBy('seq').execute();
    expect(records.map((r) => r.kind)).toEqual(['run', 'measure']);
    expect((await h.request('GET', '/api/v1/evidence/verify')).body).toMatchObject({ ok: true });
    // the person who recorded it cannot witness it
    expect((await h.request('POST', `/api/v1/runs/${id}/reviews`, { decision: 'approved', comment: '' })).status).toBe(403);

    // a later exercise without findings passes and closes the measure
    advance(60 * 24 * 30);
    const again = (await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: PEOPLE })).body.id as string;
    await observe(again, { kind: 'note', text: 'Notfallhandbuch aus dem Tresor geholt, alle Telefonnummern aktuell' });
    const passed = (await h.request('POST', `/api/v1/runs/${again}/complete`)).body;
    expect(passed.verdict, JSON.stringify(passed.findings)).toBe('passed');
    expect(passed.rto.measuredSeconds).toBeNull();
    const closed = await h.request('POST', `/api/v1/measures/${measures[0].id}/close`, { runId: again });
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect(closed.body).toMatchObject({ status: 'done', closedByRunId: again });
  });

  it('four eyes: whoever recorded an observation cannot witness the exercise', async () => {
    const token = (await h.request('POST', '/api/v1/tokens', { name: 'Frau Schulz (Beobachterin)', role: 'admin' })).body.token as string;
    const id = (await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: PEOPLE })).body.id as string;
    const seen = await h.request('POST', `/api/v1/runs/${id}/observations`, { kind: 'note', text: 'Meldekette geprüft' }, { authorization: `Bearer ${token}` });
    expect(seen.status).toBe(200);
    expect((await h.request('POST', `/api/v1/runs/${id}/complete`)).body.verdict).toBe('passed');
    const review = await h.request('POST', `/api/v1/runs/${id}/reviews`, { decision: 'approved', comment: '' }, { authorization: `Bearer ${token}` });
    expect(review.status).toBe(403);
    expect(review.body.message).toContain('four-eyes');
  });

  it('no observation is not a documented exercise; a role nobody filled is named', async () => {
    const id = (await h.request('POST', `/api/v1/plans/${PLAN.id}/exercises`, { participants: [{ name: 'Herr Yılmaz', role: 'IT-Leitung' }] })).body.id as string;
    const run = (await h.request('POST', `/api/v1/runs/${id}/complete`)).body;
    expect(run.verdict).toBe('error');
    expect(codes(run).sort()).toEqual(['EXERCISE_NOT_DOCUMENTED', 'EXERCISE_ROLE_MISSING']);
    expect(run.findings.find((x: { code: string }) => x.code === 'EXERCISE_ROLE_MISSING').message).toContain('Krisenstab, Bürgerbüro');
    // an observation on a finished exercise, or on a run that is no exercise
    expect((await observe(id, { kind: 'note', text: 'zu spät' })).status).toBe(409);
    expect((await observe('00000000-0000-4000-8000-00000000abcd', { kind: 'note', text: 'x' })).status).toBe(404);
  });

  it('the audit report counts exercises and says what kind they are; the plan and run pages show them', async () => {
    const r = await h.request('GET', '/api/v1/reports/audit?from=2026-12-01&to=2027-01-31&format=json');
    const row = r.body.systems.find((x: { planId: string }) => x.planId === PLAN.id);
    expect(row).toMatchObject({ kind: 'exercise', kindLabel: 'Übung (Planbesprechung)', runs: 4, passed: 2, failed: 1, errors: 1 });
    const csv = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2026-12-01&to=2027-01-31&format=csv', headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(csv.body.split('\r\n').find((l) => l.startsWith(`${PLAN.id};`))).toMatch(/;exercise$/);
    const plan = await h.request('GET', `/plans/${PLAN.id}`);
    expect(plan.body).toContain('Ransomware hat den Fileserver');
    expect(plan.body).toContain('Übung beginnen');
    // held through the pages (form posts), as people at the table would
    const form = (url: string, fields: Record<string, string>) => h.app.inject({
      method: 'POST', url, payload: new URLSearchParams(fields).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${h.config.auth.bootstrapToken!}` },
    });
    const started = await form(`/plans/${PLAN.id}/exercise`, { participants: 'Frau Berger – Krisenstab\nHerr Yılmaz, IT-Leitung\nFrau Schulz - Bürgerbüro' });
    expect(started.statusCode).toBe(303);
    const runUrl = String(started.headers.location);
    const id = runUrl.split('/').at(-1)!;
    const bad = await form(`/runs/${id}/observations`, { kind: 'finding', text: 'USV hält nur 10 Minuten' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('obs-title-err');
    expect((await form(`/runs/${id}/observations`, { kind: 'finding', text: 'USV hält nur 10 Minuten', title: 'USV-Akkus tauschen', owner: 'Hausmeisterei', dueDate: '2027-03-31' })).statusCode).toBe(303);
    const open = await h.request('GET', runUrl);
    for (const t of ['Teilnehmende', 'Herr Yılmaz', 'IT-Leitung', 'USV hält nur 10 Minuten', 'USV-Akkus tauschen (Hausmeisterei, 2027-03-31)', 'Beobachtung festhalten']) expect(open.body, t).toContain(t);
    expect((await form(`/runs/${id}/complete`, { note: '' })).statusCode).toBe(303);
    const run = (await h.request('GET', `/api/v1/runs/${id}`)).body;
    expect(run.restore.participants).toEqual(PEOPLE);
    expect(run.verdict).toBe('failed');
    // the protocol: form, scenario, participants, the timeline and the measure
    const pdf = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${id}/protocol.pdf`, headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    expect(pdf.statusCode).toBe(200);
    const dir = mkdtempSync(join(tmpdir(), 'ef-exercise-'));
    writeFileSync(join(dir, 'p.pdf'), pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'p.pdf'), '-']).toString().replace(/\s+/g, '');
    rmSync(dir, { recursive: true, force: true });
    for (const t of ['Übung', 'Planbesprechung', 'Ransomware', 'FrauBerger–Krisenstab', 'Ablauf der Übung', 'Feststellung', 'USV-Akkus tauschen', 'EXERCISE_FINDING']) {
      expect(text, t).toContain(t.replace(/\s+/g, ''));
    }
  });
});
