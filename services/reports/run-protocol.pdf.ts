import type { RunProtocolData, VerdictName } from './report.types.js';
import { findControl } from './controls.js';
import {
  builtinLabel, checkStatusLabel, decisionLabel, exerciseFormatLabel, fill, formatBytes, formatDateTime, formatDate, formatNumber, formatSeconds, labels,
  measureStatusLabel, phaseLabel, severityLabel, triggerLabel, verdictLabel, type Labels,
} from './i18n.js';
import {
  COLORS, contentWidth, createDoc, ensureSpace, font, heading, howToVerify, keysAndCheckpoint, kvTable, monoBox, paragraph,
  renderToBuffer, signatureBlock, table, verdictColor, type Doc, type KV,
} from './pdf-common.js';

/**
 * The Wiederherstellungsprotokoll: everything one restore test proves, from
 * the backup's identity to the signed ledger record, readable on paper.
 */
const TINT: Record<VerdictName, string> = { passed: '#e7f4ea', failed: '#fbe9e7', error: '#fff1de', cancelled: '#eeeff0' };
const STATUS_COLOR: Record<string, string> = { passed: COLORS.verdict.passed, failed: COLORS.verdict.failed, error: COLORS.verdict.failed, skipped: COLORS.verdict.error, warning: COLORS.verdict.error, interrupted: COLORS.verdict.error };

type Run = RunProtocolData['run'];
type Lang = RunProtocolData['lang'];

function targetLine(L: Labels, lang: Lang, measured: number | null, target: number, met: boolean | null): string {
  const result = met == null ? L.notMeasured : met ? L.met : L.notMet;
  return `${L.measured} ${measured == null ? '—' : formatSeconds(measured, lang)} · ${L.target} ${formatSeconds(target, lang)} · ${result}`;
}

function verdictBanner(doc: Doc, d: RunProtocolData, L: Labels): void {
  const v = d.run.verdict;
  const text = `${L.verdict}: ${v ? verdictLabel(v, d.lang) : L.noVerdict}`;
  const left = doc.page.margins.left;
  const w = contentWidth(doc);
  const rto = d.run.rto;
  const rpo = d.run.rpo;
  const lines = [
    `RTO: ${rto ? targetLine(L, d.lang, rto.measuredSeconds, rto.targetSeconds, rto.met) : L.notMeasured}`,
    `RPO: ${rpo ? targetLine(L, d.lang, rpo.backupAgeSeconds, rpo.targetSeconds, rpo.met) : L.notMeasured}`,
  ].join('\n');
  doc.font(font.bold).fontSize(v ? 20 : 15);
  const th = doc.heightOfString(text, { width: w - 24 });
  doc.font(font.sans).fontSize(9);
  const h = th + doc.heightOfString(lines, { width: w - 24 }) + 22;
  ensureSpace(doc, h + 8);
  const y = doc.y;
  doc.rect(left, y, w, h).fill(v ? TINT[v] : COLORS.zebra);
  doc.rect(left, y, 6, h).fill(verdictColor(v));
  doc.font(font.bold).fontSize(v ? 20 : 15).fillColor(verdictColor(v)).text(text, left + 16, y + 8, { width: w - 24 });
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text).text(lines, left + 16, doc.y + 4, { width: w - 24 });
  doc.x = left;
  doc.y = y + h + 6;
}

function identity(doc: Doc, d: RunProtocolData, L: Labels): void {
  const r = d.run;
  const p = d.plan;
  heading(doc, L.secIdentity);
  kvTable(doc, [
    { label: L.runId, value: r.id, mono: true },
    { label: L.plan, value: `${p.title} (${p.id})` },
    { label: L.planVersion, value: p.version, mono: true },
    { label: L.tenant, value: d.tenant.name },
    { label: L.trigger, value: `${triggerLabel(r.trigger, d.lang)} · ${L.triggeredBy} ${r.triggeredBy}` },
    { label: L.queuedAt, value: formatDateTime(r.queuedAt, d.lang) },
    { label: L.startedAt, value: formatDateTime(r.startedAt, d.lang) },
    { label: L.finishedAt, value: formatDateTime(r.finishedAt, d.lang) },
  ]);
  heading(doc, L.secSystem);
  const controls = p.controls.map((id) => {
    const c = findControl(id);
    return c ? `${c.framework} ${c.ref} – ${c.title[d.lang]}` : id;
  });
  kvTable(doc, [
    { label: L.system, value: p.system?.name ?? '—' },
    { label: L.process, value: p.system?.process ?? '—' },
    { label: L.protectionNeed, value: p.system?.protectionNeed ?? '—' },
    { label: L.controls, value: controls.join('\n') || '—' },
  ]);
}

