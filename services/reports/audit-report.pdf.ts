import type { AuditReportData, KindTally, Lang, PlanKindName, VerdictName } from './report.types.js';
import { controlRows, findControl } from './controls.js';
import {
  decisionLabel, fill, formatDate, formatDateTime, formatPercent, formatSeconds, formatShortDate, labels,
  measureStatusLabel, planStatusLabel, verdictLabel, type Labels,
} from './i18n.js';
import {
  COLORS, contentWidth, createDoc, ensureSpace, fitText, font, heading, howToVerify, keysAndCheckpoint, kvTable,
  paragraph, renderToBuffer, signatureBlock, table, verdictColor, type Doc,
} from './pdf-common.js';
import { periodDays } from './period.js';

/**
 * The audit report for a period: management summary, control matrix, one row
 * per plan, restore-duration trends, deviations, measures, sign-off and how
 * to verify the evidence behind it.
 */
type Trend = AuditReportData['trend'][number];
const VERDICTS: VerdictName[] = ['passed', 'failed', 'error', 'cancelled'];
const BAD = COLORS.verdict.failed;
const GOOD = COLORS.verdict.passed;

/** "01.01.2026 – 31.12.2026": the period's days (both inclusive, local midnight to local midnight in Berlin). */
function periodText(d: AuditReportData): string {
  const days = d.period.firstDay && d.period.lastDay ? { firstDay: d.period.firstDay, lastDay: d.period.lastDay } : periodDays(d.period);
  return `${formatDate(days.firstDay, d.lang)} – ${formatDate(days.lastDay, d.lang)}`;
}

const ratio = (L: Labels, lang: Lang, x: number, y: number) => `${fill(L.xOfY, { x, y })} (${formatPercent(y ? x / y : null, lang)})`;

function cover(doc: Doc, d: AuditReportData, L: Labels): void {
  const left = doc.page.margins.left;
  doc.y = 190;
  doc.font(font.bold).fontSize(24).fillColor(COLORS.text).text(L.auditTitle, left, doc.y, { width: contentWidth(doc) });
  doc.moveDown(0.4).font(font.sans).fontSize(16).text(d.tenant.name);
  doc.moveDown(1.5);
  kvTable(doc, [
    { label: L.period, value: `${periodText(d)}\n${L.periodNote}` },
    { label: L.generatedAt, value: formatDateTime(d.generatedAt, d.lang) },
    { label: L.ledgerHead, value: `${L.seq} ${d.ledger.headSeq}` },
    { label: L.hash, value: d.ledger.headHash, mono: true, size: 8.5 },
  ], { labelWidth: 0.25, size: 10 });
}

function summary(doc: Doc, d: AuditReportData, L: Labels): void {
  const s = d.summary;
  const lang = d.lang;
  heading(doc, L.secSummary);
  const broken = d.ledger.firstBroken;
  kvTable(doc, [
    { label: L.inTime, value: ratio(L, lang, s.plansTestedInTime, s.plans), bold: true, color: s.plansTestedInTime < s.plans ? BAD : GOOD },
    { label: L.passRate, value: `${formatPercent(s.passRate, lang)} (${fill(L.xOfY, { x: s.passed, y: s.performed })})`, bold: true },
    { label: L.rtoCompliance, value: fill(L.xOfYMeasured, { x: s.rtoMet, y: s.rtoMeasured }), color: s.rtoMet < s.rtoMeasured ? BAD : COLORS.text },
    { label: L.rpoCompliance, value: fill(L.xOfYMeasured, { x: s.rpoMet, y: s.rpoMeasured }), color: s.rpoMet < s.rpoMeasured ? BAD : COLORS.text },
    { label: L.overdue, value: String(s.overduePlans), color: s.overduePlans ? BAD : COLORS.text },
    { label: L.openMeasures, value: String(s.openMeasures), color: s.openMeasures ? BAD : COLORS.text },
    { label: L.runsInPeriod, value: fill(L.runCounts, { runs: s.runs, passed: s.passed, failed: s.failed, errors: s.errors, cancelled: s.cancelled }) },
    ...(s.byKind ? [{ label: L.byKind, value: tallyText(L, s.byKind, false) }] : []),
    {
      label: L.ledgerOk, bold: true, color: d.ledger.verified ? GOOD : BAD,
      value: `${d.ledger.verified ? L.yes : L.no} (${d.ledger.records} ${d.ledger.records === 1 ? L.record : L.records})${broken ? `\n${fill(L.firstBroken, { seq: broken.seq, reason: broken.reason })}` : ''}`,
    },
    { label: L.ledgerHead, value: `${L.seq} ${d.ledger.headSeq}` },
    { label: L.hash, value: d.ledger.headHash, mono: true, size: 7.5 },
  ], { labelWidth: 0.38, size: 9 });
}

