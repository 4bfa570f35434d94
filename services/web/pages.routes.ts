import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import { WebRepository } from '../../db/repositories/web.repository.js';
import type { RateLimitStore } from '../api/routes/auth.routes.js';
import type { BaselineService } from '../runs/baseline.service.js';
import type { PlanService } from '../plans/plan.service.js';
import type { RunService } from '../runs/run.service.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { ReviewService } from '../evidence/review.service.js';
import type { TokenService } from '../auth/token.service.js';
import type { SessionService } from '../auth/session.service.js';
import type { AccountApi } from '../auth/account.types.js';
import type { TenantService } from '../auth/tenant.service.js';
import type { AlertService } from '../notify/alert.service.js';
import type { ScheduleService } from '../scheduling/schedule.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ManualRunService } from '../external/manual.service.js';
import type { ExerciseService } from '../external/exercise.service.js';
import type { SystemService } from '../systems/system.service.js';
import type { PoolService } from '../runs/pools.js';
import type { QueueOpsService } from '../runs/queue-ops.js';
import { DomainError, Forbidden, Unauthorized } from '../errors.js';
import { fill, langOf, LANG_COOKIE, roleLabel, strings } from './i18n.js';
import { safeNext } from './html.js';
import { errorPage, layout, type PageCtx, type PageOpts } from './layout.js';
import { assetRoutes } from './assets.js';
import { dashboardPages } from './pages/dashboard.page.js';
import { planPages } from './pages/plan.page.js';
import { runPages } from './pages/run.page.js';
import { alertPages } from './pages/alerts.page.js';
import { reviewPages } from './pages/reviews.page.js';
import { reportPages } from './pages/reports.page.js';
import { programmePages } from './pages/programme.page.js';
import { systemPages } from './pages/systems.page.js';
import { adminPages } from './pages/admin.page.js';
import { accountPages } from './pages/account.page.js';
import { loginPages } from './pages/login.page.js';
import type { Clock } from '../clock.js';

/** What the pages need; buildApp passes its dependencies (plus the alert and schedule services it builds). */
export interface PagesOptions {
  db: Kysely<DB>;
  plans: PlanService;
  runs: RunService;
  ledger: LedgerService;
  reviews: ReviewService;
  tokens: TokenService;
  alerts: AlertService;
  schedules: ScheduleService;
  /** The baseline of the built-in drift checks, shown on the plan page. */
  baselines?: BaselineService;
  sessions?: SessionService;
  /** Login, enrolment, invitations, users: absent until the account service is wired; those pages then say so. */
  accounts?: AccountApi;
  /** Manual restore tests carried out on the run page (kind: manual). */
  manual?: ManualRunService;
  /** Exercises held on the run page (kind: exercise). */
  exercises?: ExerciseService;
  /** The tenant's systems: the dashboard's restart order. */
  systems?: SystemService;
  /** Worker pools: the dashboard names a pool the tenant's plans use that no live worker serves. */
  pools?: PoolService;
  /** Tenants and provider grants (the provider admins' page). */
  tenantAdmin?: TenantService;
  /** The audit trail: actions taken on pages are recorded like their API twins. */
  audit?: AuditService;
  /** Attempts per client address and minute on the sign-in forms (as for /auth/login; default 10). */
  authRateLimit?: { max: number; timeWindowMs: number };
  /** The sign-in attempts counted in Redis, shared with every API process (as for /auth/login). */
  authRateLimitStore?: RateLimitStore;
  /** Single sign-on: a button to /auth/oidc/start when configured (config.auth.oidc). */
  oidc?: { label: string };
  clock: Clock;
  /** The queue view for admins (/admin/queue). */
  queueOps?: QueueOpsService;
}

/** The pages' shared tools. */
export interface Web extends PagesOptions {
  repo: WebRepository;
  now(): Date;
  ctx(req: FastifyRequest): Promise<PageCtx>;
  /** Sends a whole page (HTML, never cached: the pages show a tenant's data). */
  send(reply: FastifyReply, ctx: PageCtx, o: PageOpts, status?: number): FastifyReply;
  /** 303 after a successful POST (post/redirect/get). */
  redirect(reply: FastifyReply, to: string): FastifyReply;
}

export const HTML = 'text/html; charset=utf-8';

/** Every header a page answer gets. */
export function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply.type(HTML).header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
}

/**
 * A POST without a session (login, invitation) must come from our own pages:
 * browsers send Sec-Fetch-Site / Origin, so a form on another site cannot log
 * someone into an account of the attacker's choosing.
 */
export function crossSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  // older browsers: the Origin header (under Referrer-Policy no-referrer it is "null" for our own forms too: no verdict then)
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  try {
    return new URL(origin).host !== req.host;
  } catch {
    return true;
  }
}

/**
 * The server-rendered web interface (issue #5): German by default, English by
 * the `lang` cookie, no framework and no build step; works without
 * JavaScript except the live progress of a running test.
 */
export async function pageRoutes(app: FastifyInstance, opts: PagesOptions): Promise<void> {
  const repo = new WebRepository(opts.db);
  const web: Web = {
    ...opts,
    repo,
    now: opts.clock,
    async ctx(req) {
      const lang = langOf(req);
      const principal = req.principal;
      const tenantName = principal?.tenantId ? await repo.tenantName(principal.tenantId) : undefined;
      return { lang, s: strings(lang), url: req.url, principal, tenantName };
    },
    send(reply, ctx, o, status = 200) {
      return pageHeaders(reply).status(status).send(layout(ctx, o));
    },
    redirect(reply, to) {
      return reply.redirect(to, 303);
    },
  };

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
    const status = err instanceof DomainError ? err.statusCode : fe.validation ? 400 : fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
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

  for (const pages of [dashboardPages, planPages, runPages, programmePages, systemPages, alertPages, reviewPages, reportPages, adminPages, accountPages, loginPages]) {
    await app.register(async (scope) => pages(scope, web));
  }
}
