import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RunRow } from '../../../db/schema.js';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { runEvidenceStatus, type RunEvidenceStatus } from '../../evidence/run-evidence.js';
import { carriedOutBy } from '../../evidence/review.service.js';
import { html, type SafeHtml } from '../html.js';
import {
  builtinLabel, checkStatusLabel, dateTime, decisionLabel, fill, formatBytes, formatSeconds, reportLabels, severityLabel, triggerLabel, type Lang, type Strings,
} from '../i18n.js';
import { dl, errorSummary, input, notice, radios, table, textarea, type FormErrors, type FormValues } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, isDate, type Body } from '../forms.js';
import type { Web } from '../web.js';
import { phaseViews, statusText, type PhaseView } from './run.view.js';
import { runResult } from './plan.page.js';
import { exerciseSection, manualPages, manualSection, type ObservationForm, type StepForm } from './manual.page.js';

interface Check { name: string; kind?: string; status: string; expected?: unknown; actual?: unknown; message?: string }
interface Finding { code: string; severity: string; message: string }
interface Backup { path?: string; sizeBytes?: number; sha256?: string; createdAt?: string; format?: string; dumpVersion?: string }
interface Restore { tool?: { name?: string; exitCode?: number | null; stderrLines?: number }; tables?: number; nonEmptyTables?: number; files?: number; bytes?: number; dirs?: number; pitr?: Pitr }
/** Point-in-time recovery (decisions/020): the target and where replay ended. */
interface Pitr { target?: string; lastReplayedAt?: string | null; lastReplayedLsn?: string | null; stopped?: string; timeline?: number | null; base?: { timeline?: number | null } }
interface Rto { targetSeconds?: number; measuredSeconds?: number | null; met?: boolean | null }
interface Rpo { targetSeconds?: number; backupAgeSeconds?: number | null; met?: boolean | null }

const DECISIONS = ['approved', 'approved-with-deviations', 'rejected'] as const;
const LIVE_REFRESH_SECONDS = 10;
const mayReview = (role: string) => role === 'reviewer' || role === 'admin';
const mayCancel = (role: string) => role === 'operator' || role === 'admin';
const text = (v: unknown) => (v === undefined || v === null ? '–' : typeof v === 'string' ? v : JSON.stringify(v));

function timeline(phases: PhaseView[]): SafeHtml {
  return html`<ol class="timeline">${phases.map((p) => html`<li class="phase phase-${p.state}" data-phase="${p.name}"><span class="phase-mark" aria-hidden="true"></span><span class="phase-name">${p.label}</span>
<span class="phase-state">${p.stateText}</span> <span class="phase-start muted">${p.startText}</span> <span class="phase-duration">${p.durationText}</span></li>`)}</ol>`;
}

function checksTable(checks: Check[], s: Strings, lang: Lang) {
  if (checks.length === 0) return html`<p>${s.noChecks}</p>`;
  const head = html`<tr><th scope="col">${s.colCheck}</th><th scope="col">${s.colState}</th><th scope="col">${s.colExpected}</th><th scope="col">${s.colActual}</th><th scope="col">${s.colMessage}</th></tr>`;
  const rows = checks.map((c) => html`<tr><th scope="row">${c.name}${c.kind ? html` <span class="muted">(${c.kind})</span>` : ''}</th>
<td><span class="check check-${c.status}"><span aria-hidden="true" class="check-mark"></span>${checkStatusLabel(c.status, lang)}</span></td><td>${text(c.expected)}</td><td>${text(c.actual)}</td><td>${c.message ?? ''}</td></tr>`);
  return table('checks', s.checksCaption, head, rows);
}

interface Builtin { name: string; status: string; actual?: string; message?: string }

/** What the built-in checks found, and which run they compared with. */
function builtinTable(restore: { builtin?: Builtin[]; baselineRunId?: string | null; baselineSource?: string | null } | null, s: Strings, lang: Lang) {
  const list = restore?.builtin ?? [];
  if (list.length === 0) return html``;
  const head = html`<tr><th scope="col">${s.colCheck}</th><th scope="col">${s.colState}</th><th scope="col">${s.colActual}</th><th scope="col">${s.colMessage}</th></tr>`;
  const rows = list.map((b) => html`<tr><th scope="row">${builtinLabel(b.name, lang)}</th>
<td><span class="check check-${b.status}"><span aria-hidden="true" class="check-mark"></span>${checkStatusLabel(b.status, lang)}</span></td><td>${b.actual || '–'}</td><td>${b.message ?? ''}</td></tr>`);
  const base = restore?.baselineRunId;
  const note = base
    ? html`<p class="muted">${fill(s.builtinBaseline, { run: base.slice(0, 8), source: restore?.baselineSource ?? '' })} <a href="/runs/${base}">${base.slice(0, 8)}</a></p>`
    : html`<p class="muted">${s.builtinNoBaseline}</p>`;
  return html`<section aria-labelledby="bi-h"><h2 id="bi-h">${s.builtin}</h2>${table('builtin', s.builtinCaption, head, rows)}${note}</section>`;
}

