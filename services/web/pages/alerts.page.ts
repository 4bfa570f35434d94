import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/plugins/auth.js';
import type { toAlertJson } from '../../notify/alert.service.js';
import { NotFound } from '../../errors.js';
import { html } from '../html.js';
import { dateTime, fill, type Lang, type Strings } from '../i18n.js';
import { errorSummary, input, notice, select, table, type FormErrors, type FormValues } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, isUuid, type Body } from '../forms.js';
import type { Web } from '../web.js';

type AlertJson = ReturnType<typeof toAlertJson>;
const SNOOZE = ['P1D', 'P3D', 'P7D', 'P14D', 'P30D'];
const mayAct = (role: string) => role === 'operator' || role === 'reviewer' || role === 'admin';

function handling(a: AlertJson, s: Strings, lang: Lang): string {
  if (a.resolved) return fill(s.resolvedAt, { at: dateTime(a.resolved.at, lang) });
  const parts: string[] = [];
  if (a.acknowledged) parts.push(fill(s.acknowledgedBy, { at: dateTime(a.acknowledged.at, lang), by: a.acknowledged.by, reason: a.acknowledged.reason }));
  if (a.snoozed) parts.push(fill(s.snoozedBy, { until: dateTime(a.snoozed.until, lang), by: a.snoozed.by, reason: a.snoozed.reason }));
  return parts.length ? parts.join(' · ') : s.alertOpen;
}

function alertsTable(id: string, caption: string, list: AlertJson[], titles: Map<string, string>, s: Strings, lang: Lang) {
  const head = html`<tr><th scope="col">${s.colPlan}</th><th scope="col">${s.colKind}</th><th scope="col">${s.colSince}</th><th scope="col">${s.colLevel}</th><th scope="col">${s.colState2}</th></tr>`;
  const rows = list.map((a) => html`<tr><th scope="row"><a href="/alerts/${a.id}">${titles.get(a.planId) ?? a.planId}</a></th>
<td><span class="alert-mark"><span aria-hidden="true">⚑ </span>${s.alertKind[a.kind] ?? a.kind}</span></td><td>${dateTime(a.since, lang)}</td><td>${a.escalationLevel}</td><td>${handling(a, s, lang)}</td></tr>`);
  return table(id, caption, head, rows);
}

interface ActForm { form: 'ack' | 'snooze'; values: FormValues; errors: FormErrors }

