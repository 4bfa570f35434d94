import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_COOKIE } from '../../auth/session.service.js';
import { passwordProblem } from '../../auth/crypto.js';
import { auditFrom } from '../../api/audit-hook.js';
import { NotFound } from '../../errors.js';
import type { Role } from '../../../db/schema.js';
import { html } from '../html.js';
import { dateTime, fill, roleLabel, type Strings } from '../i18n.js';
import { dl, errorSummary, input, notice, table, type FormErrors, type FormValues } from '../components.js';
import { csrfField } from '../layout.js';
import { field, isDate, isUuid, secretField, type Body } from '../forms.js';
import { setFlash, takeFlash } from '../flash.js';
import { domainErrors } from './admin.page.js';
import type { Web } from '../web.js';

type Form = { form: 'pw' | 'tok'; values: FormValues; errors: FormErrors };
const PATH = '/account';

/** A password rule violation in the reader's language. */
export function passwordError(password: string, email: string, s: Strings): string | undefined {
  const p = passwordProblem(password, email);
  return p ? (s.passwordProblems[p] ?? p) : undefined;
}

/**
 * The signed-in person's own account: second factor, password, personal API
 * tokens (with their own role, tied to them: a disabled user's tokens stop
 * working) and "log out everywhere". Provider admins use it too.
 */
