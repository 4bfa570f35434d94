import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RunRow } from '../../../db/schema.js';
import type { ManualStep, RestorePlan } from '../../plans/plan.types.js';
import type { StepCheck, StepResult, UploadedFile } from '../../external/manual.service.js';
import { OBSERVATION_KINDS, type ObservationCheck, type Participant } from '../../external/exercise.service.js';
import { exerciseFormatLabel } from '../../reports/i18n.js';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { Conflict, DomainError, NotFound } from '../../errors.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill, formatBytes, type Lang, type Strings } from '../i18n.js';
import { errorSummary, input, notice, radios, table, textarea, type FormErrors, type FormValues } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, isDate, type Body } from '../forms.js';
import type { Web } from '../web.js';

const RESULTS: StepResult[] = ['ok', 'deviation', 'not-done'];
const mayRun = (role: string) => role === 'operator' || role === 'admin';

export function stepResultLabel(r: StepResult | null, s: Strings): string {
  return r === null ? s.stepOpen : s.stepResults[r] ?? r;
}

/** An attachment as a download link (never shown inline), with its size and the start of its hash. */
function attachmentLinks(run: RunRow, list: StepCheck['step']['attachments'], lang: Lang): SafeHtml | '' {
  if (!list?.length) return '';
  return html`<ul class="plain">${list.map((a) => html`<li><a href="/api/v1/runs/${run.id}/attachments/${encodeURIComponent(a.name)}" download>${a.name}</a> <span class="muted">(${formatBytes(a.sizeBytes, lang)}, SHA-256 <span class="mono">${a.sha256.slice(0, 12)}…</span>)</span></li>`)}</ul>`;
}

/** The steps as a timeline table: what was done, when, by whom, with which note and evidence. */
export function stepsTable(run: RunRow, s: Strings, lang: Lang): SafeHtml {
  const steps = (run.checks as StepCheck[]) ?? [];
  const head = html`<tr><th scope="col">${s.colStep}</th><th scope="col">${s.colResult}</th><th scope="col">${s.colAt}</th><th scope="col">${s.colPerson}</th><th scope="col">${s.colNote}</th><th scope="col">${s.attachments}</th></tr>`;
  const rows = steps.map((c) => html`<tr id="step-${c.step.index + 1}"><th scope="row">${c.name}${c.step.restoresService ? html`<br><span class="muted small">${s.restoresService}</span>` : ''}</th>
<td><span class="check check-${c.status}"><span aria-hidden="true" class="check-mark"></span>${stepResultLabel(c.step.result, s)}</span></td>
<td>${c.step.at ? dateTime(c.step.at, lang) : s.dash}</td><td>${c.step.by ?? s.dash}</td><td>${c.step.result ? c.message : ''}</td>
<td>${attachmentLinks(run, c.step.attachments, lang) || (c.step.evidenceRequired ? html`<span class="muted">${s.evidenceNeeded}</span>` : s.dash)}</td></tr>`);
  return table('steps', s.stepsCaption, head, rows);
}

export interface StepForm { index: number; values: FormValues; errors: FormErrors }
export interface ObservationForm { values: FormValues; errors: FormErrors }

/** The run page with a form's values and errors in place (from run.page.ts). */
export type RenderRun = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, forms: { step?: StepForm; observation?: ObservationForm }, status: number) => Promise<FastifyReply>;