export async function alertPages(app: FastifyInstance, web: Web): Promise<void> {
  app.get('/alerts', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    const [open, resolved, titles] = await Promise.all([
      web.alerts.list(tenantId, { open: true, limit: 500 }), web.alerts.list(tenantId, { open: false, limit: 20 }), web.overview.planTitles(tenantId),
    ]);
    const body = html`<h1>${s.alertsTitle}</h1>
<section aria-labelledby="open-h"><h2 id="open-h">${s.openAlerts}</h2>${open.length ? alertsTable('open-alerts', s.openAlertsCaption, open, titles, s, lang) : notice(s.noAlerts, 'ok')}</section>
${resolved.length ? html`<section aria-labelledby="res-h"><h2 id="res-h">${s.resolvedAlerts}</h2>${alertsTable('resolved-alerts', s.resolvedAlerts, resolved, titles, s, lang)}</section>` : ''}`;
    return web.send(reply, ctx, { title: s.alertsTitle, active: 'alerts', body });
  });

  async function render(req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, form?: ActForm, status = 200) {
    const ctx: PageCtx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    if (!isUuid(req.params.id)) throw new NotFound(`alert ${req.params.id}`);
    const a = await web.alerts.get(tenantId, req.params.id);
    const plan = await web.plans.find(tenantId, a.planId);
    const title = fill(s.alertTitle, { plan: plan?.title ?? a.planId });
    const v = (f: ActForm['form']) => (form?.form === f ? form.values : {});
    const e = (f: ActForm['form']) => (form?.form === f ? form.errors : undefined);
    const forms = a.resolved ? '' : !mayAct(req.principal!.role) ? html`<p class="muted">${s.alertActRole}</p>` : html`<div class="cards">
${a.acknowledged ? '' : html`<form method="post" action="/alerts/${a.id}/acknowledge" class="card" novalidate><h2>${s.acknowledge}</h2><p class="hint">${s.acknowledgeHint}</p>${errorSummary('ack', e('ack'), s)}${csrfField(ctx)}
${input({ form: 'ack', s, name: 'reason', label: s.reason, value: v('ack').reason, errors: e('ack'), required: true, maxlength: 1000 })}
<button type="submit" class="primary">${s.acknowledge}</button></form>`}
<form method="post" action="/alerts/${a.id}/snooze" class="card" novalidate><h2>${s.snooze}</h2><p class="hint">${s.snoozeHint}</p>${errorSummary('snooze', e('snooze'), s)}${csrfField(ctx)}
${input({ form: 'snooze', s, name: 'reason', label: s.reason, value: v('snooze').reason, errors: e('snooze'), required: true, maxlength: 1000 })}
${select({ form: 'snooze', s, name: 'for', label: s.snoozeFor, value: v('snooze').for ?? 'P1D', errors: e('snooze'), options: SNOOZE.map((d) => ({ value: d, label: s.durations[d] ?? d })) })}
<button type="submit">${s.snooze}</button></form></div>`;
    const nHead = html`<tr><th scope="col">${s.colAt}</th><th scope="col">${s.colEvent}</th><th scope="col">${s.colRecipient}</th><th scope="col">${s.colState}</th></tr>`;
    const nRows = a.notifications.map((n) => html`<tr><th scope="row">${dateTime(n.createdAt, lang)}</th><td>${n.event}</td><td>${n.recipient}</td><td>${n.status}${n.sentAt ? ` (${s.colSent} ${dateTime(n.sentAt, lang)})` : ''}${n.lastError ? html`<br><span class="small">${n.lastError}</span>` : ''}</td></tr>`);
    const body = html`<p class="crumbs"><a href="/alerts">${s.alertsTitle}</a> › ${plan?.title ?? a.planId}</p>
<h1>${title}</h1>
<dl class="facts"><div><dt>${s.colKind}</dt><dd><span class="alert-mark"><span aria-hidden="true">⚑ </span>${s.alertKind[a.kind] ?? a.kind}</span></dd></div>
<div><dt>${s.colPlan}</dt><dd><a href="/plans/${encodeURIComponent(a.planId)}">${plan?.title ?? a.planId}</a></dd></div>
<div><dt>${s.colSince}</dt><dd>${dateTime(a.since, lang)}</dd></div><div><dt>${s.colLevel}</dt><dd>${a.escalationLevel}</dd></div>
<div><dt>${s.colState2}</dt><dd>${handling(a, s, lang)}</dd></div>
${a.runId ? html`<div><dt>${s.lastFailedRun}</dt><dd><a href="/runs/${a.runId}">${a.runId}</a></dd></div>` : ''}</dl>
${forms}
<section aria-labelledby="n-h"><h2 id="n-h">${s.notifications}</h2>${a.notifications.length ? table('notifications', s.notificationsCaption, nHead, nRows) : html`<p>${s.noNotifications}</p>`}</section>`;
    return web.send(reply, ctx, { title, active: 'alerts', body }, status);
  }

  app.get<{ Params: { id: string } }>('/alerts/:id', { config: { page: true } }, (req, reply) => render(req, reply));

  const act = { config: { page: true }, preValidation: requireRole('operator', 'reviewer') };
  app.post<{ Params: { id: string }; Body: Body }>('/alerts/:id/acknowledge', act, async (req, reply) => {
    const s = (await web.ctx(req)).s;
    const values = { reason: field(req.body, 'reason', 1000) };
    if (!values.reason) return render(req, reply, { form: 'ack', values, errors: { reason: s.required } }, 400);
    if (!isUuid(req.params.id)) throw new NotFound(`alert ${req.params.id}`);
    await web.alerts.acknowledge(req.principal!.tenantId, req.params.id, req.principal!.name, values.reason);
    return web.redirect(reply, `/alerts/${req.params.id}`);
  });

  app.post<{ Params: { id: string }; Body: Body }>('/alerts/:id/snooze', act, async (req, reply) => {
    const s = (await web.ctx(req)).s;
    const values = { reason: field(req.body, 'reason', 1000), for: field(req.body, 'for', 10) };
    const errors: FormErrors = {};
    if (!values.reason) errors.reason = s.required;
    if (!SNOOZE.includes(values.for)) errors.for = s.chooseOne;
    if (Object.keys(errors).length) return render(req, reply, { form: 'snooze', values, errors }, 400);
    if (!isUuid(req.params.id)) throw new NotFound(`alert ${req.params.id}`);
    await web.alerts.snooze(req.principal!.tenantId, req.params.id, req.principal!.name, values.reason, { for: values.for });
    return web.redirect(reply, `/alerts/${req.params.id}`);
  });
}
