import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';

/**
 * A seeded year: 20 plans, every ~1–2 weeks a test, over 500 runs. The
 * figures the report shows are checked against figures computed here,
 * independently and more naively (hour-by-hour simulation of the due clock).
 */
const PLANS = 20;
const DAY = 86_400_000;
const EVERY_DAYS = 14;
const GRACE_DAYS = 2;
const FROM = Date.UTC(2026, 0, 1);
const TO = Date.UTC(2026, 10, 20); // exclusive: the report's "to" is 2026-11-19 inclusive

interface Seeded { planId: string; verdict: 'passed' | 'failed' | 'error' | 'cancelled'; at: number; rto: number; rtoTarget: number; age: number; rpoTarget: number }
let h: Harness;
const seeded: Seeded[] = [];

let state = 42;
const rand = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
  await owner.connect();
  for (let p = 0; p < PLANS; p++) {
    const id = `system-${String(p).padStart(2, '0')}`;
    const rtoTarget = 600 + p * 60;
    await h.putPlan(pgPlan(id, 'x.dump', {
      title: `Fachverfahren ${p} – Straßenverzeichnis`, targets: { rto: `${rtoTarget}s`, rpo: '26h' },
      cadence: { timezone: 'Europe/Berlin', requiredEvery: `P${EVERY_DAYS}D`, grace: `P${GRACE_DAYS}D` },
    }));
    await owner.query(`update plans set created_at = '2025-12-20T00:00:00Z' where id = $1`, [id]);
    // tests at 03:00 UTC, gaps of whole days: short ones keep the plan in time, a rare long one breaks it
    let at = FROM + (1 + Math.floor(rand() * 3)) * DAY + 3 * 3600_000;
    let previous = 'passed';
    let longGapDone = p % 4 !== 0; // every fourth system once goes untested for 20 days
    while (at < TO) {
      const r = rand();
      // a failed/error/cancelled test is always followed by a passed one in these systems
      const verdict = previous !== 'passed' ? 'passed' : r < 0.8 ? 'passed' : r < 0.9 ? 'failed' : r < 0.97 ? 'error' : 'cancelled';
      previous = verdict;
      seeded.push({ planId: id, verdict, at, rto: Math.round(200 + rand() * 900), rtoTarget, age: Math.round(3600 + rand() * 100_000), rpoTarget: 93_600 });
      const long = !longGapDone && at > FROM + 150 * DAY;
      if (long) longGapDone = true;
      at += (long ? 20 : 5 + Math.floor(rand() * 3)) * DAY;
    }
  }
  await owner.end();
  for (const s of seeded) {
    await seedRun(h, { planId: s.planId, verdict: s.verdict, finishedAt: new Date(s.at), rtoSeconds: s.rto, rtoTarget: s.rtoTarget, backupAgeSeconds: s.age, rpoTarget: s.rpoTarget });
  }
}, 300_000);
afterAll(async () => {
  await h?.close();
});

function expected() {
  const performed = seeded.filter((s) => s.verdict === 'passed' || s.verdict === 'failed');
  let inTime = 0;
  let overdue = 0;
  for (let p = 0; p < PLANS; p++) {
    const id = `system-${String(p).padStart(2, '0')}`;
    const runs = seeded.filter((s) => s.planId === id);
    // the due clock starts at creation and is reset by the start of each passed run
    const passedStarts = runs.filter((s) => s.verdict === 'passed').map((s) => s.at - s.rto * 1000);
    let ok = true;
    let clock = Date.UTC(2025, 11, 20);
    for (let t = FROM; t < TO; t += 3600_000) {
      for (const ps of passedStarts) if (ps <= t && ps > clock) clock = ps;
      if (t > clock + (EVERY_DAYS + GRACE_DAYS) * DAY) ok = false;
    }
    if (ok) inTime++;
    const decisive = runs.filter((s) => s.verdict === 'passed' || s.verdict === 'failed');
    const lastPassed = Math.max(Date.UTC(2025, 11, 20), ...passedStarts);
    if (decisive.at(-1)?.verdict !== 'failed' && TO > lastPassed + (EVERY_DAYS + GRACE_DAYS) * DAY) overdue++;
  }
  return {
    plans: PLANS, runs: seeded.length, plansTestedInTime: inTime, overduePlans: overdue,
    passed: seeded.filter((s) => s.verdict === 'passed').length,
    failed: seeded.filter((s) => s.verdict === 'failed').length,
    errors: seeded.filter((s) => s.verdict === 'error').length,
    cancelled: seeded.filter((s) => s.verdict === 'cancelled').length,
    performed: performed.length,
    rtoMeasured: performed.length,
    rtoMet: performed.filter((s) => s.rto <= s.rtoTarget).length,
    rpoMeasured: seeded.filter((s) => s.verdict !== 'cancelled').length,
    rpoMet: seeded.filter((s) => s.verdict !== 'cancelled' && s.age <= s.rpoTarget).length,
  };
}

