import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/plugins/auth.js';
import { NotFound } from '../../errors.js';
import { html, type SafeHtml } from '../html.js';
import { date, dateTime, decisionLabel, fill, measureStatusLabel } from '../i18n.js';
import { errorSummary, input, notice, select, table, verdictLight, type FormErrors, type FormValues } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, isDate, isUuid, type Body } from '../forms.js';
import type { Web } from '../web.js';

const mayEdit = (role: string) => role === 'operator' || role === 'reviewer' || role === 'admin';
const STATUSES = ['open', 'in-progress', 'done'] as const;

interface MeasureForm { id: string; kind: 'update' | 'close'; values: FormValues; errors: FormErrors }

export async function reviewPages(app: FastifyInstance, web: Web): Promise<void> {
  async function render(req: FastifyRequest, reply: FastifyReply, form?: MeasureForm, status = 200) {
    const ctx: PageCtx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    const [waiting, recent, measures, candidates, titles] = await Promise.all([
      web.reviews.awaitingReview(tenantId, 100), web.reviews.recentReviews(tenantId, 30), web.reviews.listMeasures(tenantId),
      web.reviews.retestCandidates(tenantId), web.overview.planTitles(tenantId),
    ]);
    const today = web.now().toISOString().slice(0, 10);
    const title = (id: string) => titles.get(id) ?? id;
    const editable = mayEdit(req.principal!.role);

    const waitingHtml = waiting.length
      ? table('waiting', s.waitingCaption, html`<tr><th scope="col">${s.colRun}</th><th scope="col">${s.colPlan}</th><th scope="col">${s.colResult}</th><th scope="col">${s.triggeredBy}</th></tr>`,
        waiting.map((r) => html`<tr><th scope="row"><a href="/runs/${r.id}#rev-h">${dateTime(r.finished_at, lang)}</a></th><td>${r.title}</td><td>${verdictLight(r.verdict, lang)}</td><td>${r.triggered_by}</td></tr>`))
      : notice(s.noWaiting, 'ok');
    const recentHtml = recent.length
      ? table('recent', s.recentCaption, html`<tr><th scope="col">${s.colAt}</th><th scope="col">${s.colPlan}</th><th scope="col">${s.decision}</th><th scope="col">${s.colReviewer}</th><th scope="col">${s.comment}</th></tr>`,
        recent.map((r) => html`<tr><th scope="row"><a href="/runs/${r.run_id}">${dateTime(r.created_at, lang)}</a></th><td>${title(r.plan_id)}</td><td>${decisionLabel(r.decision, lang)}</td><td>${r.reviewer}</td><td>${r.comment}</td></tr>`))
      : html`<p>${s.noReviews}</p>`;

    const forms = (m: (typeof measures)[number]): SafeHtml | string => {
      if (m.status === 'done') return html`${s.closedBy} <a href="/runs/${m.closed_by_run_id}">${dateTime(m.closed_at, lang)}</a>`;
      if (!editable) return '';
      const f = `m${m.id.slice(0, 8)}`;
      const mine = form?.id === m.id ? form : undefined;
      const uv = mine?.kind === 'update' ? mine.values : { status: m.status, owner: m.owner, dueDate: m.due_date };
      const ue = mine?.kind === 'update' ? mine.errors : undefined;
      const ce = mine?.kind === 'close' ? mine.errors : undefined;
      const runs = candidates.filter((c) => c.plan_id === m.plan_id && c.finished_at > m.created_at);
      return html`<form method="post" action="/measures/${m.id}" class="inline-form" novalidate>${errorSummary(`${f}u`, ue, s)}${csrfField(ctx)}
${select({ form: `${f}u`, s, name: 'status', label: s.measureStatus, value: uv.status, errors: ue, options: ['open', 'in-progress'].map((x) => ({ value: x, label: measureStatusLabel(x, lang) })) })}
${input({ form: `${f}u`, s, name: 'owner', label: s.colOwner, value: uv.owner, errors: ue, required: true, maxlength: 200 })}
${input({ form: `${f}u`, s, name: 'dueDate', label: s.colDue, type: 'date', value: uv.dueDate, errors: ue, required: true })}
<button type="submit">${s.update}</button></form>
${runs.length ? html`<form method="post" action="/measures/${m.id}/close" class="inline-form" novalidate>${errorSummary(`${f}c`, ce, s)}${csrfField(ctx)}
${select({ form: `${f}c`, s, name: 'runId', label: s.closeRun, value: mine?.kind === 'close' ? mine.values.runId : runs[0]!.id, errors: ce, options: runs.map((r) => ({ value: r.id, label: dateTime(r.finished_at, lang) })) })}
<button type="submit">${s.close}</button></form>` : html`<p class="hint">${s.noRetest}</p>`}`;
    };
    const measureTable = (st: (typeof STATUSES)[number]) => {
      const list = measures.filter((m) => m.status === st);
      const label = measureStatusLabel(st, lang);
      if (list.length === 0) return html`<h3>${label}</h3><p>${s.noMeasures}</p>`;
      const head = html`<tr><th scope="col">${s.colMeasure}</th><th scope="col">${s.colPlan}</th><th scope="col">${s.colOwner}</th><th scope="col">${s.colDue}</th><th scope="col">${s.actions}</th></tr>`;
      const rows = list.map((m) => html`<tr><th scope="row">${m.title}<br><a href="/runs/${m.run_id}" class="small">${s.colRun}</a></th><td>${title(m.plan_id)}</td><td>${m.owner}</td>
<td>${date(m.due_date, lang)}${m.status !== 'done' && m.due_date < today ? html` <span class="over"><span aria-hidden="true">▲ </span>${s.overdueMark}</span>` : ''}</td><td>${forms(m)}</td></tr>`);
      return html`<h3>${label}</h3>${table(`measures-${st}`, fill(s.measuresCaption, { status: label }), head, rows)}`;
    };

    const body = html`<h1>${s.reviewsTitle}</h1>
<section aria-labelledby="w-h"><h2 id="w-h">${s.waiting}</h2>${waitingHtml}</section>
<section aria-labelledby="m-h"><h2 id="m-h">${s.measures}</h2>${editable ? '' : html`<p class="muted">${s.measureRole}</p>`}${STATUSES.map(measureTable)}</section>
<section aria-labelledby="r-h"><h2 id="r-h">${s.recentReviews}</h2>${recentHtml}</section>`;
    return web.send(reply, ctx, { title: s.reviewsTitle, active: 'reviews', body }, status);
  }

  app.get('/reviews', { config: { page: true } }, (req, reply) => render(req, reply));

  const edit = { config: { page: true }, preValidation: requireRole('reviewer', 'operator') };
  app.post<{ Params: { id: string }; Body: Body }>('/measures/:id', edit, async (req, reply) => {
    if (!isUuid(req.params.id)) throw new NotFound(`measure ${req.params.id}`);
    const s = (await web.ctx(req)).s;
    const values = { status: field(req.body, 'status', 20), owner: field(req.body, 'owner', 200), dueDate: field(req.body, 'dueDate', 10) };
    const errors: FormErrors = {};
    if (values.status !== 'open' && values.status !== 'in-progress') errors.status = s.chooseOne;
    if (!values.owner) errors.owner = s.required;
    if (!isDate(values.dueDate)) errors.dueDate = s.invalidDate;
    if (Object.keys(errors).length) return render(req, reply, { id: req.params.id, kind: 'update', values, errors }, 400);
    await web.reviews.updateMeasure(req.principal!.tenantId, req.params.id, { status: values.status as 'open' | 'in-progress', owner: values.owner, dueDate: values.dueDate }, req.principal!.name);
    return web.redirect(reply, '/reviews#m-h');
  });

  app.post<{ Params: { id: string }; Body: Body }>('/measures/:id/close', edit, async (req, reply) => {
    if (!isUuid(req.params.id)) throw new NotFound(`measure ${req.params.id}`);
    const s = (await web.ctx(req)).s;
    const values = { runId: field(req.body, 'runId', 40) };
    if (!isUuid(values.runId)) return render(req, reply, { id: req.params.id, kind: 'close', values, errors: { runId: s.chooseOne } }, 400);
    await web.reviews.closeMeasure(req.principal!.tenantId, req.params.id, values.runId, req.principal!.name);
    return web.redirect(reply, '/reviews#m-h');
  });
}
