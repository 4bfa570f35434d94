/**
 * The audit report's period: dates from..to (inclusive) cover local midnight
 * to local midnight in Europe/Berlin, in winter and in summer time, and the
 * report shows them as dates.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDay, periodDays, reportPeriod } from '../../services/reports/period.js';
import { renderAuditReportPdf } from '../../services/reports/audit-report.pdf.js';
import { controlRows } from '../../services/reports/controls.js';
import type { AuditReportData } from '../../services/reports/report.types.js';

const run = promisify(execFile);
let dir = '';
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'ernstfall-period-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

const iso = (p: { from: Date; to: Date }) => [p.from.toISOString(), p.to.toISOString()];

describe('reportPeriod', () => {
  it('winter: 00:00 MEZ is 23:00 UTC the day before', () => {
    expect(iso(reportPeriod('2026-01-01', '2026-01-31'))).toEqual(['2025-12-31T23:00:00.000Z', '2026-01-31T23:00:00.000Z']);
    expect(iso(reportPeriod('2026-12-01', '2026-12-01'))).toEqual(['2026-11-30T23:00:00.000Z', '2026-12-01T23:00:00.000Z']);
  });

  it('summer: 00:00 MESZ is 22:00 UTC the day before', () => {
    expect(iso(reportPeriod('2026-07-01', '2026-07-31'))).toEqual(['2026-06-30T22:00:00.000Z', '2026-07-31T22:00:00.000Z']);
  });

  it('across the changes: a year, and the months with the spring and autumn change (23 and 25 hour days)', () => {
    expect(iso(reportPeriod('2026-01-01', '2026-12-31'))).toEqual(['2025-12-31T23:00:00.000Z', '2026-12-31T23:00:00.000Z']);
    expect(iso(reportPeriod('2026-03-01', '2026-03-31'))).toEqual(['2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z']);
    expect(iso(reportPeriod('2026-10-01', '2026-10-31'))).toEqual(['2026-09-30T22:00:00.000Z', '2026-10-31T23:00:00.000Z']);
    const spring = reportPeriod('2026-03-29', '2026-03-29');
    expect(spring.to.getTime() - spring.from.getTime()).toBe(23 * 3600_000);
    const autumn = reportPeriod('2026-10-25', '2026-10-25');
    expect(autumn.to.getTime() - autumn.from.getTime()).toBe(25 * 3600_000);
  });

  it('refuses what is not a day', () => {
    expect(() => reportPeriod('2026-02-30', '2026-03-01')).toThrow(/no such day/);
    expect(() => reportPeriod('gestern', '2026-03-01')).toThrow(/not a date/);
  });

  it('periodDays gives the days back; UTC-midnight bounds (what the report used) show a day too many', () => {
    for (const [a, b] of [['2026-01-01', '2026-12-31'], ['2026-07-01', '2026-07-31'], ['2026-03-29', '2026-03-29']] as const) {
      expect(periodDays(reportPeriod(a, b))).toEqual({ firstDay: a, lastDay: b });
    }
    // the former bounds, 2026-07-01T00:00Z to 2026-08-01T00:00Z, reach into 1 August in Berlin
    expect(periodDays({ from: '2026-07-01T00:00:00Z', to: '2026-08-01T00:00:00Z' })).toEqual({ firstDay: '2026-07-01', lastDay: '2026-08-01' });
    expect(localDay(new Date('2026-06-30T22:30:00Z'))).toBe('2026-07-01');
  });
});

function fixture(period: AuditReportData['period']): AuditReportData {
  return {
    lang: 'de', generatedAt: '2027-01-15T09:00:00Z', tenant: { name: 'Stadt Musterstadt' }, period,
    summary: { plans: 0, plansTestedInTime: 0, runs: 0, performed: 0, passed: 0, failed: 0, errors: 0, cancelled: 0, passRate: null, rtoMeasured: 0, rtoMet: 0, rpoMeasured: 0, rpoMet: 0, overduePlans: 0, openMeasures: 0 },
    controls: controlRows('de'), systems: [], trend: [], deviations: [], measures: [],
    ledger: { records: 0, headSeq: 0, headHash: '', verified: true, firstBroken: null }, checkpoint: null, keys: [],
  };
}
let n = 0;
async function text(pdf: Buffer): Promise<string> {
  const file = path.join(dir, `p${++n}.pdf`);
  await writeFile(file, pdf);
  return (await run('pdftotext', ['-layout', file, '-'])).stdout;
}

describe('the period on the report', () => {
  it.each([
    ['a year (winter bounds)', '2026-01-01', '2026-12-31', '01.01.2026 – 31.12.2026', '1 Jan 2026 – 31 Dec 2026'],
    ['July (summer bounds)', '2026-07-01', '2026-07-31', '01.07.2026 – 31.07.2026', '1 Jul 2026 – 31 Jul 2026'],
  ])('%s: shown as dates, not as instants', async (_name, a, b, de, en) => {
    const p = reportPeriod(a, b);
    const period = { from: p.from.toISOString(), to: p.to.toISOString(), firstDay: a, lastDay: b };
    const t = await text(await renderAuditReportPdf(fixture(period)));
    expect(t).toContain(de);
    expect(t).toContain('ganze Tage, 0 bis 24 Uhr deutscher Zeit');
    // neither "01.01.2026, 00:00 MEZ" nor "…, 01:00 MEZ": the period has no times
    expect(t).not.toMatch(/\d\d\.\d\d\.\d{4}, \d\d:\d\d (MEZ|MESZ) –/);
    expect(t).toContain('erstellt am 15.01.2027, 10:00 MEZ');
    const e = await text(await renderAuditReportPdf({ ...fixture(period), lang: 'en' }));
    expect(e).toContain(en);
  });

  it('data without the days (older JSON) shows the days its bounds cover', async () => {
    const p = reportPeriod('2026-07-01', '2026-07-31');
    const t = await text(await renderAuditReportPdf(fixture({ from: p.from.toISOString(), to: p.to.toISOString() })));
    expect(t).toContain('01.07.2026 – 31.07.2026');
  });
});
