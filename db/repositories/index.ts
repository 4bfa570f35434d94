import type { Kysely } from 'kysely';
import type { DB } from '../schema.js';
import type { Clock } from '../../services/clock.js';
import { AccountRepository } from './account.repository.js';
import { BaselineRepository } from './baseline.repository.js';
import { CalendarFeedRepository } from './calendar-feed.repository.js';
import { DatabaseRepository } from './database.repository.js';
import { IngestTokenRepository } from './ingest-token.repository.js';
import { LedgerRepository } from './ledger.repository.js';
import { MetricsRepository } from './metrics.repository.js';
import { NotificationRepository } from './notification.repository.js';
import { OutcomeRepository } from './outcome.repository.js';
import { OverviewRepository } from './overview.repository.js';
import { PlanStatusRepository } from './plan-status.repository.js';
import { PlanRepository } from './plan.repository.js';
import { PoolRepository } from './pool.repository.js';
import { ProviderRepository } from './provider.repository.js';
import { QueueRepository } from './queue.repository.js';
import { ReminderRepository } from './reminder.repository.js';
import { ReportRepository } from './report.repository.js';
import { ReviewRepository } from './review.repository.js';
import { RunRepository } from './run.repository.js';
import { ScheduleRepository } from './schedule.repository.js';
import { RestartTestRepository } from './restart-test.repository.js';
import { SystemRepository } from './system.repository.js';
import { TenantRepository } from './tenant.repository.js';
import { TokenRepository } from './token.repository.js';
import { UploadRepository } from './upload.repository.js';
import { UserRepository } from './user.repository.js';

/** Every repository on one database: the only code that holds SQL (docs/ARCHITECTURE.md, "Layers"). */
export interface Repositories {
  accounts: AccountRepository;
  baselines: BaselineRepository;
  calendarFeeds: CalendarFeedRepository;
  database: DatabaseRepository;
  ingestTokens: IngestTokenRepository;
  ledger: LedgerRepository;
  metrics: MetricsRepository;
  notifications: NotificationRepository;
  outcomes: OutcomeRepository;
  overview: OverviewRepository;
  planStatus: PlanStatusRepository;
  plans: PlanRepository;
  pools: PoolRepository;
  providers: ProviderRepository;
  queue: QueueRepository;
  reminders: ReminderRepository;
  reports: ReportRepository;
  restartTests: RestartTestRepository;
  reviews: ReviewRepository;
  runs: RunRepository;
  schedules: ScheduleRepository;
  systems: SystemRepository;
  tenants: TenantRepository;
  tokens: TokenRepository;
  uploads: UploadRepository;
  users: UserRepository;
}

/**
 * The repositories of one database; those that write business times read
 * them from `clock` (services/clock.ts). Called by services/container.ts;
 * services receive them.
 */
export function createRepositories(db: Kysely<DB>, clock: Clock): Repositories {
  return {
    accounts: new AccountRepository(db, clock),
    baselines: new BaselineRepository(db),
    calendarFeeds: new CalendarFeedRepository(db, clock),
    database: new DatabaseRepository(db),
    ingestTokens: new IngestTokenRepository(db),
    ledger: new LedgerRepository(db),
    metrics: new MetricsRepository(db),
    notifications: new NotificationRepository(db),
    outcomes: new OutcomeRepository(db),
    overview: new OverviewRepository(db),
    planStatus: new PlanStatusRepository(db),
    plans: new PlanRepository(db),
    pools: new PoolRepository(db),
    providers: new ProviderRepository(db, clock),
    queue: new QueueRepository(db),
    reminders: new ReminderRepository(db),
    reports: new ReportRepository(db),
    restartTests: new RestartTestRepository(db),
    reviews: new ReviewRepository(db),
    runs: new RunRepository(db),
    schedules: new ScheduleRepository(db),
    systems: new SystemRepository(db),
    tenants: new TenantRepository(db),
    tokens: new TokenRepository(db, clock),
    uploads: new UploadRepository(db),
    users: new UserRepository(db, clock),
  };
}
