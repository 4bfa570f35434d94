import type { Occurrence, ProgrammePlan } from '../calendar/programme.js';
import { wallClock } from '../util/calendar.js';
import { berlinTime, toCsv } from './csv.js';
import { fill, formatDateTime, REPORT_TIME_ZONE } from './i18n.js';
import { COLORS, createDoc, font, heading, paragraph, renderToBuffer, table, type Doc } from './pdf-common.js';
import type { Lang } from './report.types.js';

/** The year's programme as the exports and the page take it. */
export interface ProgrammeData {
  lang: Lang;
  year: number;
  tenant: { name: string };
  generatedAt: string;
  plans: ProgrammePlan[];
}

const T = {
  de: {
    title: 'Testprogramm', subject: 'Geplante und durchgeführte Wiederherstellungstests und Übungen',
    plan: 'Plan', kind: 'Art', cadence: 'Rhythmus', status: 'Stand',
    months: ['Jan', 'Feb', 'Mär', 'Apr', 'Mai', 'Jun', 'Jul', 'Aug', 'Sep', 'Okt', 'Nov', 'Dez'],
    kinds: { restore: 'Sandbox', external: 'extern', manual: 'manuell', exercise: 'Übung' } as Record<string, string>,
    every: 'alle', schedule: 'Zeitplan', none: 'kein Rhythmus', paused: 'pausiert',
    statuses: { failing: 'fehlgeschlagen', overdue: 'überfällig', 'never-tested': 'nie getestet', 'due-soon': 'bald fällig', ok: 'in Ordnung' } as Record<string, string>,
    legendTitle: 'Zeichen',
    legend: '✔ bestanden · ✖ nicht bestanden · ⚠ Fehler (nicht verifiziert) · ◷ geplante Termine des Zeitplans · ◯ Frist am Tag (◯15: am 15.) · ● Frist eingehalten · ◐ Frist verspätet eingehalten · ‼ Frist überschritten · * hochgerechnet',
    note: 'Fristen nach dem Rhythmus des Plans (requiredEvery): ab dem letzten bestandenen Test; künftige Fristen hochgerechnet, als ob jeder Test an seiner Frist bestanden würde. Zeiten Europe/Berlin.',
    summary: '{plans} Pläne · {done} Tests durchgeführt ({passed} bestanden, {failed} nicht bestanden, {error} Fehler) · {overdue} Fristen überschritten · {planned} Fristen offen',
  },
  en: {
    title: 'Test programme', subject: 'Planned and performed restore tests and exercises',
    plan: 'Plan', kind: 'Kind', cadence: 'Cadence', status: 'Status',
    months: ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'],
    kinds: { restore: 'sandbox', external: 'external', manual: 'manual', exercise: 'exercise' } as Record<string, string>,
    every: 'every', schedule: 'schedule', none: 'no cadence', paused: 'paused',
    statuses: { failing: 'failing', overdue: 'overdue', 'never-tested': 'never tested', 'due-soon': 'due soon', ok: 'ok' } as Record<string, string>,
    legendTitle: 'Marks',
    legend: '✔ passed · ✖ failed · ⚠ error (not verified) · ◷ scheduled slots · ◯ due date on the day (◯15: on the 15th) · ● due date met · ◐ due date met late · ‼ due date missed · * projected',
    note: 'Due dates by the plan\'s cadence (requiredEvery): from the last passed test; later ones projected as if each test passed on its due date. Times Europe/Berlin.',
    summary: '{plans} plans · {done} tests performed ({passed} passed, {failed} failed, {error} error) · {overdue} due dates missed · {planned} due dates open',
  },
};

export const programmeText = (lang: Lang) => T[lang === 'en' ? 'en' : 'de'];

const DUE_MARK: Record<string, string> = { planned: '◯', done: '●', late: '◐', overdue: '‼' };
const RUN_MARK: Record<string, string> = { passed: '✔', failed: '✖', error: '⚠' };
const DUE_WORDS: Record<Lang, Record<string, string>> = {
  de: { planned: 'offen', done: 'eingehalten', late: 'verspätet eingehalten', overdue: 'überschritten', projected: 'hochgerechnet' },
  en: { planned: 'open', done: 'met', late: 'met late', overdue: 'missed', projected: 'projected' },
};

/** One month of one plan, in marks: runs counted by verdict, scheduled slots counted, due dates with their day. */
export interface MonthCell { marks: string; words: string; worst: 'failed' | 'overdue' | 'error' | 'passed' | 'planned' | '' }

