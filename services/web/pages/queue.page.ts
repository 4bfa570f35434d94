import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { actorOf } from '../../auth/principal.js';
import { DomainError, NotFound } from '../../errors.js';
import { queueScope, LIST_LIMIT, QueueUnavailable, type QueueJobView, type QueueOverview, type QueuePoolView, type QueueStateView } from '../../runs/queue-ops.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill, formatSeconds, verdictLabel, type Strings } from '../i18n.js';
import { notice, table } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { adminNav } from './admin-nav.js';
import type { Web } from '../web.js';

const PATH = '/admin/queue';

function count(st: QueueStateView, s: Strings): string {
  return st.exact ? String(st.count) : fill(s.atLeast, { n: st.count });
}

function workersLine(p: QueuePoolView, s: Strings): SafeHtml {
  if (p.workers === null) return notice(s.queueWorkersUnknown, 'warn');
  if (p.workers === 0) return p.waiting.count > 0 ? notice(s.queueNoWorkersWaiting, 'warn') : html`<p>${s.queueNoWorkers}</p>`;
  return html`<p>${fill(s.queueWorkers, { n: p.workers })}</p>`;
}

function jobRow(ctx: PageCtx, j: QueueJobView, installation: boolean): SafeHtml {
  const { s, lang } = ctx;
  // a run page opens only inside the run's tenant
  const own = j.runId && (!installation || (j.tenant && j.tenant.id === ctx.principal?.tenantId));
  const plan = j.planTitle ?? j.planId;
  const run = !j.runId || !j.runStatus ? html`<span class="muted">${s.queueNoRun}</span>`
    : html`${own ? html`<a href="/runs/${j.runId}">${plan}</a>` : plan}<br><span class="small mono">${j.runId}</span><br><span class="small">${s.runStatus[j.runStatus] ?? j.runStatus}${j.verdict ? html` (${verdictLabel(j.verdict as never, lang)})` : ''}</span>`;
  const when = html`${dateTime(j.enqueuedAt, lang)}<br><span class="small">${fill(s.queueAge, { age: formatSeconds(j.ageSeconds, lang) })}</span>`;
  const label = j.planTitle ?? j.runId ?? j.jobId;
  const actions = j.state !== 'failed' || !j.runId ? '' : html`${j.runStatus === 'queued'
    ? html`<form method="post" action="${PATH}/${j.runId}/retry" class="inline">${csrfField(ctx)}<button type="submit" aria-label="${s.queueRetry}: ${label}">${s.queueRetry}</button></form>`
    : html`<p class="small muted">${s.queueRunFinishedHint}</p>`}
<form method="post" action="${PATH}/${j.runId}/remove" class="inline">${csrfField(ctx)}<button type="submit" class="danger" aria-label="${s.queueRemove}: ${label}">${s.queueRemove}</button></form>`;
  return html`<tr><th scope="row">${s.jobStates[j.state] ?? j.state}</th><td>${run}</td>${installation ? html`<td>${j.tenant ? j.tenant.name : s.dash}</td>` : ''}
<td>${when}</td><td>${j.failedReason ? html`<span class="small">${dateTime(j.failedAt, lang)}</span><br><code class="break">${j.failedReason}</code>` : s.dash}</td><td>${actions}</td></tr>`;
}

function poolSection(ctx: PageCtx, p: QueuePoolView, installation: boolean): SafeHtml {
  const { s } = ctx;
  const jobs = [...p.active.jobs, ...p.waiting.jobs, ...p.failed.jobs];
  const head = html`<tr><th scope="col">${s.colJobState}</th><th scope="col">${s.colRun}</th>${installation ? html`<th scope="col">${s.colTenant}</th>` : ''}<th scope="col">${s.colEnqueued}</th><th scope="col">${s.colError}</th><th scope="col">${s.actions}</th></tr>`;
  const id = `pool-${p.pool}`;
  return html`<section aria-labelledby="${id}-h"><h2 id="${id}-h">${fill(s.queuePool, { pool: p.pool })}</h2>
${workersLine(p, s)}
<p>${fill(s.queueCounts, { waiting: count(p.waiting, s), active: count(p.active, s), failed: count(p.failed, s) })}</p>
${jobs.length ? table(id, fill(s.queueCaption, { pool: p.pool }), head, jobs.map((j) => jobRow(ctx, j, installation))) : html`<p>${s.queueEmpty}</p>`}</section>`;
}

