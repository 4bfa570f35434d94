import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '../../../db/schema.js';
import { requireRole } from '../../api/plugins/auth.js';
import { auditFrom } from '../../api/audit-hook.js';
import { ROLES } from '../../auth/token.service.js';
import { SESSION_COOKIE } from '../../auth/session.service.js';
import type { Invitation } from '../../auth/account.types.js';
import { DomainError, Forbidden, NotFound } from '../../errors.js';
import { html } from '../html.js';
import { dateTime, fill, roleLabel, type Strings } from '../i18n.js';
import { checkbox, errorSummary, input, notice, select, table, type FormErrors, type FormValues } from '../components.js';
import { csrfField } from '../layout.js';
import { field, isDate, isEmail, isUuid, type Body } from '../forms.js';
import { setFlash, takeFlash } from '../flash.js';
import type { Web } from '../web.js';
import { queuePages } from './queue.page.js';
import { adminNav } from './admin-nav.js';

type Form = { values: FormValues; errors: FormErrors };
const roleOptions = (s: Strings) => ROLES.map((r) => ({ value: r, label: roleLabel(r, s) }));

/** Errors a service reports with `details[{path, message}]` land next to the matching field, the rest above the form. */
export function domainErrors(err: unknown, fields: string[]): FormErrors | undefined {
  if (!(err instanceof DomainError) || err.statusCode >= 500 || err.statusCode === 404) return undefined;
  const out: FormErrors = {};
  for (const d of (err.details ?? []) as { path?: string; message?: string }[]) {
    const f = fields.find((x) => (d.path ?? '').split('.').pop() === x);
    if (f) out[f] = d.message ?? err.message;
  }
  if (Object.keys(out).length === 0) out._ = err.message;
  return out;
}

/** A tenant's admin lets the service provider in: role, reason, until when; and ends it. */
export async function grantPages(app: FastifyInstance, web: Web): Promise<void> {
  const path = '/admin/provider-access';
  const admin = { config: { page: true }, preValidation: requireRole('admin') };
  const rc = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

  async function render(req: FastifyRequest, reply: FastifyReply, form?: Form, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    if (!web.tenantAdmin) return web.send(reply, ctx, { title: s.providerAccess, active: 'admin', body: html`<h1>${s.adminTitle}</h1>${notice(s.accountsMissing, 'warn')}` }, 503);
    const grants = await web.tenantAdmin.listGrants(req.principal!);
    const head = html`<tr><th scope="col">${s.colRole}</th><th scope="col">${s.colReason}</th><th scope="col">${s.colGrantedBy}</th><th scope="col">${s.colExpires}</th><th scope="col">${s.colState}</th><th scope="col">${s.actions}</th></tr>`;
    const rows = grants.map((g) => html`<tr><th scope="row">${roleLabel(g.role, s)}</th><td>${g.reason}</td><td>${g.grantedBy}<br><span class="small">${dateTime(g.grantedAt, lang)}</span></td>
<td>${dateTime(g.expiresAt, lang)}</td><td>${g.active ? s.grantActiveState : g.revokedAt ? html`${s.revoked} ${dateTime(g.revokedAt, lang)}` : s.grantEnded}</td>
<td>${g.active ? html`<form method="post" action="${path}/${g.id}/revoke">${csrfField(ctx)}<button type="submit" class="danger" aria-label="${s.revoke}: ${g.reason}">${s.revoke}</button></form>` : ''}</td></tr>`);
    const v = form?.values ?? { role: 'auditor' };
    const e = form?.errors;
    const body = html`<h1>${s.adminTitle}</h1>${adminNav(ctx, 'access')}
<h2>${s.providerAccess}</h2><p>${s.providerAccessIntro}</p>
${grants.length ? table('grants', s.grantsCaption, head, rows) : html`<p>${s.none}</p>`}
<form method="post" action="${path}" class="card" novalidate><h2>${s.grantCreate}</h2>${errorSummary('grant', e, s)}${csrfField(ctx)}
${select({ form: 'grant', s, name: 'role', label: s.role, value: v.role, errors: e, options: roleOptions(s) })}
${input({ form: 'grant', s, name: 'reason', label: s.grantReason, value: v.reason, errors: e, required: true, maxlength: 500 })}
${input({ form: 'grant', s, name: 'expiresAt', label: s.grantValidUntil, type: 'date', value: v.expiresAt, errors: e, required: true })}
<button type="submit" class="primary">${s.grantCreate}</button></form>`;
    return web.send(reply, ctx, { title: `${s.providerAccess} – ${s.adminTitle}`, active: 'admin', body }, status);
  }

  app.get(path, admin, (req, reply) => render(req, reply));

  app.post<{ Body: Body }>(path, admin, async (req, reply) => {
    if (!web.tenantAdmin) return render(req, reply);
    const s = (await web.ctx(req)).s;
    const values = { role: field(req.body, 'role', 20), reason: field(req.body, 'reason', 500), expiresAt: field(req.body, 'expiresAt', 10) };
    const errors: FormErrors = {};
    if (!ROLES.includes(values.role as Role)) errors.role = s.chooseOne;
    if (values.reason.length < 3) errors.reason = s.required;
    if (!isDate(values.expiresAt)) errors.expiresAt = s.invalidDate;
    if (Object.keys(errors).length) return render(req, reply, { values, errors }, 400);
    try {
      // "until 31 March inclusive": the end of that day in Berlin is close enough to the next midnight UTC
      await web.tenantAdmin.createGrant(req.principal!, { role: values.role as Role, reason: values.reason, expiresAt: `${values.expiresAt}T23:59:59+01:00` }, rc(req));
    } catch (err) {
      const e = domainErrors(err, ['role', 'reason', 'expiresAt']);
      if (!e) throw err;
      return render(req, reply, { values, errors: e }, (err as DomainError).statusCode);
    }
    return web.redirect(reply, path);
  });

  app.post<{ Params: { id: string } }>(`${path}/:id/revoke`, admin, async (req, reply) => {
    if (!isUuid(req.params.id) || !web.tenantAdmin) throw new NotFound(`grant ${req.params.id}`);
    await web.tenantAdmin.revokeGrant(req.principal!, req.params.id, rc(req));
    return web.redirect(reply, path);
  });
}

