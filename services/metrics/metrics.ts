import type { Kysely } from 'kysely';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DB, NotificationStatus, Verdict } from '../../db/schema.js';
import { MetricsRepository } from '../../db/repositories/metrics.repository.js';
import { PlanStatusRepository } from '../../db/repositories/plan-status.repository.js';
import { ScheduleRepository } from '../../db/repositories/schedule.repository.js';
import { OutcomeRepository } from '../../db/repositories/outcome.repository.js';
import type { PoolService, PoolState } from '../runs/pools.js';
import type { PlanStatus } from '../runs/plan-status.js';
import type { Clock } from '../clock.js';

/** A scheduler is healthy when a leader ticked within this many seconds (same rule as the plan views). */
export const SCHEDULER_HEALTHY_SECONDS = 180;

const PLAN_STATUSES: PlanStatus[] = ['failing', 'overdue', 'never-tested', 'due-soon', 'ok'];
const VERDICTS: Verdict[] = ['passed', 'failed', 'error', 'cancelled'];
const NOTIFICATION_STATUSES: NotificationStatus[] = ['pending', 'sending', 'sent', 'failed'];

export interface MetricsOptions {
  db: Kysely<DB>;
  /** Label ernstfall_plans with the tenant slug (off by default: names of Kommunen are not for every scraper). */
  tenantLabels: boolean;
  /** Business time: plan status and the waits of queued runs; the ages of leases (outcomes, leader ticks, the outbox) come from the database clock. */
  clock: Clock;
  /** prom-client's process metrics (CPU, memory, event loop, GC); on by default. */
  defaultMetrics?: boolean;
  /** Worker pools (live workers need Redis); without it no per-pool gauges. */
  pools?: PoolService;
}

/**
 * A registry of its own (never prom-client's global one: tests build several
 * apps in one process). The ernstfall gauges are read from the database on
 * each scrape, so every process (api, worker, scheduler) reports the same
 * installation-wide state, and a stopped scheduler shows on any of them.
 * Every label value is always present (0 when none), so alert rules need no
 * absent().
 */