function targets(doc: Doc, d: RunProtocolData, L: Labels): void {
  const { rto, rpo } = d.run;
  const row = (name: string, target: number | undefined, measured: number | null | undefined, met: boolean | null | undefined) => [
    name, formatSeconds(target, d.lang), measured == null ? L.notMeasured : formatSeconds(measured, d.lang),
    { text: met == null ? L.notMeasured : met ? L.met : L.notMet, bold: true, color: met == null ? COLORS.muted : met ? COLORS.verdict.passed : COLORS.verdict.failed },
  ];
  heading(doc, L.secTargets);
  table(doc, [{ header: '', width: 3 }, { header: L.target, width: 1.3 }, { header: L.measured, width: 1.3 }, { header: L.verdict, width: 1.4 }], [
    row(L.rto, rto?.targetSeconds ?? d.plan.targets.rtoSeconds, rto?.measuredSeconds, rto?.met),
    row(L.rpo, rpo?.targetSeconds ?? d.plan.targets.rpoSeconds, rpo?.backupAgeSeconds, rpo?.met),
  ]);
}

function backupAndSandbox(doc: Doc, d: RunProtocolData, L: Labels): void {
  const b = d.run.backup;
  heading(doc, L.secBackup);
  if (!b) paragraph(doc, '—');
  else {
    kvTable(doc, [
      { label: L.path, value: b.path, mono: true },
      { label: L.format, value: b.format ?? '—' },
      // absent when the run ended before the backup was read whole
      { label: L.size, value: b.sizeBytes === undefined ? '—' : `${formatBytes(b.sizeBytes, d.lang)} (${formatNumber(b.sizeBytes, d.lang, 0)} Bytes)` },
      { label: 'SHA-256', value: b.sha256 ?? '—', mono: true },
      { label: L.createdAt, value: formatDateTime(b.createdAt, d.lang) },
      b.snapshotId ? { label: L.snapshot, value: b.snapshotId, mono: true }
        : b.archive ? { label: L.archive, value: b.archive, mono: true }
          : { label: L.dumpVersion, value: b.dumpVersion ?? '—' },
      { label: L.backupAge, value: formatSeconds(d.run.rpo?.backupAgeSeconds, d.lang) },
    ]);
  }
  const s = d.run.sandbox;
  heading(doc, L.secSandbox);
  if (!s) { paragraph(doc, L.noSandbox); return; }
  const limits = [
    s.memoryBytes != null ? `${L.memory} ${formatBytes(s.memoryBytes, d.lang)}` : null,
    s.cpus != null ? `${L.cpus} ${formatNumber(s.cpus, d.lang)}` : null,
    s.pids != null ? `${L.pids} ${s.pids}` : null,
  ].filter(Boolean).join(' · ');
  const rows: KV[] = [
    { label: L.image, value: s.image ?? '—', mono: true },
    { label: L.imageId, value: s.imageId ?? '—', mono: true },
    { label: L.network, value: s.network ?? '—', bold: s.network === 'none' },
    { label: L.capDrop, value: s.capDrop?.join(', ') || '—' },
    { label: L.capAdd, value: s.capAdd?.join(', ') || L.none },
    { label: L.limits, value: limits || '—' },
    { label: L.transfer, value: s.transfer ?? '—' },
    { label: L.containerId, value: s.containerId ?? '—', mono: true },
  ];
  const t = s.teardown;
  rows.push(t
    ? { label: L.teardown, value: fill(L.teardownText, { at: formatDateTime(t.removedAt, d.lang), ok: t.verified ? L.yes : L.no }), color: t.verified ? COLORS.text : COLORS.verdict.failed }
    : { label: L.teardown, value: '—' });
  kvTable(doc, rows);
}

