import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReportData, Lang, RunProtocolData, VerdictName } from '../../services/reports/report.types.js';
import { renderRunProtocolPdf } from '../../services/reports/run-protocol.pdf.js';
import { renderAuditReportPdf } from '../../services/reports/audit-report.pdf.js';
import { auditToCsv, berlinTime, csvField, runsToCsv } from '../../services/reports/csv.js';
import { controlRows, CONTROLS } from '../../services/reports/controls.js';
import { formatBytes, formatDateTime, formatSeconds } from '../../services/reports/i18n.js';

// needs poppler-utils (pdftotext, pdffonts)
const run = promisify(execFile);
let dir = '';
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'ernstfall-reports-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let n = 0;
async function save(pdf: Buffer): Promise<string> {
  const file = path.join(dir, `r${++n}.pdf`);
  await writeFile(file, pdf);
  return file;
}
const pdfText = async (pdf: Buffer) => (await run('pdftotext', ['-layout', await save(pdf), '-'])).stdout;
const squash = (s: string) => s.replace(/\s+/g, '');

const hex = (seed: string) => Array.from({ length: 64 }, (_, i) => '0123456789abcdef'[(seed.charCodeAt(i % seed.length) * (i + 7)) % 16]).join('');
const HASH = hex('record-42');
const SIG = Buffer.from(hex('sig').repeat(2), 'hex').toString('base64'); // 64 bytes like Ed25519
const KEY = { keyId: 'a1b2c3d4e5f60718', fingerprint: hex('key') };

function runFixture(lang: Lang): RunProtocolData {
  return {
    lang,
    generatedAt: '2026-11-28T07:30:00Z',
    tenant: { name: 'Stadt Musterstadt' },
    plan: {
      id: 'ewo-strassen', title: 'Einwohnermeldewesen – Straßenverzeichnis', version: hex('plan-v3').slice(0, 16),
      system: { name: 'OK.EWO', process: 'Meldewesen', protectionNeed: 'hoch' },
      targets: { rtoSeconds: 14_400, rpoSeconds: 93_600 },
      controls: ['BSI-CON.3.A15', 'BSI-NOT.4.16.1', 'ISO27001-A.8.13'],
    },
    run: {
      id: '3f1e6a52-7c1b-4a0e-9d55-0b5a3c9e2f10', verdict: 'failed', trigger: 'schedule', triggeredBy: 'scheduler',
      queuedAt: '2026-11-28T01:04:58Z', startedAt: '2026-11-28T01:05:00Z', finishedAt: '2026-11-28T05:18:10Z',
      phases: [
        { name: 'fetch', startedAt: '2026-11-28T01:05:00Z', durationMs: 850, status: 'passed' },
        { name: 'provision', startedAt: '2026-11-28T01:05:01Z', durationMs: 4_200, status: 'passed' },
        { name: 'restore', startedAt: '2026-11-28T01:05:05Z', durationMs: 14_500_000, status: 'passed' },
        { name: 'verify', startedAt: '2026-11-28T05:06:45Z', durationMs: 618_000, status: 'failed' },
        { name: 'teardown', startedAt: '2026-11-28T05:17:03Z', durationMs: 1_900, status: 'passed' },
      ],
      rto: { targetSeconds: 14_400, measuredSeconds: 15_123, met: false },
      rpo: { targetSeconds: 93_600, backupAgeSeconds: 10_800, met: true },
      checks: [
        { name: 'Einwohner vorhanden', kind: 'sql', status: 'passed', expected: '>= 50000', actual: '51234', message: 'ok' },
        { name: 'Straßen vollständig', kind: 'tableRows', status: 'failed', expected: '>= 1200', actual: '1187', message: 'zu wenige Zeilen in strassen' },
        { name: 'Canary', kind: 'canary', status: 'passed', expected: 'sha256 …', actual: '(redacted)', message: 'ok' },
      ],
      findings: [
        { code: 'CHECK_FAILED', severity: 'failure', message: 'Prüfung „Straßen vollständig“: 1187 < 1200' },
        { code: 'RTO_EXCEEDED', severity: 'failure', message: 'Wiederherstellung dauerte 4 h 12 min 03 s, Ziel 4 h' },
      ],
      backup: { path: '/srv/backups/ewo/ewo-2026-11-27T22-00.dump', sizeBytes: 3_221_225_472, sha256: hex('backup'), createdAt: '2026-11-27T22:05:00Z', format: 'pg_dump custom', dumpVersion: '15.8' },
      sandbox: {
        image: 'ernstfall/postgres:15', imageId: `sha256:${hex('image')}`, network: 'none', capDrop: ['ALL'], capAdd: ['CHOWN', 'SETUID', 'SETGID'],
        memoryBytes: 2 * 1024 ** 3, cpus: 1, pids: 512, transfer: 'read-only bind mount', containerId: hex('ctr').slice(0, 12),
        teardown: { removedAt: '2026-11-28T05:18:05Z', verified: true },
      },
    },
    record: { seq: 42, hash: HASH, prevHash: hex('record-41'), signature: SIG, keyId: KEY.keyId, createdAt: '2026-11-28T05:18:10Z', retainUntil: '2036-11-28' },
    reviews: [{ decision: 'approved-with-deviations', comment: 'Import der Straßen prüfen; Nachtest bis 15.12.', reviewer: 'B. Weiß (ISB)', at: '2026-11-28T09:12:00Z', recordHash: hex('review') }],
    measures: [{ id: 'm-1', planId: 'ewo-strassen', runId: '3f1e6a52', title: 'Straßenverzeichnis-Import prüfen und nachtesten', owner: 'IT-Betrieb', dueDate: '2026-12-15', status: 'open', closedByRunId: null, closedAt: null }],
    checkpoint: { seq: 42, hash: HASH, at: '2026-11-28T05:18:11Z', keyId: KEY.keyId },
    keys: [KEY],
    attachments: [],
  };
}