/** One form per step: result, note, a file as evidence. Posted as multipart (the file), answered by a redirect back to the step. */
function stepForm(ctx: PageCtx, run: RunRow, c: StepCheck, def: ManualStep | undefined, form: StepForm | undefined): SafeHtml {
  const { s } = ctx;
  const f = `step${c.step.index}`;
  const mine = form?.index === c.step.index ? form : undefined;
  const v = mine?.values ?? { result: c.step.result ?? '', note: c.step.result ? c.message : '' };
  const e = mine?.errors;
  return html`<li class="card step" id="step-${c.step.index + 1}"><h3>${c.name}</h3>
${def?.instructions ? html`<p class="pre">${def.instructions}</p>` : ''}
${def?.expected ? html`<p><strong>${s.expectedLabel}:</strong> ${def.expected}</p>` : ''}
${c.step.restoresService ? html`<p class="muted">${s.restoresService}</p>` : ''}
<p class="status-line">${s.colResult}: <span class="check check-${c.status}"><span aria-hidden="true" class="check-mark"></span>${stepResultLabel(c.step.result, s)}</span>${c.step.at ? html` · ${dateTime(c.step.at, ctx.lang)}, ${c.step.by ?? ''}` : ''}</p>
${attachmentLinks(run, c.step.attachments, ctx.lang)}
<form method="post" action="/runs/${run.id}/steps/${c.step.index}" enctype="multipart/form-data" novalidate>
${errorSummary(f, e, s)}${csrfField(ctx)}
${radios({ form: f, s, name: 'result', label: s.stepResultLegend, value: v.result, errors: e, required: true, options: RESULTS.map((r) => ({ value: r, label: s.stepResults[r]! })) })}
${textarea({ form: f, s, name: 'note', label: s.stepNote, value: v.note, errors: e, hint: s.stepNoteHint, maxlength: 2000 })}
${input({ form: f, s, name: 'file', label: c.step.evidenceRequired ? s.stepFileRequired : s.stepFile, type: 'file', errors: e, hint: s.stepFileHint })}
<button type="submit">${s.stepSave}</button></form></li>`;
}

/** The manual test's own part of the run page: the steps to work through while it runs, the timeline when it is done. */
export function manualSection(ctx: PageCtx, run: RunRow, plan: RestorePlan | undefined, form?: StepForm): SafeHtml {
  const { s } = ctx;
  const steps = (run.checks as StepCheck[]) ?? [];
  if (run.status !== 'running' || !mayRun(ctx.principal!.role)) {
    return html`<section aria-labelledby="steps-h"><h2 id="steps-h">${s.stepsTitle}</h2>${stepsTable(run, s, ctx.lang)}</section>`;
  }
  const done = steps.filter((c) => c.step.result !== null).length;
  return html`<section aria-labelledby="steps-h"><h2 id="steps-h">${s.stepsTitle}</h2>
<p class="hint">${fill(s.stepsProgress, { done: String(done), all: String(steps.length) })}</p>
<ol class="plain steps">${steps.map((c) => stepForm(ctx, run, c, plan?.steps?.[c.step.index], form))}</ol></section>
${completeForm(ctx, run, done < steps.length ? notice(fill(s.completeOpenSteps, { n: String(steps.length - done) }), 'warn') : '', s.completeHint)}`;
}

function completeForm(ctx: PageCtx, run: RunRow, warning: SafeHtml | '', hint: string): SafeHtml {
  const { s } = ctx;
  return html`<section aria-labelledby="complete-h"><h2 id="complete-h">${s.completeTitle}</h2>
<form method="post" action="/runs/${run.id}/complete" class="card" novalidate>${csrfField(ctx)}
<p class="hint">${hint}</p>${warning}
${textarea({ form: 'complete', s, name: 'note', label: s.completeNote, maxlength: 2000 })}
<button type="submit" class="primary">${s.completeButton}</button></form></section>`;
}

/** An exercise's observations as a timeline: when, what kind, by whom, what, and the measure a finding became. */
function observationsTable(run: RunRow, s: Strings, lang: Lang): SafeHtml {
  const list = (run.checks as ObservationCheck[]) ?? [];
  if (!list.length) return html`<p>${s.noObservations}</p>`;
  const head = html`<tr><th scope="col">${s.colAt}</th><th scope="col">${s.colKind}</th><th scope="col">${s.colPerson}</th><th scope="col">${s.colObservation}</th><th scope="col">${s.colMeasure}</th></tr>`;
  const rows = list.map((o) => html`<tr><th scope="row">${dateTime(o.observation.at, lang)}</th>
<td><span class="check check-${o.status}"><span aria-hidden="true" class="check-mark"></span>${s.observationKinds[o.observation.kind] ?? o.observation.kind}</span></td>
<td>${o.observation.by}</td><td class="pre">${o.message}</td>
<td>${o.observation.measure ? `${o.observation.measure.title} (${o.observation.measure.owner}, ${o.observation.measure.dueDate})` : s.dash}</td></tr>`);
  return table('observations', s.observationsCaption, head, rows);
}