function controls(doc: Doc, d: AuditReportData, L: Labels): void {
  heading(doc, L.secControls);
  const rows: AuditReportData['controls'] = d.controls.length ? d.controls : controlRows(d.lang);
  // framework above the number: "BSI IT-Grundschutz\nCON.3.A15"
  const id = (s: string) => {
    const c = findControl(s);
    return c ? `${c.framework}\n${c.ref}` : s;
  };
  table(doc, [{ header: L.control, width: 1.5 }, { header: L.title, width: 2.3 }, { header: L.evidence, width: 2.7 }, { header: L.testsInPeriod, width: 2.1 }],
    rows.map((c) => [{ text: id(c.id), bold: true }, c.title, c.evidence, tallyText(L, c.tests ?? null, true)]), { size: 7.5 });
}

const KIND_ORDER: PlanKindName[] = ['restore', 'external', 'manual', 'exercise'];

/** Per kind with plans: "Sandbox: 3 plans, 40 tests (38 passed, 1 failed, 1 error)"; short: "Sandbox 40 (✔38 ✖1 ⚠1)". */
function tallyText(L: Labels, t: Record<PlanKindName, KindTally> | null, short: boolean): string {
  if (!t) return L.noPlanNamesIt;
  const name = { restore: L.kindRestore, external: L.kindExternal, manual: L.kindManual, exercise: L.kindExercise };
  const lines = KIND_ORDER.filter((k) => t[k].plans > 0).map((k) => (short
    ? `${name[k]}: ${t[k].runs} (✔${t[k].passed} ✖${t[k].failed} ⚠${t[k].errors})`
    : fill(L.kindTally, { kind: name[k], plans: t[k].plans, runs: t[k].runs, passed: t[k].passed, failed: t[k].failed, errors: t[k].errors })));
  return lines.join('\n') || L.noPlanNamesIt;
}

/** The systems by restart tier, with the tier-1 systems that lack a recent passed test of any kind named first. */
function restartOrder(doc: Doc, d: AuditReportData, L: Labels): void {
  const rows = d.restartOrder ?? [];
  if (!rows.length) return;
  heading(doc, L.secRestart);
  const lacking = rows.filter((r) => r.lacksRecentPass);
  paragraph(doc, lacking.length ? fill(L.tier1Lacking, { names: lacking.map((r) => r.name).join(', ') }) : L.tier1AllTested, { bold: true, color: lacking.length ? BAD : GOOD });
  table(doc, [
    { header: L.tier, width: 0.7 }, { header: L.system, width: 2.1 }, { header: L.owner2, width: 1.3 }, { header: L.handbook, width: 1.6 },
    { header: L.plansOf, width: 2 }, { header: L.lastPassedAny, width: 1.5 },
  ], rows.map((r) => [
    String(r.tier), `${r.name}${r.process ? `\n${r.process}` : ''}${r.protectionNeed ? ` · ${r.protectionNeed}` : ''}`, r.owner ?? '—', r.handbookRef ?? '—',
    r.plans.map((p) => p.title).join('\n') || L.noPlan,
    { text: r.lastPassed ? formatDateTime(r.lastPassed.at, d.lang) : '—', color: r.lacksRecentPass ? BAD : COLORS.text, bold: r.lacksRecentPass },
  ]), { size: 7.5 });
}

/** Restart tests of the period: process, verdict, time until working again against the process's RTO, tiers. */
function restartTests(doc: Doc, d: AuditReportData, L: Labels): void {
  const rows = d.restartTests ?? [];
  if (!rows.length) return;
  heading(doc, L.secRestartTests);
  paragraph(doc, L.restartTestsIntro);
  table(doc, [
    { header: L.process, width: 1.4 }, { header: L.finishedAt, width: 1.2 }, { header: L.verdict, width: 1 },
    { header: L.restartTime, width: 1.3 }, { header: L.tiersOf, width: 2.6 }, { header: L.notRestarted, width: 1.5 },
  ], rows.map((r) => [
    r.process, formatDateTime(r.finishedAt, d.lang), { text: verdictLabel(r.verdict, d.lang), color: r.verdict === 'passed' ? GOOD : BAD, bold: r.verdict !== 'passed' },
    { text: `${formatSeconds(r.rto.measuredSeconds, d.lang)} / ${r.rto.targetSeconds === null ? '—' : formatSeconds(r.rto.targetSeconds, d.lang)}`, color: r.rto.met === false ? BAD : COLORS.text },
    r.tiers.map((tr) => `${L.tier} ${tr.tier}: ${tr.systems.join(', ')} (${tr.seconds === null ? tr.state : formatSeconds(tr.seconds, d.lang)})`).join('\n'),
    r.notTested.join(', ') || '—',
  ]), { size: 7.5 });
}