function series(count: number, rto: number, seed: number): { at: string; seconds: number; verdict: VerdictName }[] {
  const start = Date.parse('2026-01-01T01:00:00Z');
  return Array.from({ length: count }, (_, i) => {
    const seconds = Math.round(rto * (0.55 + 0.4 * Math.abs(Math.sin(i / 9 + seed))));
    const verdict: VerdictName = i % 97 === 13 ? 'error' : i % 41 === 7 ? 'failed' : i % 151 === 3 ? 'cancelled' : 'passed';
    return { at: new Date(start + i * 86_400_000).toISOString(), seconds: verdict === 'failed' ? Math.round(rto * 1.2) : seconds, verdict };
  });
}

function auditFixture(lang: Lang, plans = 3, points?: number): AuditReportData {
  const names = ['Einwohnermeldewesen – Straßenverzeichnis', 'Finanzwesen – Haushalt (Kämmerei)', 'Dokumentenmanagement – Bauakten'];
  const systems = Array.from({ length: plans }, (_, i) => ({
    planId: `plan-${i + 1}`, title: names[i % 3]! + (i >= 3 ? ` ${i + 1}` : ''), system: ['OK.EWO', 'H&H proDoppik', 'enaio'][i % 3]!,
    rtoTargetSeconds: [14_400, 28_800, 3_600][i % 3]!, rtoLastSeconds: [15_123, 20_000, null][i % 3]!,
    rpoTargetSeconds: 93_600, backupAgeLastSeconds: [10_800, 7_200, null][i % 3]!,
    lastTestAt: ['2026-11-28T01:05:00Z', '2026-11-27T01:00:00Z', null][i % 3]!, lastVerdict: (['failed', 'passed', null] as const)[i % 3]!,
    nextDueAt: ['2026-11-29T01:00:00Z', '2026-12-04T01:00:00Z', '2026-10-01T00:00:00Z'][i % 3]!,
    status: ['failing', 'ok', 'overdue'][i % 3]!, runs: [330, 52, 0][i % 3]!, passed: [318, 51, 0][i % 3]!, failed: [9, 1, 0][i % 3]!, errors: [3, 0, 0][i % 3]!,
    kind: (['restore', 'external', 'manual'] as const)[i % 3]!,
    kindLabel: ['Wiederherstellung in der Sandbox (postgres)', 'gemeldet von Veeam SureBackup', 'manuell, 4 Schritte'][i % 3]!,
  }));
  return {
    lang, generatedAt: '2026-12-31T09:00:00Z', tenant: { name: 'Stadt Musterstadt' },
    period: { from: '2025-12-31T23:00:00Z', to: '2026-12-31T22:59:59Z' },
    summary: { plans, plansTestedInTime: 2, runs: 385, performed: 379, passed: 369, failed: 10, errors: 3, cancelled: 3, passRate: 369 / 379, rtoMeasured: 379, rtoMet: 360, rpoMeasured: 379, rpoMet: 379, overduePlans: 1, openMeasures: 1 },
    controls: controlRows(lang),
    systems,
    trend: systems.map((s, i) => ({ planId: s.planId, title: s.title, rtoTargetSeconds: s.rtoTargetSeconds, points: series(points ?? [330, 1, 0][i % 3]!, s.rtoTargetSeconds, i) })),
    deviations: [{ runId: '3f1e6a52-7c1b-4a0e-9d55-0b5a3c9e2f10', planId: 'plan-1', decision: 'approved-with-deviations', comment: 'Import der Straßen prüfen', reviewer: 'B. Weiß (ISB)', at: '2026-11-28T09:12:00Z' }],
    measures: [runFixture(lang).measures[0]!, { ...runFixture(lang).measures[0]!, id: 'm-0', title: 'Kapazität Sicherungsspeicher erweitern', status: 'done', closedByRunId: '9a0c2b7e-1111-4c3d-8e9f-aaaaaaaaaaaa', closedAt: '2026-06-02T08:00:00Z' }],
    ledger: { records: 512, headSeq: 512, headHash: HASH, verified: true, firstBroken: null },
    checkpoint: { seq: 512, hash: HASH, at: '2026-12-31T08:59:00Z', keyId: KEY.keyId },
    keys: [KEY],
  };
}

