import type { FastifyInstance } from 'fastify';
import { html } from '../html.js';
import { fill } from '../i18n.js';
import { statusLight, table } from '../components.js';
import type { Web } from '../web.js';
import { berlinYear } from '../../calendar/programme.js';
import { cadenceText, monthCells, programmeSummary, programmeText } from '../../reports/programme-report.js';


/**
 * The year's test programme (issue #12): one row per plan of every kind,
 * twelve months with what was done and what is due; the same data as
 * GET /api/v1/programme and its PDF and CSV.
 */
export async function programmePages(app: FastifyInstance, web: Web): Promise<void> {
  app.get<{ Querystring: { year?: string } }>('/programme', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const now = web.now();
    const asked = Number(req.query.year);
    const year = Number.isInteger(asked) && asked >= 2000 && asked <= 2100 ? asked : berlinYear(now);
    const data = await web.reports.programme(req.principal!.tenantId, year, lang, now);
    const t = programmeText(lang);
    const sum = programmeSummary(data.plans);
    const head = html`<tr><th scope="col">${t.plan}</th><th scope="col">${t.kind}</th><th scope="col">${t.cadence}</th>${t.months.map((m) => html`<th scope="col" class="num">${m}</th>`)}</tr>`;
    const rows = data.plans.map((p) => html`<tr><th scope="row"><a href="/plans/${encodeURIComponent(p.planId)}">${p.title}</a><br><span class="muted small">${statusLight(p.status, lang)}</span></th>
<td>${t.kinds[p.kind] ?? p.kind}</td><td>${cadenceText(p, lang)}</td>
${monthCells(p, lang).map((c) => html`<td class="month month-${c.worst || 'none'}">${c.marks ? html`<span aria-hidden="true">${c.marks}</span><span class="visually-hidden">${c.words}</span>` : ''}</td>`)}</tr>`);
    const base = `/api/v1/programme?year=${year}&lang=${lang}`;
    const body = html`<h1>${fill(s.programmeTitle, { year })}</h1>
<p>${s.programmeIntro}</p>
<p class="status-line"><a href="/programme?year=${year - 1}">${fill(s.programmePrev, { year: year - 1 })}</a> · <a href="/programme?year=${year + 1}">${fill(s.programmeNext, { year: year + 1 })}</a>
 · ${s.programmeExports} <a href="${base}&format=pdf" download>PDF</a>, <a href="${base}&format=csv" download>CSV</a>, <a href="${base}&format=json">JSON</a></p>
<p><strong>${fill(t.summary, sum)}</strong></p>
${data.plans.length ? table('programme', fill(s.programmeCaption, { year }), head, rows) : html`<p>${s.programmeNone}</p>`}
<p class="hint">${t.legend}</p><p class="hint">${t.note}</p>`;
    return web.send(reply, ctx, { title: fill(s.programmeTitle, { year }), active: 'programme', body });
  });
}
