import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Config } from './config.js';
import { createDb } from '../db/database.js';
import type { DB } from '../db/schema.js';
import { createDocker } from '../workers/sandbox/docker.js';
import { RunQueue, redisConnection } from '../workers/queue.js';
import { PlanService } from './plans/plan.service.js';
import { RunService } from './runs/run.service.js';
import type { ReadinessProbe } from './api/routes/health.routes.js';

/** Wires every side effect in one place; tests build the same with their own config. */
export interface Container {
  config: Config;
  log: Logger;
  db: Kysely<DB>;
  redis: Redis;
  queue: RunQueue;
  docker: Docker;
  plans: PlanService;
  runs: RunService;
  readiness(roles: Config['roles']): ReadinessProbe[];
  close(): Promise<void>;
}

export function createContainer(config: Config, log: Logger, opts: { queuePrefix?: string } = {}): Container {
  const db = createDb(config.database.url, config.database.poolSize);
  const redis = redisConnection(config.redis.url);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const queue = new RunQueue(redis, opts.queuePrefix ?? config.redis.prefix);
  const docker = createDocker(config.docker.host);
  const plans = new PlanService(db, log);
  const runs = new RunService(db, queue, log);
  return {
    config, log, db, redis, queue, docker, plans, runs,
    readiness(roles) {
      const probes: ReadinessProbe[] = [
        { name: 'database', check: () => sql`select 1`.execute(db) },
        { name: 'redis', check: async () => (await redis.ping()) === 'PONG' },
      ];
      if (roles.includes('worker')) probes.push({ name: 'docker', check: () => docker.ping() });
      return probes;
    },
    async close() {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      await db.destroy();
    },
  };
}
