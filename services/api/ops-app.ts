import Fastify, { type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { jsonErrorHandler, notFoundHandler } from './error-handler.js';
import { healthRoutes, type ReadinessProbe } from './routes/health.routes.js';
import { metricsRoutes } from './routes/metrics.routes.js';
import type { PoolService } from '../runs/pools.js';
import securityHeaders from './plugins/security-headers.js';
import type { Clock } from '../clock.js';

export interface OpsAppDeps {
  log: Logger;
  db: Kysely<DB>;
  /** This process's own dependencies, incl. the scheduler's probe when it runs here. */
  readiness: ReadinessProbe[];
  metrics?: { token?: string; tenantLabels: boolean; pools?: PoolService };
  hsts?: boolean;
  trustProxy?: boolean | string | number;
  /** Business time (services/clock.ts). */
  clock: Clock;
}

/**
 * The HTTP server of a process without the API role (scheduler and/or worker
 * only): /healthz, /readyz and /metrics, nothing else. So an orchestrator can
 * probe it, and a scheduler that stops ticking shows on its own /readyz,
 * while an API process stays ready.
 */
export async function buildOpsApp(deps: OpsAppDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.log, bodyLimit: 1024, ...(deps.trustProxy !== undefined && { trustProxy: deps.trustProxy as string }) });
  await app.register(securityHeaders, { hsts: deps.hsts ?? false });
  app.setErrorHandler(jsonErrorHandler);
  app.setNotFoundHandler(notFoundHandler);
  await app.register(healthRoutes, { probes: deps.readiness });
  await app.register(metricsRoutes, { db: deps.db, metrics: deps.metrics, clock: deps.clock });
  return app as unknown as FastifyInstance;
}
