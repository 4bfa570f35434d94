import type { FastifyInstance } from 'fastify';
import { STATUS_ORDER as ORDER, type DashboardRow } from '../../plans/plan-overview.service.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill, formatSeconds, type Lang, type Strings } from '../i18n.js';
import { lightSymbols, notice, statusLight, statusLightRef, table, verdictLightRef } from '../components.js';
import type { Web } from '../web.js';
import { restartSection } from './systems.page.js';

export function headroomText(seconds: number | null, s: Strings, lang: Lang): SafeHtml | string {
  if (seconds === null) return s.dash;
  if (seconds < 0) return html`<span class="over"><span aria-hidden="true">▲ </span>${fill(s.headroomOver, { x: formatSeconds(-seconds, lang) })}</span>`;
  return formatSeconds(seconds, lang);
}

function alertCell(a: DashboardRow['alert'], s: Strings, now: Date): SafeHtml | string {
  if (!a) return s.dash;
  const state = a.acknowledged_at ? s.alertAcknowledged : a.snoozed_until && a.snoozed_until > now ? s.alertSnoozed : s.alertOpen;
  return html`<a href="/alerts/${a.id}" class="alert-mark"><span aria-hidden="true">⚑ </span>${s.alertKind[a.kind] ?? a.kind}: ${state}</a>`;
}

export async function dashboardPages(app: FastifyInstance, web: Web): Promise<void> {
  app.get('/', { config: { page: true } }, async (req, reply) => {
    const now = web.now();
    // the page's frame (tenant name) and the restart order are read alongside the plans, not before or after them
    const [ctx, data, systems, unserved] = await Promise.all([
      web.ctx(req),
      web.overview.dashboard(req.principal!.tenantId),
      web.systems?.overview(req.principal!.tenantId, { at: now }) ?? Promise.resolve([]),
      // a pool this tenant's plans name and no live worker serves: their tests wait for ever (Redis down: not known, no banner)
      web.pools?.unserved(req.principal!.tenantId).catch(() => []) ?? Promise.resolve([]),
    ]);
    const { s, lang } = ctx;
    const banner = html`${data.scheduler.needed && !data.scheduler.healthy
      ? html`<div class="banner banner-danger" role="alert"><p><strong>${s.schedulerDown}</strong> ${data.scheduler.lastTickAt ? fill(s.schedulerLast, { at: dateTime(data.scheduler.lastTickAt, lang) }) : s.schedulerNever}</p></div>`
      : ''}${unserved.map((p) => html`<div class="banner banner-danger" role="alert"><p><strong>${fill(s.poolUnserved, { pool: p.pool })}</strong></p></div>`)}`;
    const summary = html`<section aria-labelledby="sum-h"><h2 id="sum-h">${s.summary}</h2>
<ul class="summary">${ORDER.map((k) => html`<li>${statusLight(k, lang)} <strong class="count">${data.counts[k] ?? 0}</strong></li>`)}<li><span class="light">${s.plansTotal}</span> <strong class="count">${data.rows.length}</strong></li></ul></section>`;
    const head = html`<tr><th scope="col">${s.colPlan}</th><th scope="col">${s.colStatus}</th><th scope="col">${s.colNextDue}</th><th scope="col">${s.colLastVerdict}</th><th scope="col"><abbr title="${s.headroomHint}">${s.colHeadroom}</abbr></th><th scope="col">${s.colAlert}</th></tr>`;
    const rows = data.rows.map((r) => html`<tr>
<th scope="row"><a href="/plans/${encodeURIComponent(r.plan.id)}">${r.plan.title}</a><br><span class="muted mono">${r.plan.id}</span></th>
<td>${statusLightRef(r.status, lang)}${r.active ? html`<br><a href="/runs/${r.active.id}" class="small">${r.active.status === 'running' ? s.runningNow : s.queuedNow}</a>` : ''}</td>
<td>${r.nextDueAt ? dateTime(r.nextDueAt, lang) : s.dash}</td>
<td>${r.last ? html`${verdictLightRef(r.last.verdict, lang)}<br><a href="/runs/${r.last.id}" class="small">${dateTime(r.last.finished_at, lang)}</a>` : s.dash}</td>
<td>${headroomText(r.headroomSeconds, s, lang)}</td>
<td>${alertCell(r.alert, s, now)}</td>
</tr>`);
    const restart = restartSection(ctx, systems);
    const body = html`<h1>${s.dashTitle}</h1>
${banner}
${summary}
<section aria-labelledby="plans-h"><h2 id="plans-h">${s.plansCaption}</h2>
${data.rows.length ? lightSymbols() : ''}
${data.rows.length === 0 ? notice(s.noPlans) : table('plans', html`${s.plansCaption}. ${s.statusHelp}`, head, rows, { captionHidden: true })}
</section>
${restart}`;
    return web.send(reply, ctx, { title: s.dashTitle, active: 'dashboard', body });
  });
}
