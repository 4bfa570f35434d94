import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/plugins/auth.js';
import { html } from '../html.js';
import { dateTime, fill } from '../i18n.js';
import { errorSummary, input, notice, select, type FormErrors, type FormValues } from '../components.js';
import { isDate, type Body } from '../forms.js';
import type { PageCtx } from '../layout.js';
import type { Web } from '../web.js';

const FORMATS = ['pdf', 'csv', 'json'];
const mayExport = (role: string) => role === 'auditor' || role === 'admin';

export async function reportPages(app: FastifyInstance, web: Web): Promise<void> {
  async function render(req: FastifyRequest, reply: FastifyReply, form?: { values: FormValues; errors: FormErrors }, status = 200) {
    const ctx: PageCtx = await web.ctx(req);
    const { s, lang } = ctx;
    const tenantId = req.principal!.tenantId;
    const today = web.now().toISOString().slice(0, 10);
    const v = form?.values ?? { from: `${today.slice(0, 4)}-01-01`, to: today, format: 'pdf', lang };
    const e = form?.errors;
    const wantVerify = (req.query as { verify?: string }).verify === '1';
    const result = wantVerify ? await web.ledger.verify(tenantId) : undefined;
    const exportable = mayExport(req.principal!.role);

    const auditForm = exportable ? html`<form method="get" action="/reports/audit" class="card" novalidate>${errorSummary('audit', e, s)}
<div class="row">${input({ form: 'audit', s, name: 'from', label: s.from, type: 'date', value: v.from, errors: e, required: true })}
${input({ form: 'audit', s, name: 'to', label: s.to, type: 'date', value: v.to, errors: e, required: true })}</div>
<div class="row">${select({ form: 'audit', s, name: 'format', label: s.format, value: v.format, errors: e, options: FORMATS.map((f) => ({ value: f, label: f.toUpperCase() })) })}
${select({ form: 'audit', s, name: 'lang', label: s.language, value: v.lang, errors: e, options: [{ value: 'de', label: 'Deutsch' }, { value: 'en', label: 'English' }] })}</div>
<button type="submit" class="primary">${s.download}</button></form>` : html`<p class="muted">${s.reportRole}</p>`;

    let verifyHtml;
    if (!result) verifyHtml = html`<form method="get" action="/reports#verify-h"><input type="hidden" name="verify" value="1"><button type="submit">${s.verifyNow}</button></form>`;
    else {
      const cp = web.ledger.newestCheckpoint(tenantId);
      verifyHtml = html`<div role="status">${result.ok
        ? notice(html`<strong><span aria-hidden="true">✔ </span>${s.verifyOk}</strong>`, 'ok')
        : html`<div class="banner banner-danger"><p><strong><span aria-hidden="true">✖ </span>${fill(s.verifyBroken, { seq: result.firstBroken?.seq ?? '?', reason: result.firstBroken?.reason ?? '', message: result.firstBroken?.message ?? '' })}</strong></p></div>`}
<p>${fill(s.verifyRecords, { n: result.records, seq: result.headSeq ?? '–' })} ${fill(s.verifyCheckpoints, { n: result.checkpoints.checked })}
${cp ? html`<br>${ctx.s.recordHash}: <span class="mono break">${cp.hash}</span>` : ''}</p>
<p class="muted">${fill(s.verifiedAt, { at: dateTime(web.now(), lang) })}</p></div>`;
    }

    const body = html`<h1>${s.reportsTitle}</h1>
<section aria-labelledby="audit-h"><h2 id="audit-h">${s.auditReport}</h2><p>${s.auditHint}</p>${auditForm}</section>
<section aria-labelledby="bundle-h"><h2 id="bundle-h">${s.bundle}</h2><p>${s.bundleHint}</p>
${exportable ? html`<p><a href="/api/v1/evidence/bundle" download>${s.bundleLink}</a></p>` : ''}</section>
<section aria-labelledby="verify-h"><h2 id="verify-h">${s.verify}</h2><p>${s.verifyHint}</p>${verifyHtml}</section>`;
    return web.send(reply, ctx, { title: s.reportsTitle, active: 'reports', body }, status);
  }

  app.get('/reports', { config: { page: true } }, (req, reply) => render(req, reply));

  // validates the period here (errors next to the fields), then hands over to the API, which also takes the session cookie
  app.get<{ Querystring: Body }>('/reports/audit', { config: { page: true }, preValidation: requireRole('auditor') }, async (req, reply) => {
    const s = (await web.ctx(req)).s;
    const q = (k: string) => (typeof req.query?.[k] === 'string' ? (req.query[k] as string).trim() : '');
    const values = { from: q('from'), to: q('to'), format: q('format') || 'pdf', lang: q('lang') === 'en' ? 'en' : 'de' };
    const errors: FormErrors = {};
    if (!isDate(values.from)) errors.from = s.invalidDate;
    if (!isDate(values.to)) errors.to = s.invalidDate;
    else if (!errors.from && values.to < values.from) errors.to = s.periodOrder;
    if (!FORMATS.includes(values.format)) errors.format = s.chooseOne;
    if (Object.keys(errors).length) return render(req, reply, { values, errors }, 400);
    return reply.redirect(`/api/v1/reports/audit?${new URLSearchParams(values).toString()}`, 303);
  });
}