export async function tokenPages(app: FastifyInstance, web: Web): Promise<void> {
  const flashPath = '/admin/tokens';
  async function render(req: FastifyRequest, reply: FastifyReply, form?: Form, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const p = req.principal!;
    const created = form ? undefined : takeFlash<{ token: string; name: string }>(req, reply, { sessionId: p.session?.session.id ?? '', kind: 'token', path: flashPath });
    const list = await web.tokens.list(p.tenantId);
    const now = web.now();
    const head = html`<tr><th scope="col">${s.colName}</th><th scope="col">${s.colRole}</th><th scope="col">${s.colCreated}</th><th scope="col">${s.colExpires}</th><th scope="col">${s.colLastUsed}</th><th scope="col">${s.actions}</th></tr>`;
    const rows = list.map((t) => html`<tr><th scope="row">${t.name}</th><td>${roleLabel(t.role, s)}</td><td>${dateTime(t.created_at, lang)}<br><span class="small">${t.created_by}</span></td>
<td>${t.expires_at ? dateTime(t.expires_at, lang) : s.dash}${t.expires_at && t.expires_at < now ? html` (${s.expired})` : ''}</td><td>${t.last_used_at ? dateTime(t.last_used_at, lang) : s.dash}</td>
<td>${t.revoked_at ? html`${s.revoked} ${dateTime(t.revoked_at, lang)}` : html`<form method="post" action="/admin/tokens/${t.id}/revoke">${csrfField(ctx)}<button type="submit" class="danger" aria-label="${s.revoke}: ${t.name}">${s.revoke}</button></form>`}</td></tr>`);
    const v = form?.values ?? { role: 'auditor' };
    const e = form?.errors;
    const body = html`<h1>${s.adminTitle}</h1>${adminNav(ctx, 'tokens')}
<h2>${s.tokens}</h2>
${created ? html`<div class="notice notice-ok secret" role="status"><p>${s.tokenCreated}</p><p><code class="break">${created.token}</code></p><p class="hint">${created.name} – ${s.tokenNote}</p></div>` : ''}
${list.length ? table('tokens', s.tokensCaption, head, rows) : html`<p>${s.none}</p>`}
<form method="post" action="/admin/tokens" class="card" novalidate><h2>${s.createToken}</h2>${errorSummary('tok', e, s)}${csrfField(ctx)}
${input({ form: 'tok', s, name: 'name', label: s.tokenName, value: v.name, errors: e, required: true, maxlength: 100, hint: s.tokenNote })}
${select({ form: 'tok', s, name: 'role', label: s.role, value: v.role, errors: e, options: roleOptions(s) })}
${input({ form: 'tok', s, name: 'expiresAt', label: s.expiresAt, type: 'date', value: v.expiresAt, errors: e })}
<button type="submit" class="primary">${s.createToken}</button></form>`;
    return web.send(reply, ctx, { title: `${s.tokens} – ${s.adminTitle}`, active: 'admin', body }, status);
  }

  const admin = { config: { page: true }, preValidation: requireRole('admin') };
  app.get('/admin/tokens', admin, (req, reply) => render(req, reply));

  app.post<{ Body: Body }>('/admin/tokens', admin, async (req, reply) => {
    const s = (await web.ctx(req)).s;
    const values = { name: field(req.body, 'name', 100), role: field(req.body, 'role', 20), expiresAt: field(req.body, 'expiresAt', 10) };
    const errors: FormErrors = {};
    if (values.name.length < 2) errors.name = s.required;
    if (!ROLES.includes(values.role as Role)) errors.role = s.chooseOne;
    if (values.expiresAt && !isDate(values.expiresAt)) errors.expiresAt = s.invalidDate;
    if (Object.keys(errors).length) return render(req, reply, { values, errors }, 400);
    let created;
    try {
      created = await web.tokens.create(req.principal!.tenantId, { name: values.name, role: values.role as Role, ...(values.expiresAt && { expiresAt: `${values.expiresAt}T00:00:00Z` }) }, req.principal!.name);
    } catch (err) {
      const e = domainErrors(err, ['name', 'role', 'expiresAt']);
      if (!e) throw err;
      return render(req, reply, { values, errors: e }, 400);
    }
    await web.audit?.record({ ...auditFrom(req), action: 'token.created', subject: { type: 'token', id: created.id }, details: { name: created.name, role: created.role } });
    setFlash(reply, { sessionId: req.principal!.session?.session.id ?? '', kind: 'token', data: { token: created.token, name: created.name }, path: flashPath, secure: web.sessions?.cookieOptions().secure ?? false });
    return web.redirect(reply, flashPath);
  });

  app.post<{ Params: { id: string } }>('/admin/tokens/:id/revoke', admin, async (req, reply) => {
    if (!isUuid(req.params.id)) throw new NotFound(`token ${req.params.id}`);
    await web.tokens.revoke(req.principal!.tenantId, req.params.id);
    await web.audit?.record({ ...auditFrom(req), action: 'token.revoked', subject: { type: 'token', id: req.params.id } });
    return web.redirect(reply, flashPath);
  });
}

