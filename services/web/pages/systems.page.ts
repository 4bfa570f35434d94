import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { NotFound } from '../../errors.js';
import { html, type SafeHtml } from '../html.js';
import { dateTime, fill } from '../i18n.js';
import { checkbox, errorSummary, input, select, table, type FormErrors, type FormValues } from '../components.js';
import { csrfField, type PageCtx } from '../layout.js';
import { field, type Body } from '../forms.js';
import type { Web } from '../web.js';
import type { SystemOverview } from '../../systems/system.service.js';
import { restartTestsSection } from './restart-tests.page.js';

const mayEdit = (role: string) => role === 'operator' || role === 'admin';
const ID = /^[a-z0-9][a-z0-9-]{1,62}$/;
const NEEDS = ['', 'normal', 'hoch', 'sehr hoch'] as const;

/** The restart order as a table: tier, system, owner, emergency manual, plans, newest passed test of any kind. Dashboard and /systems. */
export function restartSection(ctx: PageCtx, systems: SystemOverview[], o: { edit?: boolean } = {}): SafeHtml | '' {
  const { s, lang } = ctx;
  if (!systems.length) return '';
  const lacking = systems.filter((x) => x.lacksRecentPass);
  return html`<section aria-labelledby="restart-h"><h2 id="restart-h">${s.restartOrder}</h2>
${lacking.length ? html`<div class="banner banner-danger" role="status"><p><strong>${fill(s.tier1Lacking, { n: lacking.length })}</strong> ${lacking.map((x) => x.name).join(', ')}</p></div>` : ''}
${table('restart', s.restartCaption, html`<tr><th scope="col">${s.colTier}</th><th scope="col">${s.system}</th><th scope="col">${s.colOwner}</th><th scope="col">${s.colHandbook}</th><th scope="col">${s.colPlans}</th><th scope="col">${s.colLastPassedAny}</th></tr>`,
    systems.map((x) => html`<tr${x.lacksRecentPass ? html` class="row-bad"` : ''}><td class="num">${x.tier}</td><th scope="row">${o.edit ? html`<a href="/systems/${encodeURIComponent(x.id)}">${x.name}</a>` : x.name}${x.retiredAt ? html` <span class="muted small">(${s.retired})</span>` : ''}${x.process ? html`<br><span class="muted small">${x.process}${x.protectionNeed ? ` · ${s.protectionNeed}: ${x.protectionNeed}` : ''}</span>` : ''}</th>
<td>${x.owner ?? s.dash}</td><td>${x.handbookRef ?? s.dash}</td>
<td>${x.plans.length ? html`<ul class="plain">${x.plans.map((p) => html`<li><a href="/plans/${encodeURIComponent(p.id)}">${p.title}</a> <span class="muted small">(${s.kindWords[p.kind] ?? p.kind})</span></li>`)}</ul>` : html`<span class="bad">${s.noPlanForSystem}</span>`}</td>
<td>${x.lastPassed ? html`<a href="/runs/${x.lastPassed.runId}">${dateTime(x.lastPassed.at, lang)}</a> <span class="muted small">(${s.originWords[x.lastPassed.origin] ?? x.lastPassed.origin})</span>` : s.dash}${x.lacksRecentPass ? html`<br><span class="bad"><span aria-hidden="true">▲ </span>${s.tier1NoRecentPass}</span>` : ''}</td></tr>`))}
</section>`;
}

function systemForm(ctx: PageCtx, action: string, v: FormValues, e: FormErrors | undefined, isNew: boolean): SafeHtml {
  const { s } = ctx;
  const f = 'sys';
  return html`<form method="post" action="${action}" class="card" novalidate>${errorSummary(f, e, s)}${csrfField(ctx)}
${isNew ? input({ form: f, s, name: 'id', label: s.systemId, value: v.id, errors: e, hint: s.systemIdHint, maxlength: 63, required: true }) : ''}
${input({ form: f, s, name: 'name', label: s.systemName, value: v.name, errors: e, maxlength: 200, required: true })}
<div class="row">${input({ form: f, s, name: 'tier', label: s.colTier, type: 'number', value: v.tier, errors: e, hint: s.tierHint, min: '1', required: true })}
${select({ form: f, s, name: 'protectionNeed', label: s.protectionNeed, value: v.protectionNeed, errors: e, options: NEEDS.map((n) => ({ value: n, label: n || s.dash })) })}</div>
${input({ form: f, s, name: 'process', label: s.process, value: v.process, errors: e, maxlength: 200 })}
${input({ form: f, s, name: 'owner', label: s.colOwner, value: v.owner, errors: e, maxlength: 200 })}
${input({ form: f, s, name: 'handbookRef', label: s.colHandbook, value: v.handbookRef, errors: e, hint: s.handbookHint, maxlength: 500 })}
${isNew ? '' : checkbox({ form: f, name: 'retired', label: s.retireSystem, checked: v.retired === '1' })}
<button type="submit" class="primary">${isNew ? s.systemCreate : s.systemSave}</button></form>`;
}

/**
 * The tenant's systems (docs/systems.md): the restart order for everyone,
 * adding and changing systems for operators and admins — the same service and
 * audit entries as PUT /api/v1/systems/{id}.
 */