describe('the audit report', () => {
  it('has at least 500 runs across 20 plans seeded', () => {
    expect(seeded.length).toBeGreaterThanOrEqual(500);
  });

  it('shows figures that match an independent computation (JSON)', async () => {
    const res = await h.request('GET', '/api/v1/reports/audit?from=2026-01-01&to=2026-11-19&format=json');
    expect(res.status).toBe(200);
    const e = expected();
    expect(e.plansTestedInTime).toBeGreaterThan(0);
    expect(e.plansTestedInTime).toBeLessThan(PLANS);
    expect(res.body.summary).toMatchObject({ ...e, passRate: e.passed / e.performed, openMeasures: 0 });
    // a record per run, and per plan its creation over PUT ('plan.changed' in the audit trail)
    expect(res.body.ledger).toMatchObject({ verified: true, records: seeded.length + PLANS, firstBroken: null });
    expect(res.body.systems).toHaveLength(PLANS);
    const s0 = res.body.systems.find((s: { planId: string }) => s.planId === 'system-00');
    const runs0 = seeded.filter((s) => s.planId === 'system-00');
    expect(s0).toMatchObject({ runs: runs0.length, passed: runs0.filter((s) => s.verdict === 'passed').length, rtoTargetSeconds: 600 });
    expect(res.body.trend.find((t: { planId: string }) => t.planId === 'system-00').points).toHaveLength(runs0.filter((s) => s.verdict === 'passed' || s.verdict === 'failed').length);
    expect(res.body.controls.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining([expect.stringMatching(/CON\.3\.A15/), expect.stringMatching(/A\.8\.13/)]));
  });

  it('a shorter period counts only its runs', async () => {
    const res = await h.request('GET', '/api/v1/reports/audit?from=2026-03-01&to=2026-03-31&format=json');
    const inMarch = seeded.filter((s) => s.at >= Date.UTC(2026, 2, 1) && s.at < Date.UTC(2026, 3, 1));
    expect(res.body.summary.runs).toBe(inMarch.length);
    expect(res.body.summary.passed).toBe(inMarch.filter((s) => s.verdict === 'passed').length);
  });

  it('renders the same figures into the PDF (German, umlauts) and the CSV', async () => {
    const e = expected();
    const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2026-01-01&to=2026-11-19', headers: { authorization: `Bearer ${(await import('../helpers/config.js')).TEST_TOKEN}` } });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toContain('application/pdf');
    const dir = mkdtempSync(join(tmpdir(), 'ef-audit-'));
    writeFileSync(join(dir, 'a.pdf'), pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'a.pdf'), '-']).toString();
    rmSync(dir, { recursive: true, force: true });
    expect(text).toContain('Straßenverzeichnis');
    expect(text).toMatch(new RegExp(`${e.plansTestedInTime}\\s+von\\s+${PLANS}`));
    expect(text).toMatch(new RegExp(`${e.rtoMet}\\s+von\\s+${e.rtoMeasured}`));
    expect(text).toContain('CON.3.A15');
    const csv = await h.request('GET', '/api/v1/reports/audit?from=2026-01-01&to=2026-11-19&format=csv');
    expect(csv.status).toBe(200);
    const lines = String(csv.body).replace(/^\uFEFF/, '').trim().split(/\r?\n/);
    expect(lines).toHaveLength(PLANS + 1);
    expect(lines[0]).toContain(';');
  });

  it('refuses a period that ends before it starts', async () => {
    expect((await h.request('GET', '/api/v1/reports/audit?from=2026-05-01&to=2026-04-01&format=json')).status).toBe(400);
    expect((await h.request('GET', '/api/v1/reports/audit?from=gestern&to=2026-04-01')).status).toBe(400);
  });
});