function findingsTable(findings: Finding[], s: Strings, lang: Lang) {
  if (findings.length === 0) return html`<p>${s.noFindings}</p>`;
  const head = html`<tr><th scope="col">${s.colCode}</th><th scope="col">${s.colSeverity}</th><th scope="col">${s.colMessage}</th></tr>`;
  const rows = findings.map((f) => html`<tr><th scope="row" class="mono">${f.code}</th><td><span class="sev sev-${f.severity}">${severityLabel(f.severity, lang)}</span></td><td>${f.message}</td></tr>`);
  return table('findings', s.findingsCaption, head, rows);
}

function evidenceBlock(ev: RunEvidenceStatus | undefined, s: Strings, lang: Lang) {
  if (!ev) return html`<p>${s.noRecord}</p>`;
  const ok = (good: boolean, yes: string, no: string) => html`<span class="${good ? 'good' : 'bad'}"><span aria-hidden="true">${good ? '✔ ' : '✖ '}</span>${good ? yes : no}</span>`;
  return dl([
    [reportLabels(lang).seq, String(ev.seq)],
    [s.recordHash, html`<span class="mono break">${ev.hash}</span>`],
    [s.evidence, html`${ok(ev.hashOk, s.hashOk, s.hashBad)}; ${ok(ev.signatureOk, s.sigOk, ev.trustedKey ? s.sigBad : s.keyUntrusted)}`],
    [reportLabels(lang).keyId, html`<span class="mono">${ev.keyId}</span>${ev.fingerprint ? html`<br><span class="mono break small">${ev.fingerprint}</span>` : ''}`],
    [reportLabels(lang).retainUntil, ev.retainUntil],
  ]);
}

function logBlock(run: RunRow, ev: RunEvidenceStatus | undefined, s: Strings, lang: Lang) {
  const r = run.restore as Restore | null;
  const rows: [string, string][] = [];
  if (r?.tool) rows.push([s.tool, r.tool.name ?? '–'], [s.exitCode, text(r.tool.exitCode)], [s.stderrLines, text(r.tool.stderrLines)]);
  if (r?.tables !== undefined) rows.push([s.tables, `${r.tables}${r.nonEmptyTables !== undefined ? ` (${s.nonEmptyTables}: ${r.nonEmptyTables})` : ''}`]);
  if (r?.pitr) {
    const p = r.pitr;
    rows.push([s.pitrTarget, p.target === 'latest' ? s.pitrLatest : p.target ?? '–'],
      [s.pitrEnd, `${p.lastReplayedAt ?? '–'}${p.lastReplayedLsn ? ` (LSN ${p.lastReplayedLsn})` : ''}${p.stopped ? `; ${p.stopped}` : ''}`],
      [s.pitrTimeline, `${p.base?.timeline ?? '–'} → ${p.timeline ?? '–'}`]);
  }
  if (r?.files !== undefined) rows.push([s.restoredFiles, fill(s.restoredFilesValue, { files: String(r.files), bytes: formatBytes(r.bytes ?? 0, lang), dirs: String(r.dirs ?? 0) })]);
  const att = ev?.attachments ?? [];
  return html`<p class="hint">${s.logNote}</p>${rows.length ? dl(rows) : html`<p>${s.dash}</p>`}
${att.length ? html`<h3>${s.attachments}</h3><ul class="plain">${att.map((a) => html`<li><span class="mono">${a.name}</span>, ${formatBytes(a.sizeBytes, lang)}, SHA-256 <span class="mono break">${a.sha256}</span>${a.pruned ? html` (${s.pruned})` : ''}</li>`)}</ul>` : ''}`;
}

interface ReviewForm { values: FormValues; errors: FormErrors }