/** The exercise's own part of the run page: scenario and participants, the timeline, and while it runs the form for the next observation. */
export function exerciseSection(ctx: PageCtx, run: RunRow, form?: ObservationForm): SafeHtml {
  const { s, lang } = ctx;
  const facts = run.restore as { exercise?: { scenario?: string; format?: string }; participants?: Participant[] } | null;
  const head = html`<section aria-labelledby="ex-h"><h2 id="ex-h">${s.exerciseTitle}</h2>
<p><strong>${exerciseFormatLabel(facts?.exercise?.format, lang)}</strong></p><p class="pre">${facts?.exercise?.scenario ?? ''}</p>
<h3>${s.participants}</h3><ul class="plain">${(facts?.participants ?? []).map((p) => html`<li>${p.name}${p.role ? html` <span class="muted">– ${p.role}</span>` : ''}</li>`)}</ul>
<h3>${s.observations}</h3>${observationsTable(run, s, lang)}</section>`;
  if (run.status !== 'running' || !mayRun(ctx.principal!.role)) return head;
  const v = form?.values ?? {};
  const e = form?.errors;
  const f = 'obs';
  return html`${head}<section aria-labelledby="obs-h"><h2 id="obs-h">${s.observeTitle}</h2>
<form method="post" action="/runs/${run.id}/observations" class="card" novalidate>${errorSummary(f, e, s)}${csrfField(ctx)}
<p class="hint">${s.observeHint}</p>
${radios({ form: f, s, name: 'kind', label: s.colKind, value: v.kind ?? 'note', errors: e, required: true, options: OBSERVATION_KINDS.map((k) => ({ value: k, label: s.observationKinds[k]! })) })}
${textarea({ form: f, s, name: 'text', label: s.colObservation, value: v.text, errors: e, maxlength: 2000 })}
<fieldset class="group"><legend>${s.measureForFinding}</legend><p class="hint">${s.measureForFindingHint}</p>
${input({ form: f, s, name: 'title', label: s.devTitle, value: v.title, errors: e, maxlength: 500 })}
${input({ form: f, s, name: 'owner', label: s.devOwner, value: v.owner, errors: e, maxlength: 200 })}
${input({ form: f, s, name: 'dueDate', label: s.devDue, type: 'date', value: v.dueDate, errors: e })}
</fieldset>
<button type="submit">${s.observeSave}</button></form></section>
${completeForm(ctx, run, '', s.completeExerciseHint)}`;
}

/** "Name – Rolle" per line (also "Name, Rolle" or "Name; Rolle"): the participants of an exercise. */
export function parseParticipants(text: string): Participant[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).slice(0, 100).map((l) => {
    const m = /^(.+?)\s*(?:[–—;,]|\s-\s)\s*(.+)$/.exec(l);
    return m ? { name: m[1]!.slice(0, 200), role: m[2]!.slice(0, 100) } : { name: l.slice(0, 200) };
  });
}

/**
 * The pages' side of manual restore tests: start one from the plan page, record
 * each step (with a file as evidence), complete it. The same service as the
 * API (services/external/manual.service.ts), the same audit entries.
 */