async function expectPdfA(pdf: Buffer): Promise<void> {
  const raw = pdf.toString('latin1');
  expect(raw.startsWith('%PDF-1.7')).toBe(true);
  expect(raw).toMatch(/<pdfaid:part>2<\/pdfaid:part>/);
  expect(raw).toMatch(/<pdfaid:conformance>B<\/pdfaid:conformance>/);
  expect(raw).toContain('/OutputIntents');
  const { stdout } = await run('pdffonts', [await save(pdf)]);
  const rows = stdout.trim().split('\n').slice(2);
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) {
    const cols = row.trim().split(/\s+/);
    expect(cols[cols.length - 5], row).toBe('yes'); // emb
    expect(row).toMatch(/DejaVu/);
  }
  expect(stdout).not.toMatch(/Helvetica|Times|Courier/);
}

describe('formatting', () => {
  it('shows Berlin time with its zone, and durations and sizes readably', () => {
    expect(formatDateTime('2026-11-28T01:05:00Z', 'de')).toBe('28.11.2026, 02:05 MEZ');
    expect(formatDateTime('2026-11-28T01:05:00Z', 'en')).toBe('28 Nov 2026, 02:05 CET');
    expect(formatDateTime('2026-07-28T01:05:00Z', 'de')).toBe('28.07.2026, 03:05 MESZ');
    expect(formatDateTime(null, 'de')).toBe('—');
    expect(formatSeconds(3723, 'de')).toBe('1 h 02 min 03 s');
    expect(formatSeconds(0.85, 'de')).toBe('850 ms');
    expect(formatSeconds(14_400, 'de')).toBe('4 h');
    expect(formatSeconds(4.25, 'de')).toBe('4,3 s');
    expect(formatSeconds(3 * 86_400 + 4 * 3600, 'en')).toBe('3 d 04 h');
    expect(formatBytes(3_221_225_472, 'de')).toBe('3 GiB');
    expect(formatBytes(1536, 'en')).toBe('1.5 KiB');
  });
  it('lists every control of the design once', () => {
    expect(CONTROLS.map((c) => c.ref)).toEqual(['CON.3.A15', 'CON.3.A4', 'CON.3.A6', 'DER.4.A10', 'DER.4.A12', 'DER.4.A14', 'NOT.4.15', 'NOT.4.16', 'NOT.4.16.1', 'NOT.4.17', 'PERS.2.3.4', 'A.8.13', 'A.5.30', 'A.5.33', '8.5']);
    expect(CONTROLS.find((c) => c.ref === 'CON.3.A15')!.title.de).toBe('Regelmäßiges Testen der Datensicherungen');
  });
});

describe('run protocol PDF', () => {
  it('renders the German protocol as PDF/A-2b with the facts an auditor checks', async () => {
    const pdf = await renderRunProtocolPdf(runFixture('de'));
    await expectPdfA(pdf);
    const text = await pdfText(pdf);
    for (const s of ['Wiederherstellungsprotokoll', 'Straßenverzeichnis', 'Prüfungen', 'Ergebnis: nicht bestanden', 'Feststellungen', 'Folgemaßnahmen',
      '28.11.2026, 02:05 MEZ', '4 h 12 min 03 s', 'nicht eingehalten', 'CON.3.A15', 'A.8.13', 'freigegeben mit Abweichungen', 'So prüfen Sie diesen Nachweis',
      'npm run evidence:verify -- bundle.json --trust key.pem', 'sha256sum record.json', "jq -j '.record.canonical' evidence.json > record.json", 'openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in record.json -sigfile sig.bin']) {
      expect(text, s).toContain(s);
    }
    expect(text).not.toContain('01:05 MEZ');
    expect(squash(text)).toContain(HASH);
    expect(squash(text)).toContain(SIG);
    expect(squash(text)).toContain(KEY.fingerprint);
  });

  it('renders English on request, and an empty sign-off box without reviews', async () => {
    const pdf = await renderRunProtocolPdf({ ...runFixture('en'), reviews: [], record: null });
    const text = await pdfText(pdf);
    for (const s of ['Restore test protocol', 'Verdict: failed', 'Checks', 'Findings', '28 Nov 2026, 02:05 CET', 'not met', 'No review recorded yet', 'Signature', 'How to verify this evidence']) {
      expect(text, s).toContain(s);
    }
    expect(text).not.toContain('Prüfungen');
  });
});

