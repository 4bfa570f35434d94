import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { Forbidden } from '../errors.js';
import { jsonErrorHandler, notFoundHandler } from './error-handler.js';
import type { PlanService } from '../plans/plan.service.js';
import type { RunService } from '../runs/run.service.js';
import authPlugin from './plugins/auth.js';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { SessionService } from '../auth/session.service.js';
import { healthRoutes, type ReadinessProbe } from './routes/health.routes.js';
import { planRoutes } from './routes/plans.routes.js';
import { baselineRoutes } from './routes/baseline.routes.js';
import type { BaselineService } from '../runs/baseline.service.js';
import { runRoutes } from './routes/runs.routes.js';
import { ErrorBody, Plan, Run } from './schemas.js';
import { evidenceRoutes } from './routes/evidence.routes.js';
import { tokenRoutes } from './routes/tokens.routes.js';
import { externalRoutes } from './routes/external.routes.js';
import { manualRoutes } from './routes/manual.routes.js';
import { programmeRoutes } from './routes/programme.routes.js';
import multipart from '@fastify/multipart';
import { MAX_UPLOAD_BYTES, type UploadedFile } from '../external/manual.service.js';
import type { ExternalResultService, IngestTokenService } from '../external/external.service.js';
import type { ManualRunService } from '../external/manual.service.js';
import type { ExerciseService } from '../external/exercise.service.js';
import type { SystemService } from '../systems/system.service.js';
import { systemRoutes } from './routes/systems.routes.js';
import { restartTestRoutes } from './routes/restart-tests.routes.js';
import type { RestartTestService } from '../systems/restart-test.service.js';
import { scheduleRoutes } from './routes/schedule.routes.js';
import { calendarRoutes } from './routes/calendar.routes.js';
import { metricsRoutes } from './routes/metrics.routes.js';
import type { PoolService } from '../runs/pools.js';
import type { QueueOpsService } from '../runs/queue-ops.js';
import { queueRoutes } from './routes/queue.routes.js';
import { alertRoutes } from './routes/alerts.routes.js';
import { authRoutes, type AuthRateLimit, type RateLimitStore } from './routes/auth.routes.js';
import { Redis } from 'ioredis';
import { userRoutes } from './routes/users.routes.js';
import { providerRoutes } from './routes/provider.routes.js';
import type { AccountService } from '../auth/account.service.js';
import type { TenantService } from '../auth/tenant.service.js';
import type { AlertService } from '../notify/alert.service.js';
import { auditRoutes } from './routes/audit.routes.js';
import { oidcRoutes } from './routes/oidc.routes.js';
import { createOidcService, type OidcService } from '../auth/oidc.service.js';
import securityHeaders from './plugins/security-headers.js';
import type { AuditService } from '../audit/audit.service.js';
import type { ScheduleService } from '../scheduling/schedule.service.js';
import type { CalendarFeedService } from '../calendar/calendar-feed.service.js';
import type { ReportService } from '../reports/report.service.js';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { ReviewService } from '../evidence/review.service.js';
import type { TokenService } from '../auth/token.service.js';
import { planOverview, type Container } from '../container.js';
import type { Config } from '../config.js';
import type { Clock } from '../clock.js';

export interface RouteEntry {
  method: string;
  url: string;
  config: { public?: boolean; provider?: boolean; page?: boolean; partialSession?: boolean };
}

declare module 'fastify' {
  interface FastifyInstance {
    routeList: RouteEntry[];
  }
}