function systems(doc: Doc, d: AuditReportData, L: Labels): void {
  const lang = d.lang;
  heading(doc, L.secSystems);
  const over = (last: number | null, target: number) => (last != null && last > target ? BAD : COLORS.text);
  const bad = new Set(['failing', 'overdue', 'never-tested']);
  if (!d.systems.length) { paragraph(doc, '—'); return; }
  // widths follow the longest usual content at 7.5 pt (e.g. "Dokumentenmanagement", "fehlgeschlagen")
  table(doc, [
    { header: `${L.plan} / ${L.system}`, width: 106 }, { header: L.lastRto, width: 71 }, { header: L.lastRpo, width: 61 },
    { header: L.lastTest, width: 76 }, { header: L.nextDue, width: 66 }, { header: L.status, width: 64 }, { header: L.counts, width: 46 },
  ], d.systems.map((s) => [
    `${s.title}${s.system ? `\n${s.system}` : ''}\n${s.kindLabel}`,
    { text: `${formatSeconds(s.rtoTargetSeconds, lang)}\n${formatSeconds(s.rtoLastSeconds, lang)}`, color: over(s.rtoLastSeconds, s.rtoTargetSeconds) },
    { text: `${formatSeconds(s.rpoTargetSeconds, lang)}\n${formatSeconds(s.backupAgeLastSeconds, lang)}`, color: over(s.backupAgeLastSeconds, s.rpoTargetSeconds) },
    { text: s.lastTestAt ? `${verdictLabel(s.lastVerdict, lang)}\n${formatDateTime(s.lastTestAt, lang)}` : '—', color: verdictColor(s.lastVerdict) },
    formatDateTime(s.nextDueAt, lang),
    { text: planStatusLabel(s.status, lang), color: bad.has(s.status) ? BAD : COLORS.text },
    `${s.runs}\n${s.passed}/${s.failed}/${s.errors}`,
  ]), { size: 7.5 });
  paragraph(doc, L.countsNote, { size: 7.5, color: COLORS.muted });
}

function marker(doc: Doc, v: VerdictName, x: number, y: number): void {
  if (v === 'passed') doc.circle(x, y, 1.9);
  else if (v === 'failed') doc.rect(x - 1.9, y - 1.9, 3.8, 3.8);
  else if (v === 'error') doc.polygon([x, y - 2.4], [x + 2.4, y], [x, y + 2.4], [x - 2.4, y]);
  else doc.polygon([x - 2.2, y + 1.8], [x + 2.2, y + 1.8], [x, y - 2.2]);
}

function legend(doc: Doc, lang: Lang, L: Labels): void {
  ensureSpace(doc, 16);
  let x = doc.page.margins.left;
  const y = doc.y + 5;
  doc.font(font.sans).fontSize(7.5);
  for (const v of VERDICTS) {
    marker(doc, v, x + 3, y);
    doc.fill(verdictColor(v));
    const t = verdictLabel(v, lang);
    doc.fillColor(COLORS.text).text(t, x + 9, y - 4, { lineBreak: false });
    x += 9 + doc.widthOfString(t) + 14;
  }
  doc.moveTo(x, y).lineTo(x + 18, y).dash(3, { space: 2 }).lineWidth(0.9).strokeColor(COLORS.text).stroke().undash();
  doc.fillColor(COLORS.text).text(L.rtoTarget, x + 22, y - 4, { lineBreak: false });
  doc.x = doc.page.margins.left;
  doc.y = y + 10;
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 432000, 864000];