describe('manual test protocol', () => {
  it('shows the step timeline: each step with result, time, person, note and its evidence by name and hash, then the record\'s attachments', async () => {
    const base = runFixture('de');
    const shot = hex('screenshot');
    const step = (i: number, name: string, result: string | null, extra: Record<string, unknown> = {}) => ({
      name, kind: 'step', status: result === 'ok' ? 'passed' : result === 'deviation' ? 'failed' : 'skipped', expected: 'erledigt', actual: null,
      message: result === 'deviation' ? 'Lizenzserver nicht erreichbar' : 'erledigt',
      step: { index: i, result, at: result ? `2026-12-07T${String(8 + i).padStart(2, '0')}:15:00Z` : null, by: result ? 'olga.operator@musterstadt.de' : null, restoresService: i === 2, evidenceRequired: i === 2, ...extra },
    });
    const run = {
      ...base.run, origin: 'manual' as const, verdict: 'failed' as const, phases: [], backup: null, sandbox: null,
      checks: [step(0, '1. VM zurückspielen', 'ok'), step(1, '2. Datenbankdienst starten', 'deviation'),
        step(2, '3. Akte 2026/4711 öffnen', 'ok', { attachments: [{ name: 'step-03-akte.png', sha256: shot, sizeBytes: 2048, mediaType: 'image/png' }] }), step(3, '4. Zurückbauen', null)] as never,
      findings: [{ code: 'MANUAL_DEVIATION', severity: 'failure', message: '2. Datenbankdienst starten: Lizenzserver nicht erreichbar' }],
      restore: { completedBy: 'olga.operator@musterstadt.de', note: 'Übung mit dem Gewerbeamt' },
    };
    const text = await pdfText(await renderRunProtocolPdf({ ...base, run, attachments: [{ name: 'step-03-akte.png', sha256: shot, sizeBytes: 2048 }] }));
    // Berlin time per step (the column wraps the date and the time)
    for (const t of ['09:15MEZ', '10:15MEZ', '11:15MEZ']) expect(squash(text), t).toContain(t);
    // the person's address is one word: its column widens for it, so the step's name wraps at its space
    expect(text).toMatch(/1\. VM\s+(zurückspielen\s+)?erledigt/);
    expect(text).toContain('zurückspielen');
    for (const s of ['Ablauf der Schritte (manueller Test)', 'olga.operator@musterstadt.de', 'Abweichung', 'Lizenzserver nicht erreichbar',
      'step-03-akte.png', 'offen', 'Gemessene RTO = Beginn des Tests bis zum Schritt', 'Abgeschlossen von', 'Übung mit dem Gewerbeamt', 'Anhänge im Nachweis', 'MANUAL_DEVIATION']) {
      expect(text, s).toContain(s);
    }
    expect(squash(text)).toContain(shot);
    expect(squash(text)).toMatch(/3\.Akte.{0,80}2026\/4711.{0,80}öffnen/);
    expect(text).toContain('(RTO)');
    // no sandbox phases for a test people carried out
    expect(text).not.toContain('Ablauf und Zeiten');
    const en = await pdfText(await renderRunProtocolPdf({ ...base, lang: 'en', run, attachments: [] }));
    for (const s of ['Steps as carried out (manual test)', 'deviation', 'Completed by']) expect(en, s).toContain(s);
  });
});

