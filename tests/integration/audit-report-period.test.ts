import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { TEST_TOKEN } from '../helpers/config.js';

/**
 * The audit report's period through the API: from..to are days in
 * Europe/Berlin, midnight to midnight, in winter (UTC+1) and summer (UTC+2).
 * Runs a few minutes either side of a Berlin midnight land on the right side;
 * "generated at" is the app's (fixed) clock, not the machine's.
 */
const NOW = new Date('2027-01-15T09:00:00Z'); // 10:00 MEZ
let h: Harness;
const at: Record<string, string> = {};

// finished at (UTC) → the Berlin day it belongs to
const RUNS: [string, string][] = [
  ['2025-12-31T22:30:00Z', 'dec-31-2330'], // 31.12.2025 23:30 MEZ: before January
  ['2025-12-31T23:30:00Z', 'jan-01-0030'], // 01.01.2026 00:30 MEZ: January (UTC bounds missed it)
  ['2026-01-31T22:30:00Z', 'jan-31-2330'], // 31.01.2026 23:30 MEZ: January
  ['2026-01-31T23:30:00Z', 'feb-01-0030'], // 01.02.2026 00:30 MEZ: not January (UTC bounds counted it)
  ['2026-06-30T21:30:00Z', 'jun-30-2330'], // 30.06.2026 23:30 MESZ: not July (UTC bounds: not either)
  ['2026-06-30T22:30:00Z', 'jul-01-0030'], // 01.07.2026 00:30 MESZ: July (UTC bounds missed it)
  ['2026-07-31T21:30:00Z', 'jul-31-2330'], // 31.07.2026 23:30 MESZ: July
  ['2026-07-31T22:30:00Z', 'aug-01-0030'], // 01.08.2026 00:30 MESZ: not July (UTC bounds counted it)
];

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => new Date(NOW) });
  await h.putPlan(pgPlan('einwohner', 'x.dump', { title: 'Einwohnermeldewesen', cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1M' } }));
  const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
  await owner.connect();
  await owner.query(`update plans set created_at = '2025-12-01T00:00:00Z' where id = 'einwohner'`);
  await owner.end();
  for (const [finished, name] of RUNS) {
    await seedRun(h, { planId: 'einwohner', verdict: 'passed', finishedAt: new Date(finished), rtoSeconds: 60 });
    at[name] = new Date(finished).toISOString();
  }
}, 120_000);
afterAll(async () => {
  await h?.close();
});

async function report(from: string, to: string) {
  const res = await h.request('GET', `/api/v1/reports/audit?from=${from}&to=${to}&format=json`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}
const pointsOf = (body: { trend: { points: { at: string }[] }[] }) => body.trend[0]!.points.map((p) => p.at).sort();

describe('the audit report period: Berlin days, midnight to midnight', () => {
  it('winter (January): from 31.12. 23:00 UTC to 31.01. 23:00 UTC', async () => {
    const body = await report('2026-01-01', '2026-01-31');
    expect(body.period).toEqual({ from: '2025-12-31T23:00:00.000Z', to: '2026-01-31T23:00:00.000Z', firstDay: '2026-01-01', lastDay: '2026-01-31' });
    expect(pointsOf(body)).toEqual([at['jan-01-0030'], at['jan-31-2330']].sort());
    expect(body.summary.runs).toBe(2);
  });

  it('summer (July): from 30.06. 22:00 UTC to 31.07. 22:00 UTC', async () => {
    const body = await report('2026-07-01', '2026-07-31');
    expect(body.period).toEqual({ from: '2026-06-30T22:00:00.000Z', to: '2026-07-31T22:00:00.000Z', firstDay: '2026-07-01', lastDay: '2026-07-31' });
    expect(pointsOf(body)).toEqual([at['jul-01-0030'], at['jul-31-2330']].sort());
  });

  it('a year: every run of 2026 in Berlin, none of 31.12.2025', async () => {
    const body = await report('2026-01-01', '2026-12-31');
    expect(body.period.from).toBe('2025-12-31T23:00:00.000Z');
    expect(body.period.to).toBe('2026-12-31T23:00:00.000Z');
    expect(body.summary.runs).toBe(RUNS.length - 1);
    expect(pointsOf(body)).not.toContain(at['dec-31-2330']);
  });

  it('"generated at" is the app\'s clock, in JSON and on the PDF (cover and footer), and so is the run protocol\'s', async () => {
    expect((await report('2026-07-01', '2026-07-31')).generatedAt).toBe(NOW.toISOString());
    const dir = mkdtempSync(join(tmpdir(), 'ef-period-'));
    try {
      const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2026-07-01&to=2026-07-31', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      expect(pdf.statusCode).toBe(200);
      writeFileSync(join(dir, 'a.pdf'), pdf.rawPayload);
      const text = execFileSync('pdftotext', ['-layout', join(dir, 'a.pdf'), '-']).toString();
      expect(text).toContain('01.07.2026 – 31.07.2026');
      expect(text).not.toContain('01.07.2026, 02:00 MESZ');
      expect(text).not.toContain('01.08.2026');
      expect(text).toContain('erstellt am 15.01.2027, 10:00 MEZ');

      const runs = await h.request('GET', '/api/v1/runs?planId=einwohner');
      const id = runs.body.items[0].id as string;
      const prot = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${id}/protocol.pdf`, headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      expect(prot.statusCode).toBe(200);
      writeFileSync(join(dir, 'p.pdf'), prot.rawPayload);
      expect(execFileSync('pdftotext', ['-layout', join(dir, 'p.pdf'), '-']).toString()).toContain('erstellt am 15.01.2027, 10:00 MEZ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a day that does not exist and a period that ends before it starts', async () => {
    expect((await h.request('GET', '/api/v1/reports/audit?from=2026-02-30&to=2026-03-31&format=json')).status).toBe(400);
    expect((await h.request('GET', '/api/v1/reports/audit?from=2026-07-02&to=2026-07-01&format=json')).status).toBe(400);
  });
});