export interface AppDeps {
  log: Logger;
  /**
   * The connection the plan overview (dashboard, plan page, plan API) and
   * /metrics read through; tests hand a counting one to see what a page costs.
   */
  db: Kysely<DB>;
  plans: PlanService;
  runs: RunService;
  ledger: LedgerService;
  reviews: ReviewService;
  tokens: TokenService;
  /** Results of other tools (plans with kind: external) and per-plan ingest tokens; without them those routes do not exist. */
  external?: ExternalResultService;
  ingestTokens?: IngestTokenService;
  manual?: ManualRunService;
  exercises?: ExerciseService;
  systems?: SystemService;
  /** Processes' RTOs and restart tests; without it those routes do not exist. */
  restartTests?: RestartTestService;
  /** Worker pools: live workers and waiting runs per pool (dashboard). */
  pools?: PoolService;
  /** The audit trail (signed ledger records of kind `audit`). */
  audit: AuditService;
  schedules: ScheduleService;
  /** The baseline of the built-in drift checks (API, plan page). */
  baselines: BaselineService;
  alerts: AlertService;
  calendarFeeds: CalendarFeedService;
  /** The data of the run protocol, the audit report and the year's programme. */
  reports: ReportService;
  readiness: ReadinessProbe[];
  bootstrapToken?: string;
  version?: string;
  /** Business time (services/clock.ts); tests control it. */
  clock: Clock;
  /** Browser sessions (cookie); without it only bearer tokens authenticate. */
  sessions?: SessionService;
  /** config.metrics: GET /metrics exists only with a token. */
  metrics?: { token?: string; tenantLabels: boolean; pools?: PoolService };
  /** Users and sign-in (/auth/*, /api/v1/users); tenants and grants (/api/v1/tenants, /grants, /provider/*). */
  accounts?: AccountService;
  tenantAdmin?: TenantService;
  /** Attempts per client address and minute on /auth/login, /auth/code, /auth/invite (default 10). */
  authRateLimit?: AuthRateLimit;
  /**
   * Count sign-in attempts in this Redis under `prefix` (the installation's
   * ERNSTFALL_QUEUE_PREFIX), so all API processes share one limit; without
   * it each process counts in its own memory.
   */
  sharedLimits?: { redisUrl: string; prefix: string };
  /** Served over HTTPS (config.auth.cookieSecure): send Strict-Transport-Security. */
  hsts?: boolean;
  /** ERNSTFALL_TRUST_PROXY: take the client address from X-Forwarded-For (audit trail, sign-in rate limits) behind these proxies. */
  trustProxy?: boolean | string | number;
  /** Single sign-on (ERNSTFALL_OIDC_ISSUER); without it /auth/oidc/* does not exist. */
  oidc?: OidcService;
  /** The queue view for admins (/api/v1/queue, /admin/queue); without it those routes do not exist. */
  queueOps?: QueueOpsService;
}