/** One small multiple: x = time over the period, y = seconds; vector marks only (no per-point text). */
function chart(doc: Doc, t: Trend, box: { x: number; y: number; w: number; h: number }, period: AuditReportData['period'], lang: Lang, L: Labels): void {
  const { x, y, w, h } = box;
  doc.rect(x, y, w, h).lineWidth(0.5).strokeColor(COLORS.rule).stroke();
  doc.font(font.bold).fontSize(8).fillColor(COLORS.text).text(fitText(doc, t.title, w - 12), x + 6, y + 5, { lineBreak: false });
  const px = x + 44;
  const pw = w - 44 - 10;
  const py = y + 30;
  const ph = h - 30 - 26;
  const t0 = Date.parse(period.from);
  const t1 = Math.max(Date.parse(period.to), t0 + 86_400_000);
  const maxV = Math.max(t.rtoTargetSeconds, ...t.points.map((p) => p.seconds), 1);
  const step = STEPS.find((s) => (maxV * 1.1) / s <= 4) ?? Math.ceil((maxV * 1.1) / 4);
  const yMax = Math.ceil((maxV * 1.1) / step) * step;
  const sx = (ms: number) => px + (Math.min(Math.max(ms, t0), t1) - t0) / (t1 - t0) * pw;
  const sy = (s: number) => py + ph - (s / yMax) * ph;

  doc.font(font.sans).fontSize(6.5).fillColor(COLORS.muted).text(L.axisDuration, x + 6, y + 19, { lineBreak: false });
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    doc.moveTo(px, sy(v)).lineTo(px + pw, sy(v)).lineWidth(0.3).strokeColor(v === 0 ? COLORS.muted : COLORS.rule).stroke();
    doc.fillColor(COLORS.muted).text(v === 0 ? '0' : formatSeconds(v, lang), x + 2, sy(v) - 3, { width: 40, align: 'right', lineBreak: false });
  }
  for (let i = 0; i <= 3; i++) {
    const ms = t0 + ((t1 - t0) * i) / 3;
    // the end of the axis is midnight after the last day: label it with that last day
    const label = formatShortDate(new Date(i === 3 ? ms - 1 : ms).toISOString(), lang);
    const lx = sx(ms);
    doc.moveTo(lx, py + ph).lineTo(lx, py + ph + 2).lineWidth(0.4).strokeColor(COLORS.muted).stroke();
    const bx = i === 0 ? lx - 4 : i === 3 ? lx - 56 : lx - 30;
    doc.fillColor(COLORS.muted).text(label, bx, py + ph + 4, { width: 60, align: i === 0 ? 'left' : i === 3 ? 'right' : 'center', lineBreak: false });
  }
  doc.fillColor(COLORS.muted).text(L.axisTime, px, py + ph + 13, { width: pw, align: 'center', lineBreak: false });

  doc.moveTo(px, sy(t.rtoTargetSeconds)).lineTo(px + pw, sy(t.rtoTargetSeconds)).dash(3, { space: 2 }).lineWidth(0.9).strokeColor(COLORS.text).stroke().undash();
  doc.fillColor(COLORS.text).text(`${L.rtoTarget}: ${formatSeconds(t.rtoTargetSeconds, lang)}`, px + pw - 150, y + 19, { width: 150, align: 'right', lineBreak: false });

  if (!t.points.length) {
    doc.font(font.sans).fontSize(8).fillColor(COLORS.muted).text(L.noPoints, px, py + ph / 2 - 4, { width: pw, align: 'center', lineBreak: false });
    return;
  }
  const pts = t.points.map((p) => ({ x: sx(Date.parse(p.at)), y: sy(p.seconds), v: p.verdict })).sort((a, b) => a.x - b.x);
  if (pts.length > 1) {
    doc.moveTo(pts[0]!.x, pts[0]!.y);
    for (const p of pts.slice(1)) doc.lineTo(p.x, p.y);
    doc.lineWidth(0.4).strokeColor('#9aa0a6').stroke();
  }
  for (const v of VERDICTS) {
    const group = pts.filter((p) => p.v === v);
    if (!group.length) continue;
    for (const p of group) marker(doc, v, p.x, p.y);
    doc.fill(verdictColor(v));
  }
}

function trends(doc: Doc, d: AuditReportData, L: Labels): void {
  heading(doc, L.secTrend);
  paragraph(doc, L.trendNote, { size: 8, color: COLORS.muted });
  if (!d.trend.length) { paragraph(doc, L.noPoints); return; }
  legend(doc, d.lang, L);
  const gap = 14;
  const w = (contentWidth(doc) - gap) / 2;
  const h = 150;
  for (let i = 0; i < d.trend.length; i += 2) {
    ensureSpace(doc, h + 8);
    const y = doc.y + 4;
    d.trend.slice(i, i + 2).forEach((t, j) => chart(doc, t, { x: doc.page.margins.left + j * (w + gap), y, w, h }, d.period, d.lang, L));
    doc.x = doc.page.margins.left;
    doc.y = y + h + 6;
  }
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text);
}

