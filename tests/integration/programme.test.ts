import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';

/**
 * Issue #12, the year's test programme: every plan of every kind — restored
 * by ernstfall, reported by another tool, carried out by people, an exercise —
 * with what was done in the year, its scheduled slots and its due dates (as
 * JSON, CSV, PDF and a page), and the calendar feed carrying every occurrence
 * in its horizon, exercises included. Business time is the harness's clock.
 */
let h: Harness;
const now = new Date('2027-06-15T10:00:00Z');
const auth = () => ({ authorization: `Bearer ${h.config.auth.bootstrapToken!}` });
const runIds: Record<string, string> = {};

async function put(plan: Record<string, unknown>, createdAt: string) {
  const r = await h.request('PUT', `/api/v1/plans/${plan.id as string}`, plan);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  await h.tdb.db.updateTable('plans').set({ created_at: new Date(createdAt) }).where('id', '=', plan.id as string).execute();
}

/** Mondays 02:00 Berlin strictly after `from` and before `to`, counted without the product's code. */
function mondays(from: Date, to: Date): number {
  let n = 0;
  for (let d = new Date(from); d < to; d = new Date(d.getTime() + 86_400_000)) if (d.getUTCDay() === 1) n++;
  return n;
}

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => now, env: { ERNSTFALL_CALENDAR_HORIZON: 'P1Y' } });
  const controls = ['BSI-CON.3.A15', 'ISO27001-A.8.13'];
  await put(pgPlan('ewo', 'ewo.dump', { title: 'Einwohnermeldewesen', cadence: { schedule: '0 2 * * 1', requiredEvery: 'P7D' }, controls }), '2027-01-01T00:00:00Z');
  await put({ id: 'veeam-vms', title: 'VMs (Veeam SureBackup)', kind: 'external', targets: { rto: '4h', rpo: '26h' }, cadence: { requiredEvery: 'P30D' }, external: { tool: 'Veeam SureBackup' }, controls }, '2027-01-01T00:00:00Z');
  await put({ id: 'gewerbe', title: 'Gewerbeamt – Wiederanlauf', kind: 'manual', targets: { rto: '8h', rpo: '26h' }, cadence: { requiredEvery: 'P180D' }, steps: [{ title: 'VM zurückspielen' }], controls }, '2027-01-01T00:00:00Z');
  await put({
    id: 'uebung', title: 'Notfallübung Rechenzentrum', kind: 'exercise', targets: { rto: '8h', rpo: '26h' }, cadence: { requiredEvery: 'P365D' }, controls: ['ISO22301-8.5'],
    exercise: { scenario: 'Ransomware im Rathaus', format: 'tabletop' },
  }, '2026-01-01T00:00:00Z');
  runIds.ewoPassed = await seedRun(h, { planId: 'ewo', verdict: 'passed', finishedAt: new Date('2027-03-01T01:05:00Z') });
  runIds.ewoFailed = await seedRun(h, { planId: 'ewo', verdict: 'failed', finishedAt: new Date('2027-05-03T01:05:00Z') });
  runIds.uebung = await seedRun(h, { planId: 'uebung', verdict: 'passed', finishedAt: new Date('2026-12-10T15:00:00Z') });
  runIds.gewerbeError = await seedRun(h, { planId: 'gewerbe', verdict: 'error', finishedAt: new Date('2027-04-20T12:00:00Z') });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

/** The calendar day in Berlin: due dates follow the plan's zone (01:00 Berlin on 30 June is 29 June in UTC). */
const berlinDay = (iso: string) => new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Berlin' }).format(new Date(iso));
type Occ = { at: string; type: string; state: string; projected?: boolean; runId?: string };
const of = (body: { plans: { planId: string; occurrences: Occ[] }[] }, id: string) => body.plans.find((p) => p.planId === id)!;