function reviewSection(ctx: PageCtx, run: RunRow, reviews: { decision: string; comment: string; reviewer: string; created_at: Date }[], form: ReviewForm | undefined) {
  const { s, lang } = ctx;
  const p = ctx.principal!;
  const list = reviews.length
    ? table('reviews', s.reviewsCaption, html`<tr><th scope="col">${s.colAt}</th><th scope="col">${s.decision}</th><th scope="col">${s.colReviewer}</th><th scope="col">${s.comment}</th></tr>`,
      reviews.map((r) => html`<tr><th scope="row">${dateTime(r.created_at, lang)}</th><td>${decisionLabel(r.decision, lang)}</td><td>${r.reviewer}</td><td>${r.comment}</td></tr>`))
    : html`<p>${s.noReviews}</p>`;
  let action: SafeHtml;
  if (run.status !== 'finished') action = html`<p>${s.reviewNotFinished}</p>`;
  else if (!mayReview(p.role)) action = html`<p class="muted">${s.reviewRole}</p>`;
  else if (carriedOutBy(run).has(p.name)) action = notice(s.fourEyes, 'warn');
  else {
    const v = form?.values ?? {};
    const e = form?.errors;
    const f = 'review';
    action = html`<form method="post" action="/runs/${run.id}/review" class="card" novalidate>
<h3>${s.reviewForm}</h3>${errorSummary(f, e, s)}${csrfField(ctx)}
${radios({ form: f, s, name: 'decision', label: s.decision, value: v.decision, errors: e, required: true, options: DECISIONS.map((d) => ({ value: d, label: decisionLabel(d, lang) })) })}
${textarea({ form: f, s, name: 'comment', label: s.comment, value: v.comment, errors: e, hint: s.commentHint, maxlength: 4000 })}
<fieldset class="group"><legend>${s.deviation}</legend><p class="hint">${s.devHint}</p>
${input({ form: f, s, name: 'devTitle', label: s.devTitle, value: v.devTitle, errors: e, maxlength: 500 })}
${input({ form: f, s, name: 'devOwner', label: s.devOwner, value: v.devOwner, errors: e, maxlength: 200 })}
${input({ form: f, s, name: 'devDue', label: s.devDue, type: 'date', value: v.devDue, errors: e })}
</fieldset>
<button type="submit" class="primary">${s.reviewForm}</button></form>`;
  }
  return html`<section aria-labelledby="rev-h"><h2 id="rev-h">${s.reviews}</h2>${list}${action}</section>`;
}