describe('edge cases', () => {
  it('renders a run that could not verify (no backup, no sandbox, nothing measured)', async () => {
    const base = runFixture('de');
    const run = { ...base.run, verdict: 'error' as const, startedAt: null, finishedAt: null, phases: [], rto: null, rpo: null, checks: [], backup: null, sandbox: null,
      findings: [{ code: 'SOURCE_NOT_FOUND', severity: 'error', message: 'keine Sicherung unter /srv/backups/ewo' }] };
    const text = await pdfText(await renderRunProtocolPdf({ ...base, run, record: null, checkpoint: null, reviews: [], measures: [] }));
    for (const s of ['Ergebnis: Fehler – nicht verifiziert', 'nicht gemessen', 'Keine Prüfungen ausgeführt.', 'Es wurde keine Sandbox gestartet.', 'Kein Checkpoint vorhanden.']) {
      expect(text, s).toContain(s);
    }
    const en = await pdfText(await renderRunProtocolPdf({ ...base, lang: 'en', run: { ...run, verdict: 'cancelled' } }));
    expect(en).toContain('Verdict: cancelled');
  });

  it('shows a broken evidence chain and an empty period', async () => {
    const d = auditFixture('de', 0);
    const text = await pdfText(await renderAuditReportPdf({ ...d, summary: { ...d.summary, plans: 0, plansTestedInTime: 0, passRate: null },
      ledger: { ...d.ledger, verified: false, firstBroken: { seq: 7, reason: 'bad-signature' } }, deviations: [], measures: [] }));
    for (const s of ['nein (512 Datensätze)', 'erster Fehler bei Datensatz 7: bad-signature', '0 von 0 (—)', 'keine Messwerte im Zeitraum', 'Keine Abweichungen.']) {
      expect(text, s).toContain(s);
    }
  });
});

describe('audit report PDF', () => {
  it('renders the German report as PDF/A-2b with summary, controls, trends, sign-off and annex', async () => {
    const pdf = await renderAuditReportPdf(auditFixture('de'));
    await expectPdfA(pdf);
    const text = await pdfText(pdf);
    for (const s of ['Prüfbericht Wiederherstellungstests', 'Management-Zusammenfassung', '2 von 3 (66,7 %)', '360 von 379 gemessenen', 'Straßenverzeichnis', 'Kämmerei',
      'CON.3.A15', 'A.8.13', 'PERS.2.3.4', 'nicht bestanden', 'überfällig', 'Wiederherstellungsdauer im Zeitverlauf',
      'keine Messwerte im Zeitraum', 'IT-Leitung', 'Informationssicherheitsbeauftragte/r', 'Unterschrift', 'Anhang: Nachweisprüfung', '02:05 MEZ']) {
      expect(text, s).toContain(s);
    }
    expect(text).not.toContain('01:05 MEZ'); // the last test (01:05 UTC) in Berlin time
    expect(squash(text)).toContain(HASH);
    // the control's title wraps in its column (pdftotext interleaves the columns' lines)
    expect(squash(text)).toContain('RegelmäßigesTestender');
    expect(squash(text)).toContain('Datensicherungen');
  });

  it('renders English labels in the English report', async () => {
    const text = await pdfText(await renderAuditReportPdf(auditFixture('en')));
    for (const s of ['Audit report: restore tests', 'Management summary', '2 of 3 (66.7 %)', 'Control mapping', 'Information backup', 'Head of IT', 'Signature', '02:05 CET']) {
      expect(text, s).toContain(s);
    }
    expect(text).not.toContain('Unterschrift');
  });

  it('renders a year of 20 plans (365 points each) into one PDF (its speed is measured in npm run bench, not here)', async () => {
    const pdf = await renderAuditReportPdf(auditFixture('de', 20, 365));
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(10_000);
  });
});

describe('CSV', () => {
  it('uses a BOM, semicolons, CRLF and RFC 4180 quoting, with UTC and Berlin times', () => {
    const r = runFixture('de').run;
    const csv = runsToCsv([{ ...r, planId: 'ewo-strassen', triggeredBy: 'Müller; "IT"' }]);
    expect(csv.startsWith('\uFEFFrun_id;plan_id;verdict;')).toBe(true);
    const lines = csv.split('\r\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(';"Müller; ""IT""";');
    expect(lines[1]).toContain(';2026-11-28T01:05:00.000Z;2026-11-28 02:05:00 +01:00;');
    expect(berlinTime('2026-10-25T00:30:00Z')).toBe('2026-10-25 02:30:00 +02:00'); // the repeated autumn hour, first time
    expect(berlinTime('2026-10-25T01:30:00Z')).toBe('2026-10-25 02:30:00 +01:00');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    const audit = auditToCsv(auditFixture('de'));
    expect(audit.split('\r\n')[1]).toContain('plan-1;Einwohnermeldewesen – Straßenverzeichnis;OK.EWO;failing;14400;15123;');
    expect(audit).toContain('H&H proDoppik');
  });
});
