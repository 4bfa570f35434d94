import { systemClock, type Clock } from './clock.js';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Config } from './config.js';
import { createDb } from '../db/database.js';
import type { DB } from '../db/schema.js';
import { createDocker } from '../workers/sandbox/docker.js';
import { RunQueue, producerConnection, redisConnection } from '../workers/queue.js';
import { PlanService } from './plans/plan.service.js';
import { PlanPolicyService } from './plans/plan-policy.js';
import { TenantRepository } from '../db/repositories/tenant.repository.js';
import { RunService } from './runs/run.service.js';
import type { ReadinessProbe } from './api/routes/health.routes.js';
import { loadSigner, noSigner, type Signer } from './evidence/signing-key.js';
import { LedgerService } from './evidence/ledger.service.js';
import { RunFinisher } from './runs/run-finisher.js';
import { OutcomeSigner } from './runs/outcome-signer.js';
import { PoolService } from './runs/pools.js';
import { ReviewService } from './evidence/review.service.js';
import { ExternalResultService, IngestTokenService } from './external/external.service.js';
import { ManualRunService } from './external/manual.service.js';
import { ExerciseService } from './external/exercise.service.js';
import { SystemService } from './systems/system.service.js';
import { TokenService } from './auth/token.service.js';
import { FailureNotifier } from './notify/failure-notifier.js';
import { SessionService } from './auth/session.service.js';
import { AuditService } from './audit/audit.service.js';
import { AccountService } from './auth/account.service.js';
import { TenantService } from './auth/tenant.service.js';

/** Wires every side effect in one place; tests build the same with their own config. */
export interface Container {
  config: Config;
  log: Logger;
  db: Kysely<DB>;
  redis: Redis;
  queue: RunQueue;
  docker: Docker;
  plans: PlanService;
  /** The operator's sandbox policy per tenant (backup roots, images, limits). */
  planPolicy: PlanPolicyService;
  runs: RunService;
  signer: Signer;
  ledger: LedgerService;
  finisher: RunFinisher;
  reviews: ReviewService;
  tokens: TokenService;
  /** Results of other tools' tests (plans with kind: external) and their per-plan ingest tokens. */
  external: ExternalResultService;
  ingestTokens: IngestTokenService;
  /** Manual restore tests (kind: manual): started, stepped through and completed by people. */
  manual: ManualRunService;
  /** Emergency and recovery exercises (kind: exercise): participants, observations, findings that become measures. */
  exercises: ExerciseService;
  /** The tenant's systems and the restart order. */
  systems: SystemService;
  sessions: SessionService;
  /** The audit trail: signed ledger records of kind `audit`. */
  audit: AuditService;
  /** Users: sign-in, second factor, invitations, administration. */
  accounts: AccountService;
  /** Tenants, provider grants, provider admins entering a tenant. */
  tenants: TenantService;
  /** The signing side of central signing (a process with the key ends the runs workers hand over); call start(). */
  outcomeSigner(opts?: { pollMs?: number }): OutcomeSigner;
  /** Worker pools: live workers and waiting runs per pool. */
  pools: PoolService;
  /** The one clock for business time (services/clock.ts). */
  clock: Clock;
  readiness(roles: Config['roles']): ReadinessProbe[];
  close(): Promise<void>;
}

export function createContainer(
  config: Config, log: Logger,
  opts: {
    queuePrefix?: string;
    /** Business time for every service (services/clock.ts); the wall clock unless a test passes its own. */
    clock?: Clock;
    /** False in a worker-only process: it loads no signing key, and anything that would sign fails loudly. */
    signing?: boolean;
  } = {},
): Container {
  const clock = opts.clock ?? systemClock;
  const db = createDb(config.database.url, config.database.poolSize);
  const redis = redisConnection(config.redis.url);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const producer = producerConnection(config.redis.url);
  producer.on('error', () => undefined); // reported through `redis` and /readyz
  const queue = new RunQueue(producer, opts.queuePrefix ?? config.redis.prefix);
  const docker = createDocker(config.docker.host);
  const signer = opts.signing === false
    ? noSigner('this process runs only the worker role and holds no signing key: outcomes are signed by the API or scheduler role')
    : loadSigner(config.evidence.signingKeyFile);
  const ledger = new LedgerService(db, signer, config.evidence, log, clock);
  const audit = new AuditService(ledger, clock);
  const planPolicy = new PlanPolicyService(new TenantRepository(db), config.policy);
  const plans = new PlanService(db, log, audit, clock, planPolicy);
  const failures = new FailureNotifier(db, { lang: config.notify.lang, timezone: config.notify.timezone, publicUrl: config.http.publicUrl });
  const finisher = new RunFinisher(db, ledger, log, clock, (trx, row, plan) => failures.onRunFinished(trx, row, plan));
  const runs = new RunService(db, queue, finisher, log, clock);
  const reviews = new ReviewService(db, ledger, clock);
  const tokens = new TokenService(db, clock);
  const external = new ExternalResultService(db, finisher, clock);
  const ingestTokens = new IngestTokenService(db, clock);
  const manual = new ManualRunService(db, finisher, clock);
  const exercises = new ExerciseService(db, finisher, ledger, clock);
  const systems = new SystemService(db, audit, clock);
  const sessions = new SessionService(db, config.auth, clock);
  const accounts = new AccountService(db, sessions, audit, config.auth, { publicUrl: config.http.publicUrl, clock });
  const tenants = new TenantService(db, sessions, audit, accounts, { clock });
  return {
    pools: new PoolService(db, queue, config.policy.pools, clock),
    clock, config, log, db, redis, queue, docker, plans, planPolicy, runs, signer, ledger, finisher, reviews, tokens, external, ingestTokens, manual, exercises, systems, sessions, audit, accounts, tenants,
    outcomeSigner(o = {}) {
      return new OutcomeSigner(db, finisher, log.child({ role: 'signer' }), {
        databaseUrl: config.database.url, orphanSeconds: config.sandbox.staleSeconds * 3 + 60, ledger, pollMs: o.pollMs,
      });
    },
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
      producer.disconnect();
      redis.disconnect();
      await db.destroy();
    },
  };
}