interface ManualStepData { name: string; status: string; message?: string; step: { result: string | null; at: string | null; by: string | null; restoresService?: boolean; attachments?: { name: string; sha256: string }[] } }

/** A manual test's course: each step with its result, time, person, note and evidence (the files by name and hash). */
function manualSteps(doc: Doc, d: RunProtocolData, L: Labels): void {
  const r = d.run;
  heading(doc, L.secSteps);
  const steps = r.checks as unknown as ManualStepData[];
  table(doc, [
    { header: L.stepCol, width: 2.2 }, { header: L.stepResult, width: 1.4 }, { header: L.stepAt, width: 1.5 }, { header: L.stepBy, width: 1.6 },
    { header: L.stepNote, width: 1.9 }, { header: L.stepEvidence, width: 2 },
  ], steps.map((c) => [
    `${c.name}${c.step.restoresService ? ' (RTO)' : ''}`,
    { text: c.step.result === 'ok' ? L.stepOk : c.step.result === 'deviation' ? L.stepDeviation : c.step.result === 'not-done' ? L.stepNotDone : L.stepOpen, bold: true, color: STATUS_COLOR[c.status] },
    formatDateTime(c.step.at, d.lang), c.step.by ?? '—', c.step.result ? c.message ?? '' : '',
    (c.step.attachments ?? []).map((a) => `${a.name}\nSHA-256 ${a.sha256.slice(0, 16)}…`).join('\n') || '—',
  ]));
  paragraph(doc, L.manualRtoNote, { size: 7.5, color: COLORS.muted });
  if (r.restore?.completedBy) {
    kvTable(doc, [
      { label: L.completedBy, value: `${r.restore.completedBy} · ${formatDateTime(r.finishedAt, d.lang)}` },
      ...(r.restore.note ? [{ label: L.closingNote, value: r.restore.note }] : []),
    ]);
  }
}

interface ObservationData { status: string; message: string; observation: { kind: string; at: string; by: string; measure?: { title: string; owner: string; dueDate: string } } }

/** An exercise: its form, scenario and participants, then what was observed when, by whom, and the measure each finding became. */
function exercise(doc: Doc, d: RunProtocolData, L: Labels): void {
  const r = d.run;
  const facts = r.restore as { exercise?: { scenario?: string; format?: string }; participants?: { name: string; role?: string }[]; completedBy?: string; note?: string } | null | undefined;
  heading(doc, L.secExercise);
  kvTable(doc, [
    { label: L.exerciseFormat, value: exerciseFormatLabel(facts?.exercise?.format, d.lang) },
    { label: L.scenario, value: facts?.exercise?.scenario ?? '—' },
    { label: L.participants, value: (facts?.participants ?? []).map((p) => `${p.name}${p.role ? ` – ${p.role}` : ''}`).join('\n') || '—' },
  ]);
  heading(doc, L.secObservations);
  const kinds: Record<string, string> = { note: L.obsNote, finding: L.obsFinding, 'service-restored': L.obsRestored };
  const list = r.checks as unknown as ObservationData[];
  if (!list.length) paragraph(doc, '—');
  else table(doc, [{ header: L.stepAt, width: 1.5 }, { header: L.obsKind, width: 1.3 }, { header: L.stepBy, width: 1.5 }, { header: L.obsText, width: 3 }, { header: L.obsMeasure, width: 2.3 }],
    list.map((o) => [formatDateTime(o.observation.at, d.lang), { text: kinds[o.observation.kind] ?? o.observation.kind, bold: true, color: STATUS_COLOR[o.status] }, o.observation.by, o.message,
      o.observation.measure ? `${o.observation.measure.title} (${o.observation.measure.owner}, ${formatDate(o.observation.measure.dueDate, d.lang)})` : '—']));
  paragraph(doc, L.exerciseRtoNote, { size: 7.5, color: COLORS.muted });
  if (facts?.completedBy) {
    kvTable(doc, [
      { label: L.completedBy, value: `${facts.completedBy} · ${formatDateTime(r.finishedAt, d.lang)}` },
      ...(facts.note ? [{ label: L.closingNote, value: facts.note }] : []),
    ]);
  }
}