export function buildMetricsRegistry(opts: MetricsOptions): Registry {
  const registry = new Registry();
  const repo = new MetricsRepository(opts.db);
  const statuses = new PlanStatusRepository(opts.db);
  const schedules = new ScheduleRepository(opts.db);
  const outcomes = new OutcomeRepository(opts.db);
  const clock = opts.clock;
  const registers = [registry];

  new Gauge({
    name: 'ernstfall_plans',
    help: 'Restore plans by status (failing, overdue, never-tested, due-soon, ok)',
    labelNames: opts.tenantLabels ? ['tenant', 'status'] : ['status'],
    registers,
    async collect() {
      const now = clock();
      const perTenant: { slug: string; counts: Map<PlanStatus, number> }[] = [];
      for (const t of await repo.tenants()) {
        const counts = new Map<PlanStatus, number>(PLAN_STATUSES.map((s) => [s, 0]));
        for (const row of await statuses.statusAll(t.id, now)) counts.set(row.status, (counts.get(row.status) ?? 0) + 1);
        perTenant.push({ slug: t.slug, counts });
      }
      // set everything at once after the awaits: two overlapping scrapes cannot mix their values
      this.reset();
      for (const s of PLAN_STATUSES) {
        if (opts.tenantLabels) for (const t of perTenant) this.set({ tenant: t.slug, status: s }, t.counts.get(s)!);
        else this.set({ status: s }, perTenant.reduce((sum, t) => sum + t.counts.get(s)!, 0));
      }
    },
  });

  new Gauge({
    name: 'ernstfall_runs_active',
    help: 'Runs queued or running now',
    labelNames: ['status'],
    registers,
    async collect() {
      const rows = await repo.activeRuns();
      for (const s of ['queued', 'running'] as const) this.set({ status: s }, rows.find((r) => r.status === s)?.n ?? 0);
    },
  });

  new Gauge({
    name: 'ernstfall_queue_oldest_waiting_age_seconds',
    help: 'Seconds the oldest queued restore test has waited for a worker (database clock); 0 when none waits. A growing value: no worker takes jobs',
    registers,
    async collect() {
      this.set(await repo.oldestQueuedAgeSeconds(clock()));
    },
  });

  if (opts.pools) {
    const pools = opts.pools;
    // one read per scrape, shared by the four gauges (each collect() would otherwise ask Redis and the database again)
    let scrape: { at: number; states: Promise<PoolState[]> } | undefined;
    const states = () => {
      if (!scrape || performance.now() - scrape.at > 250) scrape = { at: performance.now(), states: pools.states() };
      return scrape.states;
    };
    const perPool = (name: string, help: string, value: (s: PoolState) => number | null) => new Gauge({
      name, help, labelNames: ['pool'], registers,
      async collect() {
        const all = await states();
        this.reset();
        for (const s of all) {
          const v = value(s);
          if (v !== null) this.set({ pool: s.pool }, v);
        }
      },
    });
    perPool('ernstfall_pool_workers', 'Live workers per pool (connected to its queue); 0 with work waiting: nothing runs it', (s) => s.workers);
    perPool('ernstfall_pool_queued', 'Restore tests waiting in the pool\'s queue', (s) => s.queued);
    perPool('ernstfall_pool_sandboxes_in_use', 'Restore tests running in the pool (one sandbox each)', (s) => s.running);
    perPool('ernstfall_pool_oldest_waiting_age_seconds', 'Seconds the pool\'s oldest queued restore test has waited (database clock); 0 when none waits', (s) => s.oldestQueuedAgeSeconds);
  }

  new Gauge({
    name: 'ernstfall_outcomes_unsigned',
    help: 'Outcomes workers handed over that no process with the signing key has signed yet (their runs still show running). Growing: no API or scheduler process runs',
    registers,
    async collect() {
      this.set((await outcomes.backlog()).count);
    },
  });

  new Gauge({
    name: 'ernstfall_outcomes_oldest_unsigned_age_seconds',
    help: 'Seconds the oldest unsigned outcome has waited for a signer (database clock); 0 when none waits',
    registers,
    async collect() {
      this.set((await outcomes.backlog()).oldestAgeSeconds);
    },
  });

  new Gauge({
    name: 'ernstfall_runs_finished_total',
    help: 'Finished runs by verdict (a count of the runs table, all time)',
    labelNames: ['verdict'],
    registers,
    async collect() {
      const rows = await repo.finishedRuns();
      for (const v of VERDICTS) this.set({ verdict: v }, rows.find((r) => r.verdict === v)?.n ?? 0);
    },
  });

  new Gauge({
    name: 'ernstfall_scheduler_last_tick_age_seconds',
    help: 'Seconds since a scheduler leader last ticked (database clock); -1 when none ever did',
    registers,
    async collect() {
      const tick = await schedules.lastLeaderTick();
      this.set(tick ? Math.max(0, tick.ageSeconds) : -1);
    },
  });

  new Gauge({
    name: 'ernstfall_scheduler_healthy',
    help: `1 when a scheduler leader ticked within ${SCHEDULER_HEALTHY_SECONDS} seconds, else 0`,
    registers,
    async collect() {
      const tick = await schedules.lastLeaderTick();
      this.set(tick !== null && tick.ageSeconds < SCHEDULER_HEALTHY_SECONDS ? 1 : 0);
    },
  });

  new Gauge({
    name: 'ernstfall_notifications',
    help: 'Notifications in the outbox by status (pending, sending, sent, failed)',
    labelNames: ['status'],
    registers,
    async collect() {
      const rows = await repo.notifications();
      for (const s of NOTIFICATION_STATUSES) this.set({ status: s }, rows.find((r) => r.status === s)?.n ?? 0);
    },
  });

  new Gauge({
    name: 'ernstfall_notification_oldest_pending_age_seconds',
    help: 'Seconds since the oldest notification not yet delivered (pending or sending) was written; 0 when none',
    registers,
    async collect() {
      this.set(await repo.oldestUndeliveredAgeSeconds());
    },
  });

  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}