export async function manualPages(app: FastifyInstance, web: Web, renderRun: RenderRun): Promise<void> {
  app.post<{ Params: { id: string } }>('/plans/:id/manual-run', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    if (!web.manual) throw new NotFound('manual tests');
    try {
      const run = await web.manual.start(p.tenantId, req.params.id, p.name);
      await web.audit?.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, origin: 'manual', via: 'web' } });
      return web.redirect(reply, `/runs/${run.id}`);
    } catch (err) {
      const activeRunId = err instanceof Conflict ? (err.extra?.activeRunId as string | null | undefined) : undefined;
      if (activeRunId) return web.redirect(reply, `/runs/${activeRunId}`);
      throw err;
    }
  });

  app.post<{ Params: { id: string; index: string }; Body: Body | Record<string, unknown> }>('/runs/:id/steps/:index', { config: { page: true, upload: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    if (!web.manual) throw new NotFound('manual tests');
    const ctx = await web.ctx(req);
    const s = ctx.s;
    const index = /^\d{1,2}$/.test(req.params.index) ? Number(req.params.index) : -1;
    const b = (req.body ?? {}) as Record<string, unknown>;
    const text = b as Body;
    const values: FormValues = { result: field(text, 'result'), note: field(text, 'note', 2000) };
    const file = b.file && typeof b.file === 'object' && 'content' in b.file ? (b.file as UploadedFile) : undefined;
    const errors: FormErrors = {};
    const result = RESULTS.find((r) => r === values.result);
    if (!result) errors.result = s.chooseOne;
    if (result === 'deviation' && !values.note) errors.note = s.deviationNeedsNote;
    if (Object.keys(errors).length) return renderRun(req, reply, { step: { index, values, errors } }, 400);
    await web.manual.mustExist(p.tenantId, req.params.id);
    try {
      if (file && file.content.length > 0) {
        const ref = await web.manual.attach(p.tenantId, req.params.id, index, { name: file.filename, mediaType: file.mimetype, content: file.content }, p.name);
        await web.audit?.record({ ...auditFrom(req), action: 'run.attachment-added', subject: { type: 'run', id: req.params.id }, details: { step: index, name: ref.name, sha256: ref.sha256, via: 'web' } });
      }
      await web.manual.recordStep(p.tenantId, req.params.id, index, { result: result!, note: values.note }, p.name);
    } catch (err) {
      // a limit or a wrong step: shown at the step, nothing lost of what the person wrote
      if (err instanceof DomainError && err.statusCode === 400) {
        const detail = (err.details as { path?: string; message?: string }[] | undefined)?.[0];
        return renderRun(req, reply, { step: { index, values, errors: { [detail?.path === 'file' ? 'file' : '_']: detail?.message ?? err.message } } }, 400);
      }
      throw err;
    }
    // on to the next step (the last one's anchor leads to the completion form)
    return web.redirect(reply, `/runs/${req.params.id}#step-${index + 2}`);
  });

  app.post<{ Params: { id: string }; Body: Body }>('/runs/:id/complete', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    if (!web.manual || !web.exercises) throw new NotFound('manual tests');
    const note = field(req.body, 'note', 2000);
    const run = await web.exercises.isExercise(p.tenantId, req.params.id)
      ? await web.exercises.complete(p.tenantId, req.params.id, { note }, p.name)
      : await web.manual.complete(p.tenantId, req.params.id, { note }, p.name);
    return web.redirect(reply, `/runs/${run.id}`);
  });

  app.post<{ Params: { id: string }; Body: Body }>('/plans/:id/exercise', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    if (!web.exercises) throw new NotFound('exercises');
    try {
      const run = await web.exercises.start(p.tenantId, req.params.id, { participants: parseParticipants(field(req.body, 'participants', 20_000)) }, p.name);
      await web.audit?.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id: run.id }, details: { planId: run.plan_id, origin: 'exercise', via: 'web' } });
      return web.redirect(reply, `/runs/${run.id}`);
    } catch (err) {
      const activeRunId = err instanceof Conflict ? (err.extra?.activeRunId as string | null | undefined) : undefined;
      if (activeRunId) return web.redirect(reply, `/runs/${activeRunId}`);
      // no participants: back to the plan page, which says what is missing
      if (err instanceof DomainError && err.statusCode === 400) return web.redirect(reply, `/plans/${encodeURIComponent(req.params.id)}?participants=missing#run-hint`);
      throw err;
    }
  });

  app.post<{ Params: { id: string }; Body: Body }>('/runs/:id/observations', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const p = req.principal!;
    if (!web.exercises) throw new NotFound('exercises');
    const s = (await web.ctx(req)).s;
    const b = req.body;
    const values: FormValues = { kind: field(b, 'kind'), text: field(b, 'text', 2000), title: field(b, 'title', 500), owner: field(b, 'owner', 200), dueDate: field(b, 'dueDate', 10) };
    const kind = OBSERVATION_KINDS.find((k) => k === values.kind);
    const errors: FormErrors = {};
    if (!kind) errors.kind = s.chooseOne;
    if (!values.text) errors.text = s.required;
    const anyMeasure = Boolean(values.title || values.owner || values.dueDate);
    if (kind === 'finding') {
      if (!values.title) errors.title = s.required;
      if (!values.owner) errors.owner = s.required;
      if (!isDate(values.dueDate!)) errors.dueDate = s.invalidDate;
    } else if (anyMeasure) errors.title = s.measureOnlyForFinding;
    if (Object.keys(errors).length) return renderRun(req, reply, { observation: { values, errors } }, 400);
    await web.exercises.observe(p.tenantId, req.params.id, {
      kind: kind!, text: values.text!, ...(kind === 'finding' && { measure: { title: values.title!, owner: values.owner!, dueDate: values.dueDate! } }),
    }, p.name);
    return web.redirect(reply, `/runs/${req.params.id}#obs-h`);
  });
}