export async function accountPages(app: FastifyInstance, web: Web): Promise<void> {
  const cfg = { config: { page: true, provider: true } };
  const rc = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

  async function render(req: FastifyRequest, reply: FastifyReply, form?: Form, status = 200) {
    const ctx = await web.ctx(req);
    const { s, lang } = ctx;
    const p = req.principal!;
    const live = p.session;
    if (!live) throw new NotFound('account'); // bearer tokens have no account page
    const user = live.user;
    const created = form ? undefined : takeFlash<{ token: string; name: string }>(req, reply, { sessionId: live.session.id, kind: 'own-token', path: PATH });
    const tokens = user.tenant_id ? (await web.tokens.list(user.tenant_id)).filter((t) => t.user_id === user.id) : [];
    const done = (req.query as { done?: string }).done;
    const v = (f: Form['form']) => (form?.form === f ? form.values : {});
    const e = (f: Form['form']) => (form?.form === f ? form.errors : undefined);
    const mfaLink = web.accounts ? html` <a href="/login/enrol">${user.totp_enabled_at ? s.reEnrol : s.enrolNow}</a>` : '';

    const tokenRows = tokens.map((t) => html`<tr><th scope="row">${t.name}</th><td>${dateTime(t.created_at, lang)}</td><td>${t.expires_at ? dateTime(t.expires_at, lang) : s.dash}</td>
<td>${t.last_used_at ? dateTime(t.last_used_at, lang) : s.dash}</td><td>${t.revoked_at ? s.revoked : html`<form method="post" action="/account/tokens/${t.id}/revoke">${csrfField(ctx)}<button type="submit" class="danger" aria-label="${s.revoke}: ${t.name}">${s.revoke}</button></form>`}</td></tr>`);

    const body = html`<h1>${s.accountTitle}</h1>
${done && s.done[done] ? notice(s.done[done]!, 'ok') : ''}
${dl([[s.name, user.name], [s.email, user.email], [s.role, roleLabel(user.role, s)], [s.tenant, ctx.tenantName ?? '']])}
<section aria-labelledby="mfa-h"><h2 id="mfa-h">${s.twoFactor}</h2><p>${user.totp_enabled_at ? fill(s.mfaOn, { at: dateTime(user.totp_enabled_at, lang) }) : s.mfaOff}${mfaLink}</p></section>
<section aria-labelledby="pw-h"><h2 id="pw-h">${s.changePassword}</h2>
${web.accounts ? html`<form method="post" action="/account/password" class="card" novalidate>${errorSummary('pw', e('pw'), s)}${csrfField(ctx)}
<input type="text" name="username" value="${user.email}" autocomplete="username" hidden>
${input({ form: 'pw', s, name: 'current', label: s.currentPassword, type: 'password', errors: e('pw'), required: true, autocomplete: 'current-password' })}
${input({ form: 'pw', s, name: 'next', label: s.newPassword, type: 'password', errors: e('pw'), required: true, autocomplete: 'new-password', hint: s.passwordHint })}
${input({ form: 'pw', s, name: 'repeat', label: s.repeatPassword, type: 'password', errors: e('pw'), required: true, autocomplete: 'new-password' })}
<button type="submit" class="primary">${s.changePassword}</button></form>` : notice(s.accountsMissing, 'warn')}</section>
<section aria-labelledby="tok-h"><h2 id="tok-h">${s.ownTokens}</h2>
${created ? html`<div class="notice notice-ok secret" role="status"><p>${s.tokenCreated}</p><p><code class="break">${created.token}</code></p></div>` : ''}
${user.tenant_id ? html`${tokens.length ? table('own-tokens', s.ownTokensCaption, html`<tr><th scope="col">${s.colName}</th><th scope="col">${s.colCreated}</th><th scope="col">${s.colExpires}</th><th scope="col">${s.colLastUsed}</th><th scope="col">${s.actions}</th></tr>`, tokenRows) : ''}
<form method="post" action="/account/tokens" class="card" novalidate>${errorSummary('tok', e('tok'), s)}${csrfField(ctx)}<p class="hint">${fill(s.ownTokenRole, { role: roleLabel(user.role, s) })}</p>
${input({ form: 'tok', s, name: 'name', label: s.tokenName, value: v('tok').name, errors: e('tok'), required: true, maxlength: 100 })}
${input({ form: 'tok', s, name: 'expiresAt', label: s.expiresAt, type: 'date', value: v('tok').expiresAt, errors: e('tok') })}
<button type="submit">${s.createToken}</button></form>` : html`<p>${s.ownTokensNone}</p>`}</section>
<section aria-labelledby="out-h"><h2 id="out-h">${s.logoutEverywhere}</h2><form method="post" action="/account/logout-everywhere">${csrfField(ctx)}<p class="hint" id="out-hint">${s.logoutEverywhereHint}</p><button type="submit" class="danger" aria-describedby="out-hint">${s.logoutEverywhere}</button></form></section>`;
    return web.send(reply, ctx, { title: s.accountTitle, active: 'account', body }, status);
  }

  app.get('/account', cfg, (req, reply) => render(req, reply));

  app.post<{ Body: Body }>('/account/password', cfg, async (req, reply) => {
    const live = req.principal!.session;
    if (!web.accounts || !live) return render(req, reply);
    const s = (await web.ctx(req)).s;
    const current = secretField(req.body, 'current');
    const next = secretField(req.body, 'next');
    const repeat = secretField(req.body, 'repeat');
    const errors: FormErrors = {};
    if (!current) errors.current = s.required;
    const problem = next ? passwordError(next, live.user.email, s) : s.required;
    if (problem) errors.next = problem;
    else if (repeat !== next) errors.repeat = s.passwordMismatch;
    if (Object.keys(errors).length) return render(req, reply, { form: 'pw', values: {}, errors }, 400);
    try {
      await web.accounts.changePassword(live, current, next, rc(req));
    } catch (err) {
      const e = domainErrors(err, ['current', 'next']);
      if (!e) throw err;
      // the service decides whether the current password was right; a 401/403 from it means just that
      const status = (err as { statusCode: number }).statusCode;
      return render(req, reply, { form: 'pw', values: {}, errors: status === 401 || status === 403 ? { current: s.wrongPassword } : e }, 400);
    }
    return web.redirect(reply, `${PATH}?done=password`);
  });

  app.post<{ Body: Body }>('/account/tokens', cfg, async (req, reply) => {
    const live = req.principal!.session;
    const user = live?.user;
    if (!user?.tenant_id || user.role === 'provider-admin') throw new NotFound('tokens');
    const s = (await web.ctx(req)).s;
    const values = { name: field(req.body, 'name', 100), expiresAt: field(req.body, 'expiresAt', 10) };
    const errors: FormErrors = {};
    if (values.name.length < 2) errors.name = s.required;
    if (values.expiresAt && (!isDate(values.expiresAt) || new Date(`${values.expiresAt}T00:00:00Z`) <= web.now())) errors.expiresAt = s.invalidDate;
    if (Object.keys(errors).length) return render(req, reply, { form: 'tok', values, errors }, 400);
    // tied to the user: it acts as them and dies with their account
    const { id, token } = await web.tokens.createPersonal(
      user.tenant_id, { id: user.id, email: user.email, role: user.role as Role }, values.name, values.expiresAt ? new Date(`${values.expiresAt}T00:00:00Z`) : null,
    );
    await web.audit?.record({ ...auditFrom(req), action: 'token.created', subject: { type: 'token', id }, details: { name: values.name, role: user.role, personal: true } });
    setFlash(reply, { sessionId: live!.session.id, kind: 'own-token', data: { token, name: values.name }, path: PATH, secure: web.sessions?.cookieOptions().secure ?? false });
    return web.redirect(reply, PATH);
  });

  app.post<{ Params: { id: string } }>('/account/tokens/:id/revoke', cfg, async (req, reply) => {
    const user = req.principal!.session?.user;
    if (!user?.tenant_id || !isUuid(req.params.id)) throw new NotFound(`token ${req.params.id}`);
    const own = (await web.tokens.list(user.tenant_id)).find((t) => t.id === req.params.id && t.user_id === user.id);
    if (!own) throw new NotFound(`token ${req.params.id}`);
    await web.tokens.revoke(user.tenant_id, own.id);
    await web.audit?.record({ ...auditFrom(req), action: 'token.revoked', subject: { type: 'token', id: own.id } });
    return web.redirect(reply, PATH);
  });

  app.post('/account/logout-everywhere', cfg, async (req, reply) => {
    const live = req.principal!.session;
    if (!live) throw new NotFound('account');
    if (web.accounts) await web.accounts.logoutEverywhere(live, rc(req));
    else await web.sessions?.endAll(live.user.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return web.redirect(reply, '/login?out=1');
  });
}
