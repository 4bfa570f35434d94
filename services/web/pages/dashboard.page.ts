import type { FastifyInstance } from 'fastify';
import { PlanStatusRepository, type PlanStatusRow } from '../../../db/repositories/plan-status.repository.js';
import { ScheduleRepository } from '../../../db/repositories/schedule.repository.js';
import { NotificationRepository, type AlertRow } from '../../../db/repositories/notification.repository.js';
import type { LastRunRow, PlanSummaryRow } from '../../../db/repositories/web.repository.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill, formatSeconds, type Lang, type Strings } from '../i18n.js';
import { lightSymbols, notice, statusLight, statusLightRef, table, verdictLightRef } from '../components.js';
import type { Web } from '../pages.routes.js';
import { restartSection } from './systems.page.js';

const ORDER = ['failing', 'overdue', 'never-tested', 'due-soon', 'ok'] as const;
/** A scheduler leader that has not ticked for this long counts as stopped (as in the plan API and /readyz). */
const TICK_STALE_SECONDS = 180;

export interface DashboardRow {
  plan: PlanSummaryRow;
  status: PlanStatusRow['status'];
  nextDueAt: Date | null;
  last?: LastRunRow;
  active?: { id: string; status: string };
  alert?: AlertRow;
  headroomSeconds: number | null;
}

export interface DashboardData {
  rows: DashboardRow[];
  counts: Record<string, number>;
  scheduler: { needed: boolean; healthy: boolean; lastTickAt: Date | null };
}

/**
 * Everything the dashboard shows, in a fixed number of queries however many
 * plans and runs there are: the set-based plan status, then one query per
 * kind of data (last runs, active runs, schedules, open alerts, scheduler tick).
 */
export async function loadDashboard(web: Web, tenantId: string): Promise<DashboardData> {
  const now = web.now();
  const alertsRepo = new NotificationRepository(web.db);
  const [plans, statuses, lasts, active, tick, alerts] = await Promise.all([
    web.repo.planSummaries(tenantId), new PlanStatusRepository(web.db).statusAll(tenantId, now), web.repo.lastRunsAll(tenantId),
    web.repo.activeRuns(tenantId), new ScheduleRepository(web.db).lastLeaderTick(), alertsRepo.listAlerts(tenantId, { open: true, limit: 100_000 }),
  ]);
  const st = new Map(statuses.map((x) => [x.planId, x]));
  const la = new Map(lasts.map((x) => [x.plan_id, x]));
  const ac = new Map(active.map((x) => [x.plan_id, x]));
  const al = new Map(alerts.map((x) => [x.plan_id, x]));
  const counts: Record<string, number> = Object.fromEntries(ORDER.map((k) => [k, 0]));
  const rows = plans.map((plan): DashboardRow => {
    const s = st.get(plan.id);
    const last = la.get(plan.id);
    const status = s?.status ?? 'never-tested';
    counts[status] = (counts[status] ?? 0) + 1;
    const measured = last?.measured_seconds ?? null;
    return {
      plan, status, nextDueAt: s?.nextDueAt ?? null, last, active: ac.get(plan.id), alert: al.get(plan.id),
      headroomSeconds: plan.rto_seconds !== null && measured !== null ? plan.rto_seconds - measured : null,
    };
  });
  rows.sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.plan.title.localeCompare(b.plan.title, 'de') || a.plan.id.localeCompare(b.plan.id));
  const needed = plans.some((p) => p.scheduled);
  return { rows, counts, scheduler: { needed, healthy: tick !== null && tick.ageSeconds < TICK_STALE_SECONDS, lastTickAt: tick?.at ?? null } };
}

export function headroomText(seconds: number | null, s: Strings, lang: Lang): SafeHtml | string {
  if (seconds === null) return s.dash;
  if (seconds < 0) return html`<span class="over"><span aria-hidden="true">▲ </span>${fill(s.headroomOver, { x: formatSeconds(-seconds, lang) })}</span>`;
  return formatSeconds(seconds, lang);
}

function alertCell(a: AlertRow | undefined, s: Strings, now: Date): SafeHtml | string {
  if (!a) return s.dash;
  const state = a.acknowledged_at ? s.alertAcknowledged : a.snoozed_until && a.snoozed_until > now ? s.alertSnoozed : s.alertOpen;
  return html`<a href="/alerts/${a.id}" class="alert-mark"><span aria-hidden="true">⚑ </span>${s.alertKind[a.kind] ?? a.kind}: ${state}</a>`;
}

export async function dashboardPages(app: FastifyInstance, web: Web): Promise<void> {
  app.get('/', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const now = web.now();
    // the restart order is read alongside the plans, not after them
    const [data, systems, unserved] = await Promise.all([
      loadDashboard(web, req.principal!.tenantId),
      web.systems?.overview(req.principal!.tenantId, { at: now }) ?? Promise.resolve([]),
      // a pool this tenant's plans name and no live worker serves: their tests wait for ever (Redis down: not known, no banner)
      web.pools?.unserved(req.principal!.tenantId).catch(() => []) ?? Promise.resolve([]),
    ]);
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