export function monthCells(p: ProgrammePlan, lang: Lang): MonthCell[] {
  const t = programmeText(lang);
  const months: Occurrence[][] = Array.from({ length: 12 }, () => []);
  for (const o of p.occurrences) months[wallClock(o.at, REPORT_TIME_ZONE).month - 1]!.push(o);
  return months.map((list) => {
    const marks: string[] = [];
    const words: string[] = [];
    for (const v of ['passed', 'failed', 'error'] as const) {
      const n = list.filter((o) => o.type === 'run' && o.state === v).length;
      if (n) {
        marks.push(`${RUN_MARK[v]}${n > 1 ? n : ''}`);
        words.push(`${n}× ${lang === 'en' ? v : { passed: 'bestanden', failed: 'nicht bestanden', error: 'Fehler' }[v]}`);
      }
    }
    const slots = list.filter((o) => o.type === 'scheduled').length;
    if (slots) {
      marks.push(`◷${slots > 1 ? slots : ''}`);
      words.push(`${slots}× ${t.schedule}`);
    }
    for (const d of list.filter((o) => o.type === 'due')) {
      const day = String(wallClock(d.at, REPORT_TIME_ZONE).day);
      marks.push(`${DUE_MARK[d.state] ?? '◯'}${day}${d.projected ? '*' : ''}`);
      words.push(`${lang === 'en' ? 'due' : 'Frist'} ${day}. (${DUE_WORDS[lang][d.state] ?? d.state}${d.projected ? `, ${DUE_WORDS[lang].projected}` : ''})`);
    }
    const has = (f: (o: Occurrence) => boolean) => list.some(f);
    const worst = has((o) => o.type === 'run' && o.state === 'failed') ? 'failed'
      : has((o) => o.type === 'due' && o.state === 'overdue') ? 'overdue'
        : has((o) => o.type === 'run' && o.state === 'error') ? 'error'
          : has((o) => o.type === 'run' && o.state === 'passed') ? 'passed'
            : list.length ? 'planned' : '';
    return { marks: marks.join(' '), words: words.join(', '), worst };
  });
}

export function cadenceText(p: ProgrammePlan, lang: Lang): string {
  const t = programmeText(lang);
  const parts = [p.requiredEvery ? `${t.every} ${p.requiredEvery}` : '', p.schedule ? `${t.schedule} ${p.schedule}${p.paused ? ` (${t.paused})` : ''}` : ''].filter(Boolean);
  return parts.join(', ') || t.none;
}

export function programmeSummary(plans: ProgrammePlan[]) {
  const all = plans.flatMap((p) => p.occurrences);
  const runs = all.filter((o) => o.type === 'run');
  return {
    plans: plans.length, done: runs.length,
    passed: runs.filter((o) => o.state === 'passed').length, failed: runs.filter((o) => o.state === 'failed').length, error: runs.filter((o) => o.state === 'error').length,
    overdue: all.filter((o) => o.type === 'due' && o.state === 'overdue').length,
    planned: all.filter((o) => o.type === 'due' && o.state === 'planned').length,
  };
}

/** One line per occurrence: plan, kind, type, state, time (UTC and Berlin), the run. */
export function programmeToCsv(d: ProgrammeData): string {
  const rows = d.plans.flatMap((p) => p.occurrences.map((o) => [
    p.planId, p.title, p.kind, p.system, o.type, o.state, o.projected ? true : false, o.at.toISOString(), berlinTime(o.at.toISOString()), o.runId ?? '',
  ]));
  return toCsv(['plan_id', 'title', 'kind', 'system', 'type', 'state', 'projected', 'at_utc', 'at_berlin', 'run_id'], rows);
}

/** The year on paper: one row per plan with its twelve months, a summary and the legend. PDF/A-2b like every report. */
export async function renderProgrammePdf(d: ProgrammeData): Promise<Buffer> {
  const lang: Lang = d.lang === 'en' ? 'en' : 'de';
  const t = programmeText(lang);
  const doc: Doc = createDoc({ lang, title: `${t.title} ${d.year}`, subject: t.subject, tenant: d.tenant.name, generatedAt: d.generatedAt, landscape: true });
  doc.font(font.bold).fontSize(18).fillColor(COLORS.text).text(`${t.title} ${d.year}`);
  doc.font(font.sans).fontSize(10).text(d.tenant.name);
  doc.fontSize(8.5).fillColor(COLORS.muted).text(formatDateTime(d.generatedAt, lang));
  doc.moveDown(0.5);
  paragraph(doc, fill(t.summary, programmeSummary(d.plans)), { bold: true });
  paragraph(doc, t.note, { size: 8, color: COLORS.muted });
  const colour = { failed: COLORS.verdict.failed, overdue: COLORS.verdict.failed, error: COLORS.verdict.error, passed: COLORS.verdict.passed, planned: COLORS.text, '': COLORS.muted };
  table(doc, [
    { header: t.plan, width: 2.6 }, { header: t.kind, width: 0.9 }, { header: t.cadence, width: 1.9 },
    ...t.months.map((m) => ({ header: m, width: 0.62 })),
  ], d.plans.map((p) => [
    `${p.title}\n${p.planId}${p.system ? ` · ${p.system}` : ''}`,
    t.kinds[p.kind] ?? p.kind,
    `${cadenceText(p, lang)}\n${t.statuses[p.status] ?? p.status}`,
    ...monthCells(p, lang).map((c) => ({ text: c.marks.replace(/ /g, '\n'), color: colour[c.worst], size: 7 })),
  ]), { size: 7.5 });
  heading(doc, t.legendTitle, 2);
  paragraph(doc, t.legend, { size: 8 });
  return renderToBuffer(doc);
}
