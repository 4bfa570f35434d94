import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimitStore } from '../api/routes/auth.routes.js';
import type { PlanService } from '../plans/plan.service.js';
import type { PlanOverviewService } from '../plans/plan-overview.service.js';
import type { RunService } from '../runs/run.service.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { ReviewService } from '../evidence/review.service.js';
import type { TokenService } from '../auth/token.service.js';
import type { SessionService } from '../auth/session.service.js';
import type { AccountApi } from '../auth/account.types.js';
import type { TenantService } from '../auth/tenant.service.js';
import type { AlertService } from '../notify/alert.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ManualRunService } from '../external/manual.service.js';
import type { ExerciseService } from '../external/exercise.service.js';
import type { SystemService } from '../systems/system.service.js';
import type { RestartTestService } from '../systems/restart-test.service.js';
import type { PoolService } from '../runs/pools.js';
import type { QueueOpsService } from '../runs/queue-ops.js';
import type { ReportService } from '../reports/report.service.js';
import type { Clock } from '../clock.js';
import { langOf, strings } from './i18n.js';
import { layout, type PageCtx, type PageOpts } from './layout.js';

/** What the pages need: services only (buildApp passes its dependencies and the plan overview it builds). */
export interface PagesOptions {
  /** Plans with their status, schedule and alerts: the dashboard, the plan page, titles and the tenant's name. */
  overview: PlanOverviewService;
  plans: PlanService;
  runs: RunService;
  ledger: LedgerService;
  reviews: ReviewService;
  tokens: TokenService;
  alerts: AlertService;
  /** The year's programme. */
  reports: ReportService;
  sessions?: SessionService;
  /** Login, enrolment, invitations, users: absent until the account service is wired; those pages then say so. */
  accounts?: AccountApi;
  /** Manual restore tests carried out on the run page (kind: manual). */
  manual?: ManualRunService;
  /** Exercises held on the run page (kind: exercise). */
  exercises?: ExerciseService;
  /** The tenant's systems: the dashboard's restart order. */
  systems?: SystemService;
  /** Processes' RTOs and restart tests (/systems, /restart-tests/{id}). */
  restartTests?: RestartTestService;
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
  /** Business time (services/clock.ts). */
  clock: Clock;
  /** The queue view for admins (/admin/queue). */
  queueOps?: QueueOpsService;
}

/** The pages' shared tools. */
export interface Web extends PagesOptions {
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

/** The pages' shared tools over their services. */
export function createWeb(opts: PagesOptions): Web {
  const web: Web = {
    ...opts,
    now: opts.clock,
    async ctx(req) {
      const lang = langOf(req);
      const principal = req.principal;
      const tenantName = principal?.tenantId ? await opts.overview.tenantName(principal.tenantId) : undefined;
      return { lang, s: strings(lang), url: req.url, principal, tenantName };
    },
    send(reply, ctx, o, status = 200) {
      return pageHeaders(reply).status(status).send(layout(ctx, o));
    },
    redirect(reply, to) {
      return reply.redirect(to, 303);
    },
  };
  return web;
}