/** Why a retry was refused, in the page's language. */
function refusal(err: DomainError, s: Strings, lang: PageCtx['lang']): string {
  const extra = err.extra as { runStatus?: string; verdict?: string } | undefined;
  if (extra?.runStatus === 'finished') return fill(s.queueRefusedFinished, { verdict: extra.verdict ? verdictLabel(extra.verdict as never, lang) : s.dash });
  if (extra?.runStatus === 'running') return s.queueRefusedRunning;
  return s.queueGone;
}

/**
 * /admin/queue: the queue per worker pool for admins (a tenant's admin: the
 * tenant's jobs; provider admins: the installation's), with retry and removal
 * of failed jobs. The API twin is /api/v1/queue; both use QueueOpsService.
 */
export async function queuePages(app: FastifyInstance, web: Web): Promise<void> {
  const ops = web.queueOps;
  if (!ops) return;
  // provider admins reach it outside any tenant too (config.provider); the scope decides what they see
  const admin = { config: { page: true, provider: true }, preValidation: async (req: FastifyRequest) => { queueScope(req.principal); } };

  async function render(req: FastifyRequest, reply: FastifyReply, o: { error?: string } = {}, status = 200) {
    const ctx = await web.ctx(req);
    const { s } = ctx;
    const p = req.principal!;
    const scope = queueScope(p);
    const installation = scope.kind === 'installation';
    let view: QueueOverview | undefined;
    try {
      view = await ops!.overview(scope);
    } catch (err) {
      if (!(err instanceof QueueUnavailable)) throw err;
      status = 503;
    }
    const done = (req.query as { done?: string }).done;
    const inTenantAdmin = Boolean(p.tenantId) && p.role === 'admin';
    const body = html`${inTenantAdmin ? html`<h1>${s.adminTitle}</h1>${adminNav(ctx, 'queue')}<h2>${s.queueTitle}</h2>` : html`<h1>${s.queueTitle}</h1>`}
<p>${installation ? s.queueIntroAll : s.queueIntro}</p>
${done === 'retried' ? notice(s.queueRetried, 'ok') : done === 'removed' ? notice(s.queueRemoved, 'ok') : ''}
${o.error ? notice(o.error, 'warn') : ''}
${view ? html`${view.pools.map((pool) => poolSection(ctx, pool, installation))}<p class="hint">${fill(s.queueShown, { n: LIST_LIMIT })}</p>` : notice(s.queueUnavailable, 'warn')}`;
    return web.send(reply, ctx, { title: `${s.queueTitle} – ${s.adminTitle}`, active: inTenantAdmin ? 'admin' : p.session?.user.role === 'provider-admin' ? 'tenants' : 'admin', body }, status);
  }

  app.get(PATH, admin, (req, reply) => render(req, reply));

  for (const action of ['retry', 'remove'] as const) {
    app.post<{ Params: { id: string } }>(`${PATH}/:id/${action}`, admin, async (req, reply) => {
      const scope = queueScope(req.principal);
      const by = { actor: actorOf(req.principal!), ...(req.ip && { ip: req.ip }) };
      try {
        if (action === 'retry') await ops.retry(scope, req.params.id, by);
        else await ops.remove(scope, req.params.id, by);
      } catch (err) {
        if (err instanceof NotFound) throw err;
        if (err instanceof DomainError && (err.statusCode === 409 || err.statusCode === 503)) {
          const { s, lang } = await web.ctx(req);
          return render(req, reply, { error: err.statusCode === 503 ? s.queueUnavailable : refusal(err, s, lang) }, err.statusCode);
        }
        throw err;
      }
      return web.redirect(reply, `${PATH}?done=${action === 'retry' ? 'retried' : 'removed'}`);
    });
  }
}
