/**
 * No table cell of a PDF report breaks a word ("übereinstimme / nd"): cells
 * wrap at spaces and hyphens only; a word too long for its column widens the
 * column or is set smaller. Checked on the words pdftotext finds (-bbox: one
 * element per word, with its box), in the run protocol, the audit report and
 * a bare table. Needs poppler-utils.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  breakPieces, createDoc, font, renderToBuffer, table, wrapWords, type Doc,
} from '../../services/reports/pdf-common.js';
import { renderRunProtocolPdf } from '../../services/reports/run-protocol.pdf.js';
import { renderAuditReportPdf } from '../../services/reports/audit-report.pdf.js';
import type { AuditReportData, RunProtocolData } from '../../services/reports/report.types.js';
import { controlRows } from '../../services/reports/controls.js';

const run = promisify(execFile);
let dir = '';
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'ernstfall-tables-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

interface Word { text: string; height: number }
let n = 0;
/** Every word pdftotext sees, with the height of its box (≈ the font size). */
async function words(pdf: Buffer): Promise<Word[]> {
  const file = path.join(dir, `t${++n}.pdf`);
  await writeFile(file, pdf);
  const { stdout } = await run('pdftotext', ['-raw', '-bbox', file, '-']);
  const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  return [...stdout.matchAll(/<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)<\/word>/g)]
    .map((m) => ({ text: decode(m[3]!), height: Number(m[2]) - Number(m[1]) }));
}