function stepsChecksFindings(doc: Doc, d: RunProtocolData, L: Labels): void {
  const r: Run = d.run;
  if (r.origin === 'exercise') {
    exercise(doc, d, L);
    findingsTable(doc, d, L);
    return;
  }
  if (r.origin === 'manual') {
    manualSteps(doc, d, L);
    findingsTable(doc, d, L);
    return;
  }
  heading(doc, L.secPhases);
  table(doc, [{ header: L.phase, width: 2.2 }, { header: L.start, width: 2 }, { header: L.duration, width: 1.4, align: 'right' }, { header: L.status, width: 1.4 }],
    r.phases.map((p) => [phaseLabel(p.name, d.lang), formatDateTime(p.startedAt, d.lang), formatSeconds(p.durationMs / 1000, d.lang),
      { text: checkStatusLabel(p.status, d.lang), color: STATUS_COLOR[p.status] }]));
  paragraph(doc, L.rtoNote, { size: 7.5, color: COLORS.muted });

  heading(doc, L.secChecks);
  if (!r.checks.length) paragraph(doc, L.noChecks);
  else table(doc, [
    { header: L.check, width: 2.2 }, { header: L.kind, width: 1 }, { header: L.expected, width: 1.3 }, { header: L.actual, width: 1.3 },
    { header: L.status, width: 1.2 }, { header: L.message, width: 2.4 },
  ], r.checks.map((c) => [c.name, c.kind, c.expected, c.actual ?? '—', { text: checkStatusLabel(c.status, d.lang), bold: true, color: STATUS_COLOR[c.status] }, c.message]));

  const builtin = r.restore?.builtin ?? [];
  if (builtin.length) {
    heading(doc, L.secBuiltin);
    table(doc, [{ header: L.check, width: 2.2 }, { header: L.status, width: 1.2 }, { header: L.actual, width: 2.4 }, { header: L.message, width: 3.6 }],
      builtin.map((b) => [builtinLabel(b.name, d.lang), { text: checkStatusLabel(b.status, d.lang), bold: true, color: STATUS_COLOR[b.status] }, b.actual || '—', b.message]));
    const base = r.restore?.baselineRunId;
    paragraph(doc, base ? fill(L.builtinBaseline, { run: base.slice(0, 8), source: r.restore?.baselineSource ?? '' }) : L.builtinNoBaseline, { size: 7.5, color: COLORS.muted });
  }

  findingsTable(doc, d, L);
}

function findingsTable(doc: Doc, d: RunProtocolData, L: Labels): void {
  const r = d.run;
  heading(doc, L.secFindings);
  if (!r.findings.length) paragraph(doc, L.noFindings);
  else table(doc, [{ header: L.code, width: 2 }, { header: L.severity, width: 1.6 }, { header: L.message, width: 5 }],
    r.findings.map((f) => [{ text: f.code, mono: true }, { text: severityLabel(f.severity, d.lang), color: f.severity === 'failure' || f.severity === 'error' ? COLORS.verdict.failed : COLORS.text }, f.message]));
}

