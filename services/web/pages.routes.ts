import type { FastifyError, FastifyInstance } from 'fastify';
import { DomainError, Forbidden, Unauthorized } from '../errors.js';
import { errorAnswer } from '../api/error-handler.js';
import { fill, langOf, LANG_COOKIE, roleLabel, strings } from './i18n.js';
import { safeNext } from './html.js';
import { errorPage, type PageCtx } from './layout.js';
import { createWeb, pageHeaders, type PagesOptions } from './web.js';
import { assetRoutes } from './assets.js';
import { dashboardPages } from './pages/dashboard.page.js';
import { planPages } from './pages/plan.page.js';
import { runPages } from './pages/run.page.js';
import { alertPages } from './pages/alerts.page.js';
import { reviewPages } from './pages/reviews.page.js';
import { reportPages } from './pages/reports.page.js';
import { programmePages } from './pages/programme.page.js';
import { systemPages } from './pages/systems.page.js';
import { restartTestPages } from './pages/restart-tests.page.js';
import { adminPages } from './pages/admin.page.js';
import { accountPages } from './pages/account.page.js';
import { loginPages } from './pages/login.page.js';

/**
 * The server-rendered web interface (issue #5): German by default, English by
 * the `lang` cookie, no framework and no build step; works without
 * JavaScript except the live progress of a running test.
 */
export async function pageRoutes(app: FastifyInstance, opts: PagesOptions): Promise<void> {
  const web = createWeb(opts);

  // the pages' side of the one error handler: the same status as the API answers (errorAnswer), shown as a page
  app.setErrorHandler(async (err: FastifyError | DomainError, req, reply) => {
    const lang = langOf(req);
    const s = strings(lang);
    let ctx: PageCtx;
    try {
      ctx = await web.ctx(req);
    } catch {
      ctx = { lang, s, url: req.url, principal: req.principal };
    }
    if (err instanceof Unauthorized) return reply.redirect(`/login${req.method === 'GET' ? `?next=${encodeURIComponent(safeNext(req.url))}` : ''}`, 303);
    const p = req.principal;
    if (err instanceof Forbidden && req.method === 'GET' && p?.session?.user.role === 'provider-admin' && !p.tenantId) return reply.redirect('/admin/tenants', 303);
    const fe = err as FastifyError;
    const { status } = errorAnswer(err);
    if (status >= 500) req.log.error({ err }, 'page failed');
    let message: string | undefined = err.message;
    if (status === 403) {
      if (/CSRF/.test(err.message)) message = s.errCsrf;
      else if (/four-eyes/.test(err.message)) message = s.fourEyes;
      else if (p) message = fill(s.forbiddenRole, { role: roleLabel(p.role, s) });
    }
    if (status === 400 && fe.validation) message = s.errBadRequest;
    if (status === 429) message = s.tooMany;
    return pageHeaders(reply).status(status).send(errorPage(ctx, status, message));
  });

  await app.register(assetRoutes);

  // the language switch: a cookie, then back to where the person was (same site only)
  app.get<{ Querystring: { to?: string; next?: string } }>('/lang', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    const to = req.query.to === 'en' ? 'en' : 'de';
    reply.setCookie(LANG_COOKIE, to, { path: '/', sameSite: 'lax', maxAge: 365 * 86_400, httpOnly: true, secure: opts.sessions?.cookieOptions().secure ?? false });
    return reply.redirect(safeNext(req.query.next), 303);
  });

  for (const pages of [dashboardPages, planPages, runPages, programmePages, systemPages, restartTestPages, alertPages, reviewPages, reportPages, adminPages, accountPages, loginPages]) {
    await app.register(async (scope) => pages(scope, web));
  }
}