const LONG = ['übereinstimmend', 'Wiederherstellungstest', 'Notfallhandbuch', 'Wiederherstellungszeit', 'Datensicherungsverfahren', 'Einwohnermeldewesen'];
/** Words as pdftotext splits them, stripped of punctuation around them. */
const bare = (w: string) => w.replace(/^[(„"“]+|[)"“”.,:;]+$/g, '');

/** Long words cut in two: a word and the next one (in the content stream's order, -raw) that make one of them only together. */
function splits(found: Word[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < found.length; i++) {
    const a = found[i]!.text;
    const b = found[i + 1]!.text;
    for (const w of LONG) if (`${a}${b}`.includes(w) && !a.includes(w) && !b.includes(w)) out.push(`${a} / ${b}`);
  }
  return out;
}

/** Each long word is found whole at least as often as the cells hold it (labels may add more), and none is cut. */
function expectWhole(found: Word[], expected: Record<string, number>): void {
  const texts = found.map((w) => bare(w.text));
  for (const [word, count] of Object.entries(expected)) {
    expect(texts.filter((t) => t === word).length, `"${word}" whole`).toBeGreaterThanOrEqual(count);
  }
  expect(splits(found)).toEqual([]);
}

function protocol(): RunProtocolData {
  const check = (i: number) => ({
    name: `Wiederherstellungstest ${i}`, kind: 'canary', status: 'passed', expected: 'übereinstimmend',
    actual: 'übereinstimmend', message: `Notfallhandbuch Kapitel ${i}: Wiederherstellungszeit übereinstimmend`,
  });
  return {
    lang: 'de', generatedAt: '2026-11-28T07:30:00Z', tenant: { name: 'Stadt Musterstadt' },
    plan: { id: 'ewo', title: 'Einwohnermeldewesen', version: 'a'.repeat(16), targets: { rtoSeconds: 3600, rpoSeconds: 93_600 }, controls: [] },
    run: {
      id: '3f1e6a52-7c1b-4a0e-9d55-0b5a3c9e2f10', verdict: 'passed', trigger: 'schedule', triggeredBy: 'scheduler',
      queuedAt: '2026-11-28T01:04:58Z', startedAt: '2026-11-28T01:05:00Z', finishedAt: '2026-11-28T01:18:10Z',
      phases: [{ name: 'restore', startedAt: '2026-11-28T01:05:05Z', durationMs: 60_000, status: 'passed' }],
      rto: { targetSeconds: 3600, measuredSeconds: 790, met: true }, rpo: { targetSeconds: 93_600, backupAgeSeconds: 10_800, met: true },
      checks: [check(1), check(2), check(3)],
      findings: [{ code: 'CHECK_FAILED', severity: 'info', message: 'Datensicherungsverfahren übereinstimmend' }],
      backup: null, sandbox: null,
    },
    record: null, reviews: [], measures: [], checkpoint: null, keys: [], attachments: [],
  } as unknown as RunProtocolData;
}

function audit(): AuditReportData {
  return {
    lang: 'de', generatedAt: '2026-12-31T09:00:00Z', tenant: { name: 'Stadt Musterstadt' },
    period: { from: '2025-12-31T23:00:00.000Z', to: '2026-12-31T23:00:00.000Z', firstDay: '2026-01-01', lastDay: '2026-12-31' },
    summary: { plans: 1, plansTestedInTime: 1, runs: 1, performed: 1, passed: 1, failed: 0, errors: 0, cancelled: 0, passRate: 1, rtoMeasured: 1, rtoMet: 1, rpoMeasured: 1, rpoMet: 1, overduePlans: 0, openMeasures: 0 },
    controls: controlRows('de'),
    systems: [{
      planId: 'p1', title: 'Wiederherstellungstest Einwohnermeldewesen', system: 'Notfallhandbuch', kind: 'restore', kindLabel: 'übereinstimmend',
      rtoTargetSeconds: 3600, rtoLastSeconds: 790, rpoTargetSeconds: 93_600, backupAgeLastSeconds: 3600, lastTestAt: '2026-11-28T01:05:00Z',
      lastVerdict: 'passed', nextDueAt: '2026-12-28T01:05:00Z', status: 'ok', runs: 1, passed: 1, failed: 0, errors: 0,
    }],
    restartOrder: [{
      id: 's1', name: 'Einwohnermeldewesen', process: 'Wiederherstellungstest', protectionNeed: 'hoch', tier: 1, owner: 'Notfallhandbuch',
      handbookRef: 'Notfallhandbuch', plans: [{ id: 'p1', title: 'Wiederherstellungszeit' }], lastPassed: { at: '2026-11-28T01:05:00Z', runId: 'r1', planId: 'p1' }, lacksRecentPass: false,
    }] as unknown as AuditReportData['restartOrder'],
    trend: [], deviations: [{ runId: '3f1e6a52-7c1b-4a0e-9d55-0b5a3c9e2f10', planId: 'p1', decision: 'approved-with-deviations', comment: 'Datensicherungsverfahren übereinstimmend', reviewer: 'Notfallhandbuch', at: '2026-11-28T09:12:00Z' }],
    measures: [{ id: 'm1', planId: 'p1', runId: 'r1', title: 'Wiederherstellungstest wiederholen', owner: 'Datensicherungsverfahren', dueDate: '2026-12-15', status: 'open', closedByRunId: null, closedAt: null }],
    ledger: { records: 3, headSeq: 3, headHash: 'ab'.repeat(32), verified: true, firstBroken: null }, checkpoint: null, keys: [],
  };
}

async function oneTable(build: (doc: Doc) => void): Promise<Buffer> {
  const doc = createDoc({ lang: 'de', title: 'Tabelle', subject: 't', tenant: 'Stadt Musterstadt', generatedAt: '2026-11-28T07:30:00Z' });
  build(doc);
  return renderToBuffer(doc);
}

describe('where a cell may wrap', () => {
  it('after spaces and after a hyphen between a word and a letter, nowhere else', () => {
    expect(breakPieces('Wiederanlauf-Reihenfolge der Systeme')).toEqual(['Wiederanlauf-', 'Reihenfolge ', 'der ', 'Systeme']);
    expect(breakPieces('2026-11-28 ab 02:05')).toEqual(['2026-11-28 ', 'ab ', '02:05']);
    expect(breakPieces('-v und BSI-CON.3.A15')).toEqual(['-v ', 'und ', 'BSI-', 'CON.3.A15']);
    expect(breakPieces('übereinstimmend').join('')).toBe('übereinstimmend');
  });

  it('wrapWords never cuts a word that fits; it reports one that does not fit', async () => {
    await oneTable((doc) => {
      doc.font(font.sans).fontSize(8);
      const w = doc.widthOfString('übereinstimmend');
      expect(wrapWords(doc, 'Canary übereinstimmend', w + 1)).toEqual({ text: 'Canary\nübereinstimmend', fits: true });
      expect(wrapWords(doc, 'übereinstimmend', w - 5).fits).toBe(false);
      // only as the last resort (forced, at the smallest size) is a word cut
      expect(wrapWords(doc, 'übereinstimmend', w - 5, true).text).toContain('\n');
    });
  });
});

describe('no table cell breaks a word', () => {
  it('failing input: pdfkit alone, at a column as narrow as the protocol\'s, cuts the word (what the reports did)', async () => {
    const pdf = await oneTable((doc) => {
      doc.font(font.sans).fontSize(8);
      doc.text('übereinstimmend', 50, 100, { width: doc.widthOfString('übereinstimmend') - 8 });
    });
    const found = await words(pdf);
    expect(found.map((w) => w.text)).not.toContain('übereinstimmend');
    expect(splits(found)).toHaveLength(1);
    expect(splits(found)[0]).toMatch(/^übereinstimm\S* \/ \S+$/);
  });

  it('the run protocol keeps "übereinstimmend", "Wiederherstellungstest", "Notfallhandbuch" whole in its tables', async () => {
    const found = await words(await renderRunProtocolPdf(protocol()));
    expectWhole(found, { übereinstimmend: 10, Wiederherstellungstest: 3, Notfallhandbuch: 3, Wiederherstellungszeit: 3, Datensicherungsverfahren: 1 });
  });

  it('the audit report keeps them whole in its tables (systems, restart order, deviations, measures)', async () => {
    const found = await words(await renderAuditReportPdf(audit()));
    expectWhole(found, { übereinstimmend: 2, Wiederherstellungstest: 3, Datensicherungsverfahren: 2, Wiederherstellungszeit: 1 });
    // the restart order's column header is "Notfallhandbuch" too
    expectWhole(found, { Notfallhandbuch: 5 });
  });

  it('a word too long for any share of the table is set smaller, whole; the other cells keep their size (healthy input)', async () => {
    const giant = 'Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen';
    const pdf = await oneTable((doc) => {
      table(doc, [{ header: 'Art', width: 1 }, { header: 'Wert', width: 1 }], [
        [giant, giant],
        ['Canary', 'übereinstimmend'],
      ], { size: 8 });
    });
    const found = await words(pdf);
    const big = found.filter((w) => w.text === giant);
    expect(big).toHaveLength(2);
    const normal = found.find((w) => w.text === 'übereinstimmend')!;
    expect(normal).toBeDefined();
    expect(big[0]!.height).toBeLessThan(normal.height * 0.95);
    expect(found.find((w) => w.text === 'Canary')!.height).toBeCloseTo(normal.height, 1);
  });

  it('a column too narrow for its word takes room from a column that has some, at the same size', async () => {
    const pdf = await oneTable((doc) => {
      table(doc, [{ header: 'Prüfung', width: 6 }, { header: 'tatsächlich', width: 1 }, { header: 'Notiz', width: 3 }], [
        ['Canary im Wiederherstellungstest', 'übereinstimmend', 'ok'],
      ], { size: 8 });
    });
    const found = await words(pdf);
    expectWhole(found, { übereinstimmend: 1, Wiederherstellungstest: 1 });
    const w = found.find((x) => x.text === 'übereinstimmend')!;
    expect(w.height).toBeCloseTo(found.find((x) => x.text === 'Canary')!.height, 1);
  });
});