export async function systemPages(app: FastifyInstance, web: Web): Promise<void> {
  async function list(req: FastifyRequest, reply: FastifyReply, form?: { values: FormValues; errors: FormErrors }, status = 200) {
    const ctx = await web.ctx(req);
    const { s } = ctx;
    const systems = (await web.systems?.overview(req.principal!.tenantId, { at: web.now(), retired: true })) ?? [];
    const edit = mayEdit(req.principal!.role);
    const processes = (await web.restartTests?.processes(req.principal!.tenantId)) ?? [];
    const body = html`<h1>${s.systemsTitle}</h1><p>${s.systemsIntro}</p>
${systems.length ? restartSection(ctx, systems, { edit }) : html`<p>${s.noSystems}</p>`}
${restartTestsSection(ctx, processes)}
${edit ? html`<section aria-labelledby="new-h"><h2 id="new-h">${s.systemNew}</h2>${systemForm(ctx, '/systems', form?.values ?? { tier: '1' }, form?.errors, true)}</section>` : ''}`;
    return web.send(reply, ctx, { title: s.systemsTitle, active: 'systems', body }, status);
  }

  /** The form's fields, checked as the API checks them; undefined values stay empty. */
  function read(b: Body, s: Awaited<ReturnType<Web['ctx']>>['s'], isNew: boolean): { values: FormValues; errors: FormErrors } {
    const values: FormValues = {
      id: field(b, 'id', 63), name: field(b, 'name', 200), tier: field(b, 'tier', 2), protectionNeed: field(b, 'protectionNeed', 20),
      process: field(b, 'process', 200), owner: field(b, 'owner', 200), handbookRef: field(b, 'handbookRef', 500), retired: field(b, 'retired', 1),
    };
    const errors: FormErrors = {};
    if (isNew && !ID.test(values.id!)) errors.id = s.systemIdHint;
    if (!values.name) errors.name = s.required;
    if (!/^[1-9]$/.test(values.tier!)) errors.tier = s.tierHint;
    if (!NEEDS.includes(values.protectionNeed as typeof NEEDS[number])) errors.protectionNeed = s.chooseOne;
    return { values, errors };
  }

  async function save(req: FastifyRequest, id: string, v: FormValues) {
    const a = auditFrom(req);
    await web.systems!.put(req.principal!.tenantId, id, {
      name: v.name!, tier: Number(v.tier), process: v.process || null, owner: v.owner || null, handbookRef: v.handbookRef || null,
      protectionNeed: (v.protectionNeed || null) as 'normal' | 'hoch' | 'sehr hoch' | null, retired: v.retired === '1',
    }, { actor: a.actor, ip: a.ip });
  }

  app.get('/systems', { config: { page: true } }, (req, reply) => list(req, reply));

  app.post<{ Body: Body }>('/systems', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    if (!web.systems) throw new NotFound('systems');
    const form = read(req.body, (await web.ctx(req)).s, true);
    if (!form.errors.id && (await web.systems.list(req.principal!.tenantId, { retired: true })).some((x) => x.id === form.values.id)) form.errors.id = (await web.ctx(req)).s.systemIdTaken;
    if (Object.keys(form.errors).length) return list(req, reply, form, 400);
    await save(req, form.values.id!, form.values);
    return web.redirect(reply, '/systems');
  });

  app.get<{ Params: { id: string } }>('/systems/:id', { config: { page: true } }, async (req, reply) => {
    const ctx = await web.ctx(req);
    const { s } = ctx;
    if (!web.systems) throw new NotFound('systems');
    const x = await web.systems.get(req.principal!.tenantId, req.params.id);
    const values: FormValues = {
      name: x.name, tier: String(x.tier), protectionNeed: x.protectionNeed ?? '', process: x.process ?? '', owner: x.owner ?? '', handbookRef: x.handbookRef ?? '', retired: x.retiredAt ? '1' : '',
    };
    const body = html`<p class="crumbs"><a href="/systems">${s.systemsTitle}</a> › ${x.name}</p><h1>${x.name} <span class="muted mono small">${x.id}</span></h1>
${mayEdit(req.principal!.role) ? systemForm(ctx, `/systems/${encodeURIComponent(x.id)}`, values, undefined, false) : html`<p class="muted">${s.systemEditRole}</p>`}`;
    return web.send(reply, ctx, { title: x.name, active: 'systems', body });
  });

  app.post<{ Params: { id: string }; Body: Body }>('/systems/:id', { config: { page: true }, preValidation: requireRole('operator') }, async (req, reply) => {
    if (!web.systems) throw new NotFound('systems');
    // only an existing system of this tenant is changed here (a new one: POST /systems)
    await web.systems.get(req.principal!.tenantId, req.params.id);
    const ctx = await web.ctx(req);
    const form = read(req.body, ctx.s, false);
    if (Object.keys(form.errors).length) {
      const body = html`<h1>${form.values.name || req.params.id}</h1>${systemForm(ctx, `/systems/${encodeURIComponent(req.params.id)}`, form.values, form.errors, false)}`;
      return web.send(reply, ctx, { title: req.params.id, active: 'systems', body }, 400);
    }
    await save(req, req.params.id, form.values);
    return web.redirect(reply, '/systems');
  });
}