function deviationsAndMeasures(doc: Doc, d: AuditReportData, L: Labels): void {
  const lang = d.lang;
  const titles = new Map(d.systems.map((s) => [s.planId, s.title]));
  heading(doc, L.secDeviations);
  if (!d.deviations.length) paragraph(doc, L.noDeviations);
  else table(doc, [{ header: L.run, width: 1.1 }, { header: L.plan, width: 2 }, { header: L.decision, width: 1.5 }, { header: L.comment, width: 3 }, { header: L.reviewer, width: 1.3 }, { header: L.at, width: 1.4 }],
    d.deviations.map((x) => [{ text: x.runId.slice(0, 8), mono: true }, titles.get(x.planId) ?? x.planId, { text: decisionLabel(x.decision, lang), color: x.decision === 'rejected' ? BAD : COLORS.text }, x.comment || '—', x.reviewer, formatDateTime(x.at, lang)]), { size: 7.5 });
  heading(doc, L.secMeasures);
  const today = d.generatedAt.slice(0, 10);
  if (!d.measures.length) paragraph(doc, L.noMeasures);
  else table(doc, [{ header: L.measure, width: 3 }, { header: L.plan, width: 2 }, { header: L.owner, width: 1.5 }, { header: L.due, width: 1.1 }, { header: L.status, width: 1 }, { header: L.closedBy, width: 1.4 }],
    d.measures.map((m) => [m.title, titles.get(m.planId) ?? m.planId, m.owner,
      { text: formatDate(m.dueDate, lang), color: m.status !== 'done' && m.dueDate < today ? BAD : COLORS.text },
      { text: measureStatusLabel(m.status, lang), bold: m.status !== 'done' },
      m.closedByRunId ? `${m.closedByRunId.slice(0, 8)}… ${formatDate(m.closedAt, lang)}` : '—']), { size: 7.5 });
}

function activityLog(doc: Doc, d: AuditReportData, L: Labels): void {
  if (!d.activity) return;
  heading(doc, L.secActivity);
  paragraph(doc, L.activityNote, { size: 8, color: COLORS.muted });
  if (!d.activity.length) { paragraph(doc, L.noActivity); return; }
  table(doc, [{ header: L.at, width: 1.5 }, { header: L.activityAction, width: 1.8 }, { header: L.actor, width: 2.5 }, { header: L.activitySubject, width: 2.5 }, { header: L.seq, width: 1.1 }],
    d.activity.map((a) => [formatDateTime(a.at, d.lang), a.action, a.actor, a.subject ?? '—', String(a.seq)]), { size: 7.5 });
}

function signOffAndAnnex(doc: Doc, d: AuditReportData, L: Labels): void {
  doc.addPage();
  heading(doc, L.secSignOff);
  paragraph(doc, L.signOffText);
  doc.moveDown(1);
  signatureBlock(doc, [L.roleIt, L.roleIsb], [L.name, L.role, L.date, L.signature]);
  doc.addPage();
  heading(doc, L.secAnnex);
  paragraph(doc, L.annexIntro);
  doc.moveDown(0.3);
  kvTable(doc, [
    {
      label: L.ledgerOk, bold: true, color: d.ledger.verified ? GOOD : BAD,
      value: `${d.ledger.verified ? L.yes : L.no}${d.ledger.firstBroken ? `\n${fill(L.firstBroken, { seq: d.ledger.firstBroken.seq, reason: d.ledger.firstBroken.reason })}` : ''}`,
    },
    { label: L.recordCount, value: String(d.ledger.records) },
    { label: L.ledgerHead, value: `${L.seq} ${d.ledger.headSeq}` },
    { label: L.hash, value: d.ledger.headHash, mono: true },
  ], { labelWidth: 0.25 });
  heading(doc, L.keys, 2);
  keysAndCheckpoint(doc, d.lang, d.keys, d.checkpoint);
  heading(doc, L.howTo, 2);
  howToVerify(doc, d.lang, { hash: d.ledger.headHash });
}

export async function renderAuditReportPdf(data: AuditReportData): Promise<Buffer> {
  const lang: Lang = data.lang === 'en' ? 'en' : 'de';
  const d: AuditReportData = { ...data, lang };
  const L = labels(lang);
  const doc = createDoc({
    lang, title: L.auditTitle, subject: `${L.auditSubject}: ${periodText(d)}`,
    tenant: d.tenant.name, generatedAt: d.generatedAt, shortHash: d.ledger.headHash ? d.ledger.headHash.slice(0, 12) : null,
  });
  cover(doc, d, L);
  doc.addPage();
  summary(doc, d, L);
  controls(doc, d, L);
  systems(doc, d, L);
  restartOrder(doc, d, L);
  restartTests(doc, d, L);
  trends(doc, d, L);
  deviationsAndMeasures(doc, d, L);
  activityLog(doc, d, L);
  signOffAndAnnex(doc, d, L);
  return renderToBuffer(doc);
}
