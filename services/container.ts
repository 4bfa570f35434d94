import { systemClock, type Clock } from './clock.js';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createDb } from '../db/database.js';
import type { DB } from '../db/schema.js';
import { createRepositories, type Repositories } from '../db/repositories/index.js';
import { createDocker } from '../workers/sandbox/docker.js';
import { RunQueue, producerConnection, redisConnection } from '../workers/queue.js';
import { PlanService } from './plans/plan.service.js';
import { PlanPolicyService } from './plans/plan-policy.js';
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
import { RestartTestService } from './systems/restart-test.service.js';
import { TokenService } from './auth/token.service.js';
import { FailureNotifier } from './notify/failure-notifier.js';
import { SessionService } from './auth/session.service.js';
import { AuditService } from './audit/audit.service.js';
import { AccountService } from './auth/account.service.js';
import { TenantService } from './auth/tenant.service.js';
import { ScheduleService } from './scheduling/schedule.service.js';
import { BaselineService } from './runs/baseline.service.js';
import { AlertService } from './notify/alert.service.js';
import { CalendarFeedService } from './calendar/calendar-feed.service.js';
import { ReportService } from './reports/report.service.js';
import { QueueOpsService } from './runs/queue-ops.js';
import { PlanOverviewService } from './plans/plan-overview.service.js';

/** Wires every side effect in one place; tests build the same with their own config. */
export interface Container {
  config: Config;
  log: Logger;
  db: Kysely<DB>;
  /** Every repository on `db`, made once here and handed to the services. */
  repos: Repositories;
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
  /** Processes' RTOs and restart tests (tier by tier, docs/decisions/024-restart-tests.md). */
  restartTests: RestartTestService;
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
  /** Pausing and resuming schedules. */
  schedules: ScheduleService;
  /** The baseline of the built-in drift checks. */
  baselines: BaselineService;
  /** Alerts people act on (acknowledge, snooze) and the notification outbox. */
  alerts: AlertService;
  calendarFeeds: CalendarFeedService;
  /** The data of the run protocol, the audit report and the year's programme. */
  reports: ReportService;
  /** The queue view for admins. */
  queueOps: QueueOpsService;
  /** The one clock for business time (services/clock.ts). */
  clock: Clock;
  readiness(roles: Config['roles']): ReadinessProbe[];
  close(): Promise<void>;
}

/**
 * The plan overview on a connection of the caller's: buildApp reads the
 * dashboard, the plan page and the plan API through the connection it is
 * handed (tests count what a page costs on it).
 */
export function planOverview(db: Kysely<DB>, opts: ConstructorParameters<typeof PlanOverviewService>[1]): PlanOverviewService {
  return new PlanOverviewService(createRepositories(db, opts.clock), opts);
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
  const repos = createRepositories(db, clock);
  const ledger = new LedgerService(db, signer, config.evidence, log, clock);
  const audit = new AuditService(ledger, clock);
  const planPolicy = new PlanPolicyService(repos.tenants, config.policy);
  const plans = new PlanService(db, repos, log, audit, clock, planPolicy);
  const failures = new FailureNotifier(repos, { lang: config.notify.lang, timezone: config.notify.timezone, publicUrl: config.http.publicUrl });
  const finisher = new RunFinisher(db, repos, ledger, log, clock, (trx, row, plan) => failures.onRunFinished(trx, row, plan));
  const runs = new RunService(repos, queue, finisher, log, clock);
  const reviews = new ReviewService(db, repos, ledger, clock);
  const tokens = new TokenService(repos.tokens, clock);
  const external = new ExternalResultService(repos, finisher, clock);
  const ingestTokens = new IngestTokenService(repos, clock);
  const manual = new ManualRunService(db, repos, finisher, clock);
  const exercises = new ExerciseService(repos, finisher, ledger, clock);
  const systems = new SystemService(repos.systems, audit, clock);
  const restartTests = new RestartTestService(db, repos, runs, ledger, log.child({ component: 'restart-tests' }), clock);
  const sessions = new SessionService(repos, config.auth, clock);
  const accounts = new AccountService(db, sessions, audit, config.auth, { publicUrl: config.http.publicUrl, clock });
  const tenants = new TenantService(db, repos, sessions, audit, accounts, { clock });
  const pools = new PoolService(repos.pools, queue, config.policy.pools, clock);
  const notify = { lang: config.notify.lang, timezone: config.notify.timezone, publicUrl: config.http.publicUrl };
  return {
    clock, config, log, db, repos, redis, queue, docker, plans, planPolicy, runs, signer, ledger, finisher, reviews, tokens, external, ingestTokens, manual, exercises, systems, restartTests, sessions, audit, accounts, tenants, pools,
    schedules: new ScheduleService(repos, clock),
    baselines: new BaselineService(db, repos, audit, clock),
    alerts: new AlertService(db, repos, ledger, notify, clock),
    calendarFeeds: new CalendarFeedService(repos, { publicUrl: config.http.publicUrl, clock, horizon: config.http.calendarHorizon }),
    reports: new ReportService(repos, ledger, systems),
    queueOps: new QueueOpsService(repos, queue, pools, config.policy.pools, audit, clock),
    outcomeSigner(o = {}) {
      return new OutcomeSigner(repos, finisher, log.child({ role: 'signer' }), {
        databaseUrl: config.database.url, orphanSeconds: config.sandbox.staleSeconds * 3 + 60, ledger, pollMs: o.pollMs,
      });
    },
    readiness(roles) {
      const probes: ReadinessProbe[] = [
        { name: 'database', check: () => repos.database.ping() },
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
