import type { FastifyInstance } from 'fastify';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { NotFound } from '../../errors.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill, formatSeconds } from '../i18n.js';
import { table, verdictLight } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, type Body } from '../forms.js';
import type { Web } from '../web.js';
import type { ProcessJson, RestartTestJson } from '../../systems/restart-test.service.js';

const mayRun = (role: string) => role === 'operator' || role === 'admin';
const secs = (n: number | null | undefined, lang: PageCtx['lang']) => (n === null || n === undefined ? '–' : formatSeconds(n, lang));

/** The processes with their RTO and newest restart test; operators set the RTO and start a test. On /systems. */
export function restartTestsSection(ctx: PageCtx, processes: ProcessJson[]): SafeHtml | '' {
  const { s, lang } = ctx;
  if (!processes.length) return '';
  const edit = mayRun(ctx.principal?.role ?? '');
  return html`<section aria-labelledby="rt-h"><h2 id="rt-h">${s.rtTitle}</h2><p>${s.rtIntro}</p>
${table('restart-tests', s.rtCaption, html`<tr><th scope="col">${s.process}</th><th scope="col">${s.rtSystems}</th><th scope="col">${s.rtRto}</th><th scope="col">${s.rtLast}</th>${edit ? html`<th scope="col">${s.rtActions}</th>` : ''}</tr>`,
    processes.map((p) => html`<tr><th scope="row">${p.name}</th>
<td><ul class="plain">${p.systems.map((x) => html`<li>${fill(s.rtTierOf, { tier: x.tier })}: ${x.name}</li>`)}</ul></td>
<td>${p.rtoSeconds === null ? html`<span class="muted">${s.rtNoRto}</span>` : formatSeconds(p.rtoSeconds, lang)}</td>
<td>${p.lastTest ? html`<a href="/restart-tests/${p.lastTest.id}">${dateTime(p.lastTest.startedAt, lang)}</a> ${p.lastTest.status === 'running' ? s.rtRunning : verdictLight(p.lastTest.verdict, lang)}${p.lastTest.measuredSeconds !== null ? html`<br><span class="muted small">${fill(s.rtMeasured, { t: formatSeconds(p.lastTest.measuredSeconds, lang) })}</span>` : ''}` : s.dash}</td>
${edit ? html`<td><form method="post" action="/restart-tests" class="inline">${csrfField(ctx)}<input type="hidden" name="process" value="${p.name}"><button type="submit" class="primary">${s.rtStart}</button></form>
<form method="post" action="/processes" class="inline">${csrfField(ctx)}<input type="hidden" name="process" value="${p.name}"><label>${s.rtRto} <input name="rto" size="6" maxlength="40" value="${p.rtoSeconds === null ? '' : `${Math.round(p.rtoSeconds / 60)}m`}" aria-label="${fill(s.rtRtoOf, { p: p.name })}"></label> <button type="submit">${s.systemSave}</button></form></td>` : ''}</tr>`))}
</section>`;
}