export async function userPages(app: FastifyInstance, web: Web): Promise<void> {
  const flashPath = '/admin/users';
  const admin = { config: { page: true }, preValidation: requireRole('admin') };
  const rc = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

  async function render(req: FastifyRequest, reply: FastifyReply, form?: Form & { userId?: string }, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    if (!web.accounts) return web.send(reply, ctx, { title: s.users, active: 'admin', body: html`<h1>${s.adminTitle}</h1>${adminNav(ctx, 'users')}<h2>${s.notAvailable}</h2>${notice(s.accountsMissing, 'warn')}` }, 503);
    const p = req.principal!;
    const invited = form ? undefined : takeFlash<Pick<Invitation, 'inviteUrl' | 'expiresAt'>>(req, reply, { sessionId: p.session?.session.id ?? '', kind: 'invite', path: flashPath });
    const users = await web.accounts.listUsers(p);
    const head = html`<tr><th scope="col">${s.colEmail}</th><th scope="col">${s.colName}</th><th scope="col">${s.colRole}</th><th scope="col">${s.col2fa}</th><th scope="col">${s.colUserState}</th><th scope="col">${s.colLastLogin}</th><th scope="col">${s.changeUser}</th></tr>`;
    const rows = users.map((u) => {
      const f = `u${u.id.slice(0, 8)}`;
      const mine = form?.userId === u.id ? form : undefined;
      return html`<tr><th scope="row">${u.email}</th><td>${u.name}</td><td>${roleLabel(u.role, s)}</td><td>${u.sso ? s.sso : u.mfa ? s.yes : s.no}</td>
<td>${u.disabled ? s.disabled : u.locked ? s.locked : s.active}</td><td>${u.lastLoginAt ? dateTime(u.lastLoginAt, lang) : s.dash}</td>
<td>${u.role === 'provider-admin' ? '' : html`<form method="post" action="/admin/users/${u.id}" class="inline-form" novalidate>${errorSummary(f, mine?.errors, s)}${csrfField(ctx)}
${select({ form: f, s, name: 'role', label: s.role, value: mine?.values.role ?? u.role, errors: mine?.errors, options: roleOptions(s) })}
${checkbox({ form: f, name: 'disabled', label: s.disable, checked: u.disabled })}
${u.mfa ? checkbox({ form: f, name: 'resetMfa', label: s.resetMfa }) : ''}
<button type="submit" aria-label="${s.changeUser}: ${u.email}">${s.changeUser}</button></form>`}</td></tr>`;
    });
    const v = form && !form.userId ? form.values : { role: 'operator' };
    const e = form && !form.userId ? form.errors : undefined;
    const body = html`<h1>${s.adminTitle}</h1>${adminNav(ctx, 'users')}
<h2>${s.users}</h2>
${invited ? html`<div class="notice notice-ok secret" role="status"><p>${fill(s.inviteLink, { until: dateTime(invited.expiresAt, lang) })}</p><p><code class="break">${invited.inviteUrl}</code></p><p class="hint">${s.inviteCopy}</p></div>` : ''}
${table('users', s.usersCaption, head, rows)}
<form method="post" action="/admin/users/invite" class="card" novalidate><h2>${s.inviteTitle}</h2>${errorSummary('inv', e, s)}${csrfField(ctx)}
${input({ form: 'inv', s, name: 'email', label: s.email, type: 'email', value: v.email, errors: e, required: true, autocomplete: 'off', maxlength: 254 })}
${input({ form: 'inv', s, name: 'name', label: s.name, value: v.name, errors: e, required: true, maxlength: 200 })}
${select({ form: 'inv', s, name: 'role', label: s.role, value: v.role, errors: e, options: roleOptions(s) })}
<button type="submit" class="primary">${s.invite}</button></form>`;
    return web.send(reply, ctx, { title: `${s.users} – ${s.adminTitle}`, active: 'admin', body }, status);
  }

  app.get('/admin/users', admin, (req, reply) => render(req, reply));

  app.post<{ Body: Body }>('/admin/users/invite', admin, async (req, reply) => {
    if (!web.accounts) return render(req, reply);
    const s = (await web.ctx(req)).s;
    const values = { email: field(req.body, 'email', 254).toLowerCase(), name: field(req.body, 'name', 200), role: field(req.body, 'role', 20) };
    const errors: FormErrors = {};
    if (!isEmail(values.email)) errors.email = s.invalidEmail;
    if (!values.name) errors.name = s.required;
    if (!ROLES.includes(values.role as Role)) errors.role = s.chooseOne;
    if (Object.keys(errors).length) return render(req, reply, { values, errors }, 400);
    let inv: Invitation;
    try {
      inv = await web.accounts.invite(req.principal!, { email: values.email, name: values.name, role: values.role as Role }, rc(req));
    } catch (err) {
      const e = domainErrors(err, ['email', 'name', 'role']);
      if (!e) throw err;
      return render(req, reply, { values, errors: e }, (err as DomainError).statusCode);
    }
    setFlash(reply, { sessionId: req.principal!.session?.session.id ?? '', kind: 'invite', data: { inviteUrl: inv.inviteUrl, expiresAt: inv.expiresAt }, path: flashPath, secure: web.sessions?.cookieOptions().secure ?? false });
    return web.redirect(reply, flashPath);
  });

  app.post<{ Params: { id: string }; Body: Body }>('/admin/users/:id', admin, async (req, reply) => {
    if (!web.accounts) return render(req, reply);
    if (!isUuid(req.params.id)) throw new NotFound(`user ${req.params.id}`);
    const s = (await web.ctx(req)).s;
    const values = { role: field(req.body, 'role', 20), disabled: field(req.body, 'disabled', 1), resetMfa: field(req.body, 'resetMfa', 1) };
    if (!ROLES.includes(values.role as Role)) return render(req, reply, { userId: req.params.id, values, errors: { role: s.chooseOne } }, 400);
    try {
      await web.accounts.changeUser(req.principal!, req.params.id, { role: values.role as Role, disabled: values.disabled === '1', ...(values.resetMfa === '1' && { resetMfa: true }) }, rc(req));
    } catch (err) {
      const e = domainErrors(err, ['role']);
      if (!e) throw err;
      return render(req, reply, { userId: req.params.id, values, errors: e }, (err as DomainError).statusCode);
    }
    return web.redirect(reply, flashPath);
  });
}

