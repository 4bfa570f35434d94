import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import type { RunRow } from '../../../db/schema.js';
import { toPlanView } from '../../plans/plan.service.js';
import { isSandboxPlan, type RestorePlan } from '../../plans/plan.types.js';
import type { Renderable } from '../html.js';
import { Conflict } from '../../errors.js';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { html } from '../html.js';
import { dateTime, fill, formatSeconds, reportLabels, triggerLabel, type Lang, type Strings } from '../i18n.js';
import { dl, notice, statusLight, table, textarea, verdictLight } from '../components.js';
import { exerciseFormatLabel } from '../../reports/i18n.js';
import { durationChart, type DurationPoint } from '../chart.js';
import { csrfField } from '../layout.js';
import type { Web } from '../web.js';

const HISTORY = 50;
const mayRun = (role: string) => role === 'operator' || role === 'admin';

interface Rto { targetSeconds?: number; measuredSeconds?: number | null; met?: boolean | null }
interface Rpo { targetSeconds?: number; backupAgeSeconds?: number | null; met?: boolean | null }

export function runResult(r: Pick<RunRow, 'status' | 'verdict'>, s: Strings, lang: Lang) {
  return r.verdict ? verdictLight(r.verdict, lang) : html`<span class="light light-running"><span>${s.runStatus[r.status] ?? r.status}</span></span>`;
}

function planFacts(def: RestorePlan, row: { origin: string; source_file: string | null; version_hash: string }, s: Strings, lang: Lang) {
  const c = def.cadence;
  return dl([
    [s.system, def.system ? `${def.system.name}${def.system.process ? ` – ${s.process}: ${def.system.process}` : ''}${def.system.protectionNeed ? ` – ${s.protectionNeed}: ${def.system.protectionNeed}` : ''}` : ''],
    [s.targets, `RTO ${formatSeconds(def.targets.rtoSeconds, lang)}, RPO ${formatSeconds(def.targets.rpoSeconds, lang)}`],
    [s.cadence, [c.schedule ? `${s.schedule}: ${c.schedule}` : s.noSchedule, c.requiredEvery ? `${s.requiredEvery}: ${c.requiredEvery}` : '', c.grace ? `${s.grace}: ${c.grace}` : '', `${s.timezone}: ${c.timezone}`].filter(Boolean).join('; ')],
    ...(isSandboxPlan(def) ? [
      [s.source, def.source.type === 'file' ? `file: ${def.source.path}${def.source.match ? ` (${def.source.match}, ${def.source.select})` : ''}`
        : def.source.type === 'restic' ? `restic: ${def.source.repository} (${def.source.snapshot}${def.source.tags ? `, tags ${def.source.tags.join(', ')}` : ''}${def.source.host ? `, host ${def.source.host}` : ''})`
        : def.source.type === 'basebackup' ? `basebackup: ${def.source.path}${def.source.match ? ` (${def.source.match})` : ''}, WAL ${def.source.wal}`
        : `borg: ${def.source.repository} (${def.source.archive}${def.source.match ? `, ${def.source.match}` : ''})`],
      [s.restore, 'database' in def.restore ? `${def.restore.driver}, ${def.restore.database}` : def.restore.driver],
    ] as [string, Renderable][] : def.kind === 'manual' ? [
      [s.manualSteps, html`<ol class="plain">${(def.steps ?? []).map((st) => html`<li>${st.title}${st.expected ? html` <span class="muted">(${s.expectedLabel}: ${st.expected})</span>` : ''}${st.restoresService ? html` <strong>${s.restoresService}</strong>` : ''}</li>`)}</ol>`],
    ] as [string, Renderable][] : def.kind === 'exercise' ? [
      [s.scenario, html`<span class="pre">${def.exercise?.scenario ?? ''}</span>`],
      [s.exerciseFormat, exerciseFormatLabel(def.exercise?.format, lang)],
      [s.exerciseRoles, def.exercise?.roles?.join(', ') ?? s.none],
    ] as [string, Renderable][] : [
      [s.external, `${def.external?.tool ?? ''}${def.external?.veeamJob ? ` (${s.veeamJob}: ${def.external.veeamJob})` : ''}`],
    ] as [string, Renderable][]),
    [s.checks, def.checks.length ? html`<ul class="plain">${def.checks.map((ch) => html`<li>${ch.name} <span class="muted">(${ch.kind})</span></li>`)}</ul>` : s.none],
    [s.controls, def.controls.length ? def.controls.join(', ') : s.none],
    [s.origin, row.origin === 'file' ? fill(s.originFile, { file: row.source_file ?? '' }) : s.originApi],
    [s.version, html`<span class="mono">${row.version_hash.slice(0, 16)}…</span>`],
  ]);
}