function testPage(ctx: PageCtx, t: RestartTestJson): SafeHtml {
  const { s, lang } = ctx;
  const rows = t.tiers.flatMap((tier) => tier.runs.map((r, i) => html`<tr>${i === 0 ? html`<td class="num" rowspan="${tier.runs.length}">${tier.tier}</td>` : ''}
<th scope="row">${r.systemName}</th><td><a href="/plans/${encodeURIComponent(r.planId)}">${r.planId}</a></td>
<td>${r.runId ? html`<a href="/runs/${r.runId}">${r.status === 'finished' ? verdictLight(r.verdict, lang) : s.rtRunStatus[r.status] ?? r.status}</a>` : (s.rtTierState[tier.state] ?? tier.state)}</td>
<td class="num">${secs(r.serviceRtoSeconds, lang)}</td>${i === 0 ? html`<td class="num" rowspan="${tier.runs.length}">${tier.seconds === null ? (s.rtTierState[tier.state] ?? tier.state) : formatSeconds(tier.seconds, lang)}</td>` : ''}</tr>`));
  const r = t.result;
  return html`<p class="crumbs"><a href="/systems">${s.systemsTitle}</a> › ${s.rtTitle}</p>
<h1>${fill(s.rtOf, { p: t.process })}</h1>
<p>${t.status === 'running' ? html`<strong>${s.rtRunning}</strong> (${fill(s.rtTierOf, { tier: t.currentTier ?? '–' })})` : verdictLight(t.verdict, lang)} · ${s.rtStarted} ${dateTime(t.startedAt, lang)}${t.finishedAt ? html` · ${s.rtFinished} ${dateTime(t.finishedAt, lang)}` : ''} · ${t.triggeredBy}</p>
<dl class="facts"><dt>${s.rtRto}</dt><dd>${t.rtoSeconds === null ? s.rtNoRto : formatSeconds(t.rtoSeconds, lang)}</dd>
<dt>${s.rtTotal}</dt><dd>${r?.measuredSeconds === null || r?.measuredSeconds === undefined ? s.dash : html`${formatSeconds(r.measuredSeconds, lang)}${r.rto.met === false ? html` <span class="bad">${s.rtOver}</span>` : ''}`}</dd></dl>
${table('rt-tiers', s.rtTiersCaption, html`<tr><th scope="col">${s.colTier}</th><th scope="col">${s.system}</th><th scope="col">${s.rtPlan}</th><th scope="col">${s.rtRun}</th><th scope="col">${s.rtServiceRto}</th><th scope="col">${s.rtTierTime}</th></tr>`, rows)}
${t.notTested.length ? html`<h2>${s.rtNotTested}</h2><ul>${t.notTested.map((n) => html`<li>${fill(s.rtTierOf, { tier: n.tier })}: <strong>${n.systemName}</strong> — ${n.reason}</li>`)}</ul>` : ''}
${t.findings.length ? html`<h2>${s.rtFindings}</h2><ul>${t.findings.map((f) => html`<li><code>${f.code}</code> ${f.message}</li>`)}</ul>` : ''}
${t.status === 'running' && mayRun(ctx.principal?.role ?? '') ? html`<form method="post" action="/restart-tests/${t.id}/cancel">${csrfField(ctx)}<button type="submit" class="danger">${s.rtCancel}</button></form>` : ''}`;
}

/** A restart test's page, and the forms of the /systems page (same services and audit entries as the API). */
export async function restartTestPages(app: FastifyInstance, web: Web): Promise<void> {
  const need = () => {
    if (!web.restartTests) throw new NotFound('restart tests');
    return web.restartTests;
  };

  app.get<{ Params: { id: string } }>('/restart-tests/:id', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const t = await need().get(req.principal!.tenantId, req.params.id);
    return web.send(reply, ctx, { title: fill(ctx.s.rtOf, { p: t.process }), active: 'systems', body: testPage(ctx, t) });
  });

  app.post<{ Body: Body }>('/restart-tests', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const process = field(req.body, 'process', 200) ?? '';
    const a = auditFrom(req);
    const t = await need().start(req.principal!.tenantId, process, a.actor.name);
    await web.audit?.record({ ...a, action: 'restart-test.started', subject: { type: 'restart-test', id: t.id }, details: { process: t.process, via: 'web' } });
    return web.redirect(reply, `/restart-tests/${t.id}`);
  });

  app.post<{ Params: { id: string } }>('/restart-tests/:id/cancel', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const a = auditFrom(req);
    const t = await need().cancel(req.principal!.tenantId, req.params.id);
    await web.audit?.record({ ...a, action: 'restart-test.cancelled', subject: { type: 'restart-test', id: t.id }, details: { process: t.process, via: 'web' } });
    return web.redirect(reply, `/restart-tests/${t.id}`);
  });

  app.post<{ Body: Body }>('/processes', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    const process = field(req.body, 'process', 200) ?? '';
    const rto = field(req.body, 'rto', 40) ?? '';
    const a = auditFrom(req);
    const saved = await need().putProcess(req.principal!.tenantId, process, { rto: rto || null }, a.actor.name);
    await web.audit?.record({ ...a, action: 'process.changed', subject: { type: 'process', id: saved.process.name }, details: { rtoSeconds: saved.process.rto_seconds, via: 'web' } });
    return web.redirect(reply, '/systems');
  });
}