export async function runPages(app: FastifyInstance, web: Web): Promise<void> {
  async function render(req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, forms: { review?: ReviewForm; step?: StepForm; observation?: ObservationForm } = {}, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    const run = await web.runs.get(tenantId, req.params.id);
    const [plan, ev, reviews] = await Promise.all([
      web.plans.find(tenantId, run.plan_id), runEvidenceStatus(web.ledger, tenantId, run.id), web.reviews.listReviews(tenantId, run.id),
    ]);
    const title = fill(s.runTitle, { plan: plan?.title ?? run.plan_id });
    const phases = phaseViews(run, s, lang, web.now());
    // a manual test is being filled in on this very page: no reloading under the person's hands
    const manual = run.origin === 'manual';
    const live = run.status !== 'finished' && run.origin === 'ernstfall';
    const rto = run.rto as Rto | null;
    const rpo = run.rpo as Rpo | null;
    const backup = run.backup as Backup | null;
    const body = html`<p class="crumbs"><a href="/">${s.navDashboard}</a> › <a href="/plans/${encodeURIComponent(run.plan_id)}">${plan?.title ?? run.plan_id}</a> › ${fill(s.runOf, { id: run.id.slice(0, 8) })}</p>
<h1>${title}</h1>
<p class="muted">${fill(s.runOf, { id: run.id })} · ${triggerLabel(run.trigger, lang)}, ${s.triggeredBy} ${run.triggered_by}</p>
<section aria-labelledby="prog-h"${live ? html` data-live="/runs/${run.id}/live"` : ''}><h2 id="prog-h">${s.statusRegion}</h2>
<div class="status-line">${runResult(run, s, lang)}</div>
<p id="run-status" role="status" aria-live="polite">${statusText(run, phases, s, lang)}</p>
${live ? html`<p class="hint">${s.liveHint} <a href="/runs/${run.id}">${s.refresh}</a></p>` : ''}
${run.origin === 'ernstfall' ? html`<h3>${s.phases}</h3>${timeline(phases)}` : ''}
${run.status !== 'finished' && mayCancel(req.principal!.role) ? html`<form method="post" action="/runs/${run.id}/cancel">${csrfField(ctx)}<button type="submit" class="danger">${s.cancelRun}</button></form>` : ''}
</section>
${run.status === 'finished' ? html`<section aria-labelledby="res-h"><h2 id="res-h">${reportLabels(lang).secResult}</h2>${dl([
      ['RTO', fill(s.rtoLine, { measured: formatSeconds(rto?.measuredSeconds, lang), target: formatSeconds(rto?.targetSeconds, lang) })],
      ['RPO', fill(s.rpoLine, { age: formatSeconds(rpo?.backupAgeSeconds, lang), target: formatSeconds(rpo?.targetSeconds, lang) })],
    ])}
<p><a href="/api/v1/runs/${run.id}/protocol.pdf?lang=${lang}" download>${s.protocolPdf}</a></p></section>` : ''}
${run.origin === 'exercise' ? exerciseSection(ctx, run, forms.observation) : manual ? manualSection(ctx, run, await web.plans.version(tenantId, run.plan_id, run.plan_version_hash), forms.step)
    : html`<section aria-labelledby="chk-h"><h2 id="chk-h">${s.checks}</h2>${checksTable((run.checks as Check[]) ?? [], s, lang)}</section>`}
${builtinTable(run.restore as Parameters<typeof builtinTable>[0], s, lang)}
<section aria-labelledby="fnd-h"><h2 id="fnd-h">${s.findings}</h2>${findingsTable((run.findings as Finding[]) ?? [], s, lang)}</section>
${backup ? html`<section aria-labelledby="bak-h"><h2 id="bak-h">${s.backup}</h2>${dl([
      [reportLabels(lang).path, html`<span class="mono break">${backup.path ?? ''}</span>`], [reportLabels(lang).format, backup.format ?? ''],
      [reportLabels(lang).size, formatBytes(backup.sizeBytes, lang)], ['SHA-256', html`<span class="mono break">${backup.sha256 ?? ''}</span>`],
      [reportLabels(lang).createdAt, dateTime(backup.createdAt, lang)], [reportLabels(lang).dumpVersion, backup.dumpVersion ?? ''],
    ])}</section>` : ''}
<section aria-labelledby="log-h"><h2 id="log-h">${s.logExcerpt}</h2>${logBlock(run, ev, s, lang)}</section>
<section aria-labelledby="ev-h"><h2 id="ev-h">${s.evidence}</h2>${evidenceBlock(ev, s, lang)}</section>
${reviewSection(ctx, run, reviews, forms.review)}`;
    return web.send(reply, ctx, { title, active: 'dashboard', body, script: live, noscriptRefresh: live ? LIVE_REFRESH_SECONDS : undefined }, status);
  }

  app.get<{ Params: { id: string } }>('/runs/:id', { config: { page: true } }, (req, reply) => render(req, reply));

  // live progress for app.js: the same texts as the page, in the reader's language
  app.get<{ Params: { id: string } }>('/runs/:id/live', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const run = await web.runs.get(req.principal!.tenantId, req.params.id);
    const phases = phaseViews(run, ctx.s, ctx.lang, web.now());
    return reply.header('cache-control', 'no-store').send({
      id: run.id, status: run.status, verdict: run.verdict, finished: run.status === 'finished',
      statusText: statusText(run, phases, ctx.s, ctx.lang),
      phases: phases.map((p) => ({ name: p.name, state: p.state, stateText: p.stateText, startText: p.startText, durationText: p.durationText })),
    });
  });

  app.post<{ Params: { id: string } }>('/runs/:id/cancel', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const run = await web.runs.cancel(req.principal!.tenantId, req.params.id);
    await web.audit?.record({ ...auditFrom(req), action: 'run.cancelled', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, via: 'web' } });
    return web.redirect(reply, `/runs/${run.id}`);
  });

  app.post<{ Params: { id: string }; Body: Body }>('/runs/:id/review', { config: { page: true }, preValidation: requireRole('reviewer') }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const s = ctx.s;
    const b = req.body;
    const values: FormValues = {
      decision: field(b, 'decision'), comment: field(b, 'comment', 4000), devTitle: field(b, 'devTitle', 500), devOwner: field(b, 'devOwner', 200), devDue: field(b, 'devDue', 10),
    };
    const errors: FormErrors = {};
    const decision = DECISIONS.find((d) => d === values.decision);
    if (!decision) errors.decision = s.chooseOne;
    const anyDev = Boolean(values.devTitle || values.devOwner || values.devDue);
    if (anyDev) {
      if (!values.devTitle) errors.devTitle = s.required;
      if (!values.devOwner) errors.devOwner = s.required;
      if (!isDate(values.devDue!)) errors.devDue = s.invalidDate;
    }
    if (decision === 'approved-with-deviations' && !anyDev) errors.devTitle = s.devNeeded;
    if (decision === 'approved' && anyDev) errors.devTitle = s.devNotAllowed;
    if (decision && decision !== 'approved' && !values.comment) errors.comment = s.commentNeeded;
    if (Object.keys(errors).length) return render(req, reply, { review: { values, errors } }, 400);
    await web.reviews.review(req.principal!.tenantId, req.params.id, {
      decision: decision!, comment: values.comment,
      deviations: anyDev ? [{ title: values.devTitle!, owner: values.devOwner!, dueDate: values.devDue! }] : [],
    }, req.principal!.name);
    return web.redirect(reply, `/runs/${req.params.id}#rev-h`);
  });

  await manualPages(app, web, render);
}