/** The app's dependencies from the wired container. */
export function appDeps(c: Container, roles: Config['roles'], version?: string): AppDeps {
  return {
    log: c.log, db: c.db, plans: c.plans, runs: c.runs, ledger: c.ledger, reviews: c.reviews, tokens: c.tokens, audit: c.audit, accounts: c.accounts, tenantAdmin: c.tenants,
    external: c.external, ingestTokens: c.ingestTokens, manual: c.manual, exercises: c.exercises, systems: c.systems, restartTests: c.restartTests, pools: c.pools,
    schedules: c.schedules, baselines: c.baselines, alerts: c.alerts, calendarFeeds: c.calendarFeeds, reports: c.reports,
    readiness: c.readiness(roles), bootstrapToken: c.config.auth.bootstrapToken, version, sessions: c.sessions,
    metrics: { ...c.config.metrics, pools: c.pools }, hsts: c.config.auth.cookieSecure, trustProxy: c.config.http.trustProxy,
    oidc: createOidcService(c), sharedLimits: { redisUrl: c.config.redis.url, prefix: c.config.redis.prefix },
    queueOps: c.queueOps,
    clock: c.clock,
  };
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log,
    bodyLimit: 1024 * 1024,
    ...(deps.trustProxy !== undefined && { trustProxy: deps.trustProxy as string }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // every route, pages included: the tenant-isolation test walks them all, so a new route cannot skip it
  const routeList: RouteEntry[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routeList.push({ method, url: r.url, config: (r.config ?? {}) as RouteEntry['config'] });
  });
  app.decorate('routeList', routeList);

  // many clients send a JSON content type with an empty body on bodyless POSTs (cancel, runs): accept that
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('body is not valid JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  // first, so that every answer (docs, errors, 404) carries the headers
  await app.register(securityHeaders, { hsts: deps.hsts ?? false });
  app.addSchema(ErrorBody);
  app.addSchema(Run);
  app.addSchema(Plan);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'ernstfall API',
        version: deps.version ?? '0.1.0',
        description: 'Restore tests of real backups in isolated sandboxes: plans, runs, verdicts, evidence.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (json.$id as string) ?? `def-${i}` },
  });
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config as object), public: true };
  });
  // BaseLayout: without the top bar, whose Swagger logo is an SVG with an inline <style> the strict CSP blocks
  // (see plugins/security-headers.ts: /docs keeps the app's CSP, no exception)
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false, layout: 'BaseLayout' } });

  // one error handler (error-handler.ts): domain errors map to their status, validation to 400 with details, the rest to 500 without internals
  app.setErrorHandler(jsonErrorHandler);
  app.setNotFoundHandler(notFoundHandler);

  // the sign-in limits live in Redis (one connection of the app's own, closed with it): any API process may answer any attempt
  let limitStore: RateLimitStore | undefined;
  if (deps.sharedLimits) {
    // fail fast while Redis is down (the limit then lets attempts through; the account lock-out still counts them)
    const redis = new Redis(deps.sharedLimits.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 3000, commandTimeout: 1000 });
    redis.on('error', () => undefined); // reported by the container's connection and /readyz
    app.addHook('onClose', async () => {
      redis.disconnect();
    });
    limitStore = { redis, nameSpace: `${deps.sharedLimits.prefix}:sign-in-limit:` };
  }

  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  // file uploads from the pages (a manual test's evidence): parsed before the CSRF check reads the form's _csrf; a file
  // only for signed-in requests on routes with config.upload (see onFile), one bounded file per request, held as a Buffer
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 10, parts: 12, fieldSize: 16 * 1024 },
    async onFile(part) {
      // a file is read only for a signed-in person on a route that takes one; anywhere else it is refused unread
      if (!this.principal || !this.routeOptions.config.upload) {
        part.file.resume();
        throw new Forbidden('no file upload here');
      }
      (part as unknown as { value: UploadedFile }).value = { filename: part.filename, mimetype: part.mimetype, content: await part.toBuffer() };
    },
  });
  await app.register(authPlugin, { bootstrapToken: deps.bootstrapToken, tokens: deps.tokens, sessions: deps.sessions, ingestTokens: deps.ingestTokens });
  await app.register(healthRoutes, { probes: deps.readiness });
  // the plan overview reads through deps.db, the connection this app was handed
  const overview = planOverview(deps.db, { clock: deps.clock, baselines: deps.baselines });
  await app.register(planRoutes, { prefix: '/api/v1', plans: deps.plans, overview, runs: deps.runs, audit: deps.audit });
  await app.register(runRoutes, { prefix: '/api/v1', runs: deps.runs, audit: deps.audit });
  await app.register(evidenceRoutes, { prefix: '/api/v1', ledger: deps.ledger, runs: deps.runs, reviews: deps.reviews, reports: deps.reports, audit: deps.audit, clock: deps.clock });
  await app.register(tokenRoutes, { prefix: '/api/v1', tokens: deps.tokens, audit: deps.audit });
  if (deps.external && deps.ingestTokens) await app.register(externalRoutes, { prefix: '/api/v1', external: deps.external, ingestTokens: deps.ingestTokens, audit: deps.audit });
  if (deps.external && deps.manual && deps.exercises) await app.register(manualRoutes, { prefix: '/api/v1', external: deps.external, manual: deps.manual, exercises: deps.exercises, audit: deps.audit });
  await app.register(scheduleRoutes, { prefix: '/api/v1', schedules: deps.schedules, audit: deps.audit });
  await app.register(programmeRoutes, { prefix: '/api/v1', reports: deps.reports, audit: deps.audit, clock: deps.clock });
  if (deps.systems) await app.register(systemRoutes, { prefix: '/api/v1', systems: deps.systems });
  if (deps.restartTests) await app.register(restartTestRoutes, { prefix: '/api/v1', restartTests: deps.restartTests, audit: deps.audit });
  await app.register(baselineRoutes, { prefix: '/api/v1', baselines: deps.baselines, plans: deps.plans });
  await app.register(calendarRoutes, { feeds: deps.calendarFeeds, audit: deps.audit });
  await app.register(metricsRoutes, { db: deps.db, metrics: deps.metrics, clock: deps.clock });
  await app.register(alertRoutes, { prefix: '/api/v1', alerts: deps.alerts });
  if (deps.accounts && deps.sessions) await app.register(authRoutes, { accounts: deps.accounts, sessions: deps.sessions, rateLimit: deps.authRateLimit, store: limitStore });
  if (deps.accounts) await app.register(userRoutes, { prefix: '/api/v1', accounts: deps.accounts });
  if (deps.tenantAdmin && deps.sessions) await app.register(providerRoutes, { prefix: '/api/v1', tenants: deps.tenantAdmin, sessions: deps.sessions });
  await app.register(auditRoutes, { prefix: '/api/v1', audit: deps.audit });
  if (deps.queueOps) await app.register(queueRoutes, { prefix: '/api/v1', queueOps: deps.queueOps });
  if (deps.oidc) await app.register(oidcRoutes, { oidc: deps.oidc });
  await app.register((await import('../web/pages.routes.js')).pageRoutes, { ...deps, overview, authRateLimitStore: limitStore });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  return app as unknown as FastifyInstance;
}