export async function tenantPages(app: FastifyInstance, web: Web): Promise<void> {
  const flashPath = '/admin/tenants';
  const rc = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });
  // provider admins only, also while they act in no tenant (route config `provider`)
  const provider = { config: { page: true, provider: true }, preValidation: async (req: FastifyRequest) => {
    if (req.principal?.session?.user.role !== 'provider-admin') throw new Forbidden('provider admins only');
  } };

  async function render(req: FastifyRequest, reply: FastifyReply, form?: Form, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    if (!web.tenantAdmin || !web.sessions) return web.send(reply, ctx, { title: s.tenants, active: 'tenants', body: html`<h1>${s.tenants}</h1>${notice(s.accountsMissing, 'warn')}` }, 503);
    const p = req.principal!;
    const invited = form ? undefined : takeFlash<Pick<Invitation, 'inviteUrl' | 'expiresAt'>>(req, reply, { sessionId: p.session?.session.id ?? '', kind: 'tenant-invite', path: flashPath });
    const tenants = await web.tenantAdmin.listTenants(p);
    const head = html`<tr><th scope="col">${s.colName}</th><th scope="col">${s.colSlug}</th><th scope="col">${s.colGrant}</th><th scope="col">${s.actions}</th></tr>`;
    const rows = tenants.map((t) => html`<tr><th scope="row">${t.name}${t.disabled ? html` <span class="muted">(${s.tenantDisabled})</span>` : ''}</th><td class="mono">${t.slug}</td>
<td>${t.grant ? fill(s.grantUntil, { role: roleLabel(t.grant.role, s), until: dateTime(t.grant.expiresAt, lang) }) : s.noGrant}</td>
<td>${t.id === p.tenantId ? html`<strong><span aria-hidden="true">✔ </span>${s.current}</strong>` : t.grant && !t.disabled
      ? html`<form method="post" action="/admin/tenants/${t.id}/enter">${csrfField(ctx)}<button type="submit" aria-label="${s.enterTenant}: ${t.name}">${s.enterTenant}</button></form>` : ''}</td></tr>`);
    const v = form?.values ?? {};
    const e = form?.errors;
    const body = html`<h1>${s.tenants}</h1>
${p.tenantId ? html`${notice(fill(s.actingIn, { name: ctx.tenantName ?? '', role: roleLabel(p.role, s) }))}<form method="post" action="/admin/tenants/leave">${csrfField(ctx)}<button type="submit">${s.leaveTenant}</button></form>` : html`<p>${s.chooseTenant}</p>`}
<p><a href="/admin/queue">${s.queueTitle}</a></p>
${invited ? html`<div class="notice notice-ok secret" role="status"><p>${fill(s.inviteLink, { until: dateTime(invited.expiresAt, lang) })}</p><p><code class="break">${invited.inviteUrl}</code></p><p class="hint">${s.inviteCopy}</p></div>` : ''}
${table('tenants', s.tenantsCaption, head, rows)}
<form method="post" action="/admin/tenants" class="card" novalidate><h2>${s.createTenant}</h2>${errorSummary('ten', e, s)}${csrfField(ctx)}
${input({ form: 'ten', s, name: 'name', label: s.name, value: v.name, errors: e, required: true, maxlength: 200 })}
${input({ form: 'ten', s, name: 'slug', label: s.colSlug, value: v.slug, errors: e, required: true, maxlength: 40, hint: s.slugHint })}
<fieldset class="group"><legend>${s.firstAdmin}</legend>
${input({ form: 'ten', s, name: 'adminEmail', label: s.email, type: 'email', value: v.adminEmail, errors: e, required: true, maxlength: 254, autocomplete: 'off' })}
${input({ form: 'ten', s, name: 'adminName', label: s.name, value: v.adminName, errors: e, required: true, maxlength: 200 })}</fieldset>
<button type="submit" class="primary">${s.createTenant}</button></form>`;
    return web.send(reply, ctx, { title: s.tenants, active: 'tenants', body }, status);
  }

  app.get('/admin/tenants', provider, (req, reply) => render(req, reply));

  app.post<{ Body: Body }>('/admin/tenants', provider, async (req, reply) => {
    if (!web.tenantAdmin) return render(req, reply);
    const s = (await web.ctx(req)).s;
    const values = { name: field(req.body, 'name', 200), slug: field(req.body, 'slug', 40).toLowerCase(), adminEmail: field(req.body, 'adminEmail', 254).toLowerCase(), adminName: field(req.body, 'adminName', 200) };
    const errors: FormErrors = {};
    if (!values.name) errors.name = s.required;
    if (!/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(values.slug)) errors.slug = s.slugHint;
    if (!isEmail(values.adminEmail)) errors.adminEmail = s.invalidEmail;
    if (!values.adminName) errors.adminName = s.required;
    if (Object.keys(errors).length) return render(req, reply, { values, errors }, 400);
    let created;
    try {
      created = await web.tenantAdmin.createTenant(req.principal!, { slug: values.slug, name: values.name, firstAdmin: { email: values.adminEmail, name: values.adminName } }, rc(req));
    } catch (err) {
      const e = domainErrors(err, ['name', 'slug', 'email', 'adminEmail']);
      if (!e) throw err;
      if (e.email) { e.adminEmail = e.email; delete e.email; }
      return render(req, reply, { values, errors: e }, (err as DomainError).statusCode);
    }
    setFlash(reply, { sessionId: req.principal!.session?.session.id ?? '', kind: 'tenant-invite', data: { inviteUrl: created.invitation.inviteUrl, expiresAt: created.invitation.expiresAt }, path: flashPath, secure: web.sessions?.cookieOptions().secure ?? false });
    return web.redirect(reply, flashPath);
  });

  app.post<{ Params: { id: string } }>('/admin/tenants/:id/enter', provider, async (req, reply) => {
    if (!isUuid(req.params.id) || !web.tenantAdmin || !web.sessions) throw new NotFound(`tenant ${req.params.id}`);
    const r = await web.tenantAdmin.enterTenant(req.principal!.session!, req.params.id, rc(req));
    reply.setCookie(SESSION_COOKIE, r.token, web.sessions.cookieOptions());
    return web.redirect(reply, '/');
  });

  app.post('/admin/tenants/leave', provider, async (req, reply) => {
    if (!web.tenantAdmin || !web.sessions) throw new NotFound('tenant');
    const r = await web.tenantAdmin.leaveTenant(req.principal!.session!, rc(req));
    reply.setCookie(SESSION_COOKIE, r.token, web.sessions.cookieOptions());
    return web.redirect(reply, flashPath);
  });
}

export async function adminPages(app: FastifyInstance, web: Web): Promise<void> {
  await tokenPages(app, web);
  await userPages(app, web);
  await tenantPages(app, web);
  await grantPages(app, web);
  await queuePages(app, web);
}