export async function planPages(app: FastifyInstance, web: Web): Promise<void> {
  app.get<{ Params: { id: string } }>('/plans/:id', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    const plan = await web.overview.page(tenantId, req.params.id, HISTORY);
    const { row, history, baseline, alert, schedule: sched, nextScheduledAt: next } = plan;
    const def = row.definition as RestorePlan;
    const active = history.find((r) => r.status !== 'finished');
    const points: DurationPoint[] = history.flatMap((r) => {
      const m = (r.rto as Rto | null)?.measuredSeconds;
      return typeof m === 'number' && r.finished_at ? [{ at: r.finished_at, seconds: m, runId: r.id }] : [];
    });

    const head = html`<tr><th scope="col">${s.colStarted}</th><th scope="col">${s.colResult}</th><th scope="col">${s.colTrigger}</th><th scope="col">${s.colRto}</th><th scope="col">${s.colBackupAge}</th></tr>`;
    const rows = history.map((r) => {
      const rto = r.rto as Rto | null;
      const rpo = r.rpo as Rpo | null;
      return html`<tr><th scope="row"><a href="/runs/${r.id}">${dateTime(r.started_at ?? r.queued_at, lang)}</a></th>
<td>${runResult(r, s, lang)}</td><td>${triggerLabel(r.trigger, lang)}, ${r.triggered_by}</td>
<td>${typeof rto?.measuredSeconds === 'number' ? formatSeconds(rto.measuredSeconds, lang) : s.dash}${rto?.met === false ? html` <span class="over">(${reportLabels(lang).notMet})</span>` : ''}</td>
<td>${typeof rpo?.backupAgeSeconds === 'number' ? formatSeconds(rpo.backupAgeSeconds, lang) : s.dash}</td></tr>`;
    });

    const runForm = def.kind === 'external'
      ? html`<p class="hint">${fill(s.externalNoRun, { tool: def.external?.tool ?? '', id: row.id })}</p>`
      : !mayRun(req.principal!.role) ? html`<p class="muted">${s.runNowForbidden}</p>`
      : def.kind === 'exercise'
        ? html`<form method="post" action="/plans/${encodeURIComponent(row.id)}/exercise" class="run-now" novalidate>${csrfField(ctx)}
${(req.query as { participants?: string }).participants === 'missing' ? notice(s.participantsMissing, 'warn') : ''}
${textarea({ form: 'exercise', s, name: 'participants', label: s.participants, hint: s.startExerciseHint, maxlength: 20_000, value: (def.exercise?.roles ?? []).map((r) => ` – ${r}`).join('\n') })}
<p class="hint" id="run-hint">${def.exercise?.scenario ?? ''}</p><button type="submit" class="primary">${s.startExercise}</button></form>`
      : def.kind === 'manual'
        ? html`<form method="post" action="/plans/${encodeURIComponent(row.id)}/manual-run" class="run-now">${csrfField(ctx)}<p class="hint" id="run-hint">${s.startManualHint}</p><button type="submit" class="primary" aria-describedby="run-hint">${s.startManual}</button></form>`
        : html`<form method="post" action="/plans/${encodeURIComponent(row.id)}/run" class="run-now">${csrfField(ctx)}<p class="hint" id="run-hint">${s.runNowHint}</p><button type="submit" class="primary" aria-describedby="run-hint">${s.runNow}</button></form>`;

    const body = html`<p class="crumbs"><a href="/">${s.navDashboard}</a> › ${s.planTitle}</p>
<h1>${row.title} <span class="muted mono small">${row.id}</span></h1>
<div class="status-line">${statusLight(plan.status, lang)}
${alert ? html` <a href="/alerts/${alert.id}" class="alert-mark"><span aria-hidden="true">⚑ </span>${s.alertKind[alert.kind] ?? alert.kind}</a>` : ''}</div>
${dl([
    [s.nextDue, plan.nextDueAt ? dateTime(plan.nextDueAt, lang) : s.dash],
    [s.nextScheduled, sched?.paused_at ? fill(s.pausedSince, { at: dateTime(sched.paused_at, lang), by: sched.paused_by ?? '', reason: sched.paused_reason ?? '' }) : next ? dateTime(next, lang) : s.noSchedule],
    [s.baseline, baseline
      ? html`<a href="/runs/${baseline.runId}">${dateTime(baseline.at, lang)}</a> ${baseline.source === 'accepted' ? fill(s.baselineAccepted, { by: baseline.acceptedBy ?? '', reason: baseline.reason ?? '' }) : s.baselinePassed}`
      : s.baselineNone],
  ])}
${active ? notice(html`${s.activeRun} <a href="/runs/${active.id}">${s.runStatus[active.status] ?? active.status}</a>`) : runForm}
<section aria-labelledby="sum-h"><h2 id="sum-h">${s.planSummary}</h2>${planFacts(def, row, s, lang)}</section>
<section aria-labelledby="chart-h"><h2 id="chart-h">${s.chartTitle}</h2>${durationChart(points, def.targets.rtoSeconds, s, lang)}</section>
<section aria-labelledby="hist-h"><h2 id="hist-h">${s.history}</h2>
${history.length ? table('history', fill(s.historyCaption, { n: HISTORY }), head, rows) : html`<p>${s.noRuns}</p>`}</section>
<section aria-labelledby="def-h"><h2 id="def-h">${s.planDefinition}</h2><p class="hint" id="def-note">${s.definitionNote}</p>
<div class="table-wrap" role="region" aria-labelledby="def-note" tabindex="0"><pre class="code">${stringify(toPlanView(row).definition)}</pre></div></section>`;
    return web.send(reply, ctx, { title: `${row.title} – ${s.planTitle}`, active: 'dashboard', body });
  });

  app.post<{ Params: { id: string } }>('/plans/:id/run', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    try {
      const run = await web.runs.trigger(p.tenantId, req.params.id, { trigger: 'manual', triggeredBy: p.name });
      await web.audit?.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, via: 'web' } });
      return web.redirect(reply, `/runs/${run.id}`);
    } catch (err) {
      // the plan is being tested already: show that run instead of an error
      const activeRunId = err instanceof Conflict ? (err.extra?.activeRunId as string | null | undefined) : undefined;
      if (activeRunId) return web.redirect(reply, `/runs/${activeRunId}`);
      throw err;
    }
  });
}