function reviewAndMeasures(doc: Doc, d: RunProtocolData, L: Labels): void {
  heading(doc, L.secReview);
  if (!d.reviews.length) {
    paragraph(doc, L.noReview);
    doc.moveDown(0.4);
    signatureBlock(doc, [L.reviewer], [L.name, L.date, L.signature]);
  }
  const colour = { approved: COLORS.verdict.passed, 'approved-with-deviations': COLORS.verdict.error, rejected: COLORS.verdict.failed };
  for (const rv of d.reviews) {
    kvTable(doc, [
      { label: L.decision, value: decisionLabel(rv.decision, d.lang), bold: true, color: colour[rv.decision] },
      { label: L.reviewer, value: rv.reviewer },
      { label: L.at, value: formatDateTime(rv.at, d.lang) },
      { label: L.comment, value: rv.comment || '—' },
      { label: L.recordHash, value: rv.recordHash, mono: true },
    ]);
    if (rv.reviewer === d.run.triggeredBy) paragraph(doc, L.sameReviewer, { bold: true, color: COLORS.verdict.failed });
  }
  heading(doc, L.secMeasures);
  if (!d.measures.length) paragraph(doc, L.noMeasures);
  else table(doc, [{ header: L.measure, width: 3 }, { header: L.owner, width: 1.4 }, { header: L.due, width: 1.2 }, { header: L.status, width: 1 }, { header: L.closedBy, width: 1.6 }],
    d.measures.map((m) => [m.title, m.owner, formatDate(m.dueDate, d.lang), { text: measureStatusLabel(m.status, d.lang), bold: m.status !== 'done' },
      m.closedByRunId ? { text: `${m.closedByRunId.slice(0, 8)}… (${formatDate(m.closedAt, d.lang)})`, mono: false } : '—']));
}

function evidence(doc: Doc, d: RunProtocolData, L: Labels): void {
  heading(doc, L.secEvidence);
  const rec = d.record;
  if (!rec) paragraph(doc, L.noRecord, { color: COLORS.verdict.error });
  else {
    const key = d.keys.find((k) => k.keyId === rec.keyId);
    kvTable(doc, [
      { label: L.seq, value: String(rec.seq) },
      { label: L.createdAt, value: `${formatDateTime(rec.createdAt, d.lang)} (${rec.createdAt})` },
      { label: L.retainUntil, value: formatDate(rec.retainUntil, d.lang) },
      { label: L.hash, value: rec.hash, mono: true },
      { label: L.prevHash, value: rec.prevHash, mono: true },
      { label: L.keyId, value: rec.keyId, mono: true },
      { label: L.fingerprint, value: key?.fingerprint ?? '—', mono: true },
    ], { labelWidth: 0.25 });
    paragraph(doc, L.sigB64, { size: 8.5, color: COLORS.muted });
    monoBox(doc, rec.signature);
  }
  if (d.attachments.length) {
    heading(doc, L.secAttachments, 2);
    table(doc, [{ header: L.attachmentName, width: 2.6 }, { header: L.size, width: 1 }, { header: 'SHA-256', width: 5 }],
      d.attachments.map((a) => [a.name, formatBytes(a.sizeBytes, d.lang), { text: a.sha256, mono: true }]));
  }
  heading(doc, L.keys, 2);
  keysAndCheckpoint(doc, d.lang, d.keys, d.checkpoint);
  heading(doc, L.howTo, 2);
  howToVerify(doc, d.lang, { hash: rec?.hash, runId: d.run.id });
}

export async function renderRunProtocolPdf(data: RunProtocolData): Promise<Buffer> {
  const lang: Lang = data.lang === 'en' ? 'en' : 'de';
  const d: RunProtocolData = { ...data, lang };
  const L = labels(lang);
  const doc = createDoc({
    lang, title: L.runTitle, subject: `${L.runSubject}: ${d.plan.title}`, tenant: d.tenant.name,
    generatedAt: d.generatedAt, shortHash: d.record ? d.record.hash.slice(0, 12) : null,
  });
  doc.font(font.bold).fontSize(18).fillColor(COLORS.text).text(L.runTitle);
  doc.font(font.sans).fontSize(11).text(`${d.plan.title}${d.plan.system?.name ? ` · ${d.plan.system.name}` : ''}`);
  doc.fontSize(8.5).fillColor(COLORS.muted).text(`${L.runId} ${d.run.id} · ${formatDateTime(d.run.startedAt ?? d.run.queuedAt, lang)}`);
  doc.moveDown(0.6);
  verdictBanner(doc, d, L);
  identity(doc, d, L);
  targets(doc, d, L);
  backupAndSandbox(doc, d, L);
  stepsChecksFindings(doc, d, L);
  reviewAndMeasures(doc, d, L);
  evidence(doc, d, L);
  return renderToBuffer(doc);
}
