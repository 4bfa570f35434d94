import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../../../db/schema.js';
import { Unauthorized } from '../../errors.js';
import type { PoolService } from '../../runs/pools.js';
import { buildMetricsRegistry } from '../../metrics/metrics.js';
import type { Clock } from '../../clock.js';

export interface MetricsRouteOptions {
  db: Kysely<DB>;
  /** config.metrics: without a token /metrics answers as an unknown path does (404). */
  metrics?: { token?: string; tenantLabels: boolean; pools?: PoolService };
  /** Business time (services/clock.ts). */
  clock: Clock;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * GET /metrics for Prometheus. Public for the API's token plugin (a scraper
 * holds no API token and should not), guarded by its own bearer token,
 * ERNSTFALL_METRICS_TOKEN, compared in constant time.
 */
export async function metricsRoutes(app: FastifyInstance, opts: MetricsRouteOptions) {
  const token = opts.metrics?.token;
  const expected = token ? digest(token) : undefined;
  const registry = token ? buildMetricsRegistry({ db: opts.db, tenantLabels: opts.metrics?.tenantLabels ?? false, pools: opts.metrics?.pools, clock: opts.clock }) : undefined;
  if (registry) app.addHook('onClose', async () => registry.clear());

  app.get('/metrics', {
    // public for the API's token plugin, so that without a metrics token it is a plain 404, not a 401
    config: { public: true },
    schema: { tags: ['health'], summary: 'Prometheus metrics (Authorization: Bearer ERNSTFALL_METRICS_TOKEN); 404 when no metrics token is configured', security: [{ bearer: [] }] },
  }, async (req, reply) => {
    if (!registry || !expected) return reply.callNotFound();
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    // hash both sides: equal lengths for timingSafeEqual, and no early exit on the first differing character
    if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new Unauthorized('missing or invalid metrics token');
    }
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