describe('the year\'s test programme', () => {
  it('lists every kind with what was done, what is scheduled and what is due, and says which due dates were met, missed or are open', async () => {
    const r = await h.request('GET', '/api/v1/programme?year=2027');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.plans.map((p: { planId: string; kind: string }) => [p.planId, p.kind])).toEqual([
      ['ewo', 'restore'], ['gewerbe', 'manual'], ['uebung', 'exercise'], ['veeam-vms', 'external'],
    ]);

    // sandbox: its two runs, every Monday slot from now to the year's end, the due date met by the passed run
    const ewo = of(r.body, 'ewo');
    expect(ewo.occurrences.filter((o) => o.type === 'run').map((o) => [o.state, o.runId])).toEqual([['passed', runIds.ewoPassed], ['failed', runIds.ewoFailed]]);
    const slots = ewo.occurrences.filter((o) => o.type === 'scheduled');
    expect(slots).toHaveLength(mondays(now, new Date('2027-12-31T23:00:00Z')));
    expect(slots.every((o) => o.state === 'planned' && new Date(o.at).getUTCDay() === 1 && new Date(o.at) > now)).toBe(true);
    const ewoDues = ewo.occurrences.filter((o) => o.type === 'due');
    // created 1 Jan + 7 days = 8 Jan, met only on 1 Mar: late; then due 7 days after that test (8 Mar), long missed
    expect(ewoDues.map((o) => [berlinDay(o.at), o.state])).toEqual([['2027-01-08', 'late'], ['2027-03-08', 'overdue']]);

    // reported by another tool: never reported, so the first due date is missed, later ones projected from today
    const veeam = of(r.body, 'veeam-vms').occurrences;
    expect(veeam[0]).toMatchObject({ type: 'due', state: 'overdue', at: '2027-01-31T00:00:00.000Z' });
    expect(veeam.slice(1).map((o) => [berlinDay(o.at), o.state, o.projected])).toEqual(
      ['2027-07-15', '2027-08-14', '2027-09-13', '2027-10-13', '2027-11-12', '2027-12-12'].map((d) => [d, 'planned', true]));

    // manual: its run that could not verify counts as done work but not as a pass; the due date is open, the next projected
    const gewerbe = of(r.body, 'gewerbe').occurrences;
    expect(gewerbe.map((o) => [o.type, berlinDay(o.at), o.state])).toEqual([
      ['run', '2027-04-20', 'error'], ['due', '2027-06-30', 'planned'], ['due', '2027-12-27', 'planned'],
    ]);

    // exercise: last year's exercise met this year's first due date; the next is in December
    const uebung = of(r.body, 'uebung').occurrences;
    expect(uebung.map((o) => [o.type, berlinDay(o.at), o.state, o.runId ?? null])).toEqual([
      ['due', '2027-01-01', 'done', runIds.uebung], ['due', '2027-12-10', 'planned', null],
    ]);
    expect(r.body.summary).toMatchObject({ plans: 4, done: 3, passed: 1, failed: 1, error: 1, overdue: 2 });

    // bad input: 400 with the parameter named
    const bad = await h.request('GET', '/api/v1/programme?year=99');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('year');
  });

  it('exports the same as CSV (one line per occurrence) and PDF/A, and shows it as a page', async () => {
    const csv = await h.app.inject({ method: 'GET', url: '/api/v1/programme?year=2027&format=csv', headers: auth() });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-disposition']).toContain('testprogramm-2027.csv');
    const lines = csv.body.replace(/^\uFEFF/, '').split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('plan_id;title;kind;system;type;state;projected;at_utc;at_berlin;run_id');
    const json = (await h.request('GET', '/api/v1/programme?year=2027')).body;
    expect(lines).toHaveLength(1 + json.plans.reduce((n: number, p: { occurrences: unknown[] }) => n + p.occurrences.length, 0));
    // a year after the exercise began (14:59 UTC = 15:59 Berlin)
    expect(lines).toContain('uebung;Notfallübung Rechenzentrum;exercise;;due;planned;false;2027-12-10T14:59:00.000Z;2027-12-10 15:59:00 +01:00;');

    const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/programme?year=2027&format=pdf', headers: auth() });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.rawPayload.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const dir = mkdtempSync(join(tmpdir(), 'ef-programme-'));
    writeFileSync(join(dir, 'p.pdf'), pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'p.pdf'), '-']).toString();
    rmSync(dir, { recursive: true, force: true });
    // columns wrap words: compared without white space
    const flat = text.replace(/\s+/g, '');
    for (const t of ['Testprogramm 2027', 'Einwohnermeldewesen', 'VMs (Veeam', 'Gewerbeamt', 'Notfallübung', 'Übung', 'manuell', 'extern', 'Sandbox', '4 Pläne', '‼31', '◯10', '◐8']) {
      expect(flat, t).toContain(t.replace(/\s+/g, ''));
    }
    // the export is in the audit trail
    const trail = (await h.request('GET', '/api/v1/audit?action=export.programme')).body.items;
    expect(trail.map((e: { details: { format: string } }) => e.details.format).sort()).toEqual(['csv', 'pdf']);

    const page = await h.request('GET', '/programme?year=2027');
    expect(page.status).toBe(200);
    for (const t of ['Testprogramm 2027', 'Notfallübung Rechenzentrum', 'Frist 10. (offen)', 'Frist 8. (überschritten)', 'Frist 27. (offen, hochgerechnet)', '1× nicht bestanden']) expect(page.body, t).toContain(t);
    expect(page.body).toMatch(/href="\/api\/v1\/programme\?year=2027&[^"]*format=pdf"/);
  });

  it('the calendar feed carries every occurrence in its horizon, manual tests and exercises included', async () => {
    const feed = await h.request('POST', '/api/v1/calendar-feeds', { name: 'IT-Leitung' });
    expect(feed.status).toBe(201);
    const res = await h.app.inject({ method: 'GET', url: new URL(feed.body.url, 'http://x').pathname });
    expect(res.statusCode).toBe(200);
    const events = res.body.replace(/\r\n[ \t]/g, '').split('BEGIN:VEVENT').slice(1).map((e) => Object.fromEntries(e.split('\r\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)])));
    const summaries = events.map((e) => `${e.SUMMARY} ${e['DTSTART;VALUE=DATE'] ?? e['DTSTART;TZID=Europe/Berlin']}`);
    // a year ahead: every Monday's automatic test, the exercise's and the manual test's due dates (with projections), the tool's
    expect(summaries.filter((s) => s.startsWith('Wiederherstellungstest: Einwohnermeldewesen'))).toHaveLength(mondays(now, new Date('2028-06-15T10:00:00Z')));
    expect(summaries).toContain('Fällig: Notfallübung Rechenzentrum 20271210');
    expect(summaries).toContain('Fällig: Gewerbeamt – Wiederanlauf 20270630');
    expect(summaries).toContain('Fällig: Gewerbeamt – Wiederanlauf 20271227');
    expect(summaries).toContain('ÜBERFÄLLIG: VMs (Veeam SureBackup) 20270615');
    expect(summaries.filter((s) => s.startsWith('Fällig: VMs (Veeam SureBackup)')).length).toBe(1 + 12);
    const exercise = events.find((e) => e.SUMMARY === 'Fällig: Notfallübung Rechenzentrum')!;
    expect(exercise.DESCRIPTION).toContain('Plan: Notfallübung Rechenzentrum (uebung)');
  });

  it('the audit report counts every kind, in its summary and per control the plans name', async () => {
    const r = await h.request('GET', '/api/v1/reports/audit?from=2026-12-01&to=2027-06-30&format=json');
    expect(r.status).toBe(200);
    const t = (plans: number, runs: number, passed: number, failed: number, errors: number) => ({ plans, runs, passed, failed, errors });
    expect(r.body.summary.byKind).toEqual({ restore: t(1, 2, 1, 1, 0), external: t(1, 0, 0, 0, 0), manual: t(1, 1, 0, 0, 1), exercise: t(1, 1, 1, 0, 0) });
    const control = (id: string) => r.body.controls.find((c: { id: string }) => c.id === id);
    expect(control('BSI-CON.3.A15').tests).toEqual({ restore: t(1, 2, 1, 1, 0), external: t(1, 0, 0, 0, 0), manual: t(1, 1, 0, 0, 1), exercise: t(0, 0, 0, 0, 0) });
    expect(control('ISO22301-8.5').tests).toEqual({ restore: t(0, 0, 0, 0, 0), external: t(0, 0, 0, 0, 0), manual: t(0, 0, 0, 0, 0), exercise: t(1, 1, 1, 0, 0) });
    expect(control('BSI-DER.4.A10').tests).toBeNull();
    const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2026-12-01&to=2027-06-30', headers: auth() });
    const dir = mkdtempSync(join(tmpdir(), 'ef-audit-kinds-'));
    writeFileSync(join(dir, 'a.pdf'), pdf.rawPayload);
    const flat = execFileSync('pdftotext', ['-layout', join(dir, 'a.pdf'), '-']).toString().replace(/\s+/g, '');
    rmSync(dir, { recursive: true, force: true });
    for (const s of ['nach Art', 'Sandbox: 1 Pläne, 2 Tests (1 bestanden, 1 nicht bestanden, 0 Fehler)', 'manuell: 1 Pläne, 1 Tests', 'Übung: 1 Pläne, 1 Tests (1 bestanden',
      'Tests im Zeitraum', 'Sandbox: 2 (✔1 ✖1 ⚠0)', 'Übung: 1 (✔1 ✖0 ⚠0)', 'kein Plan nennt sie']) {
      expect(flat, s).toContain(s.replace(/\s+/g, ''));
    }
  });
});
