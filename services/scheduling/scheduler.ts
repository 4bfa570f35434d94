import { hostname } from 'node:os';
import cron, { type ScheduledTask } from 'node-cron';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { ScheduleRepository, nextSlotKey, type ScheduledPlan } from '../../db/repositories/schedule.repository.js';
import { SessionLock } from '../../db/repositories/session-lock.js';
import type { RunService } from '../runs/run.service.js';
import { DomainError } from '../errors.js';
import { dueSlot, nextSlot } from './slots.js';
import type { ReminderResult } from '../notify/reminders.js';

/** pg_try_advisory_lock key of the scheduler leader ("ernstfal" in ASCII); one per database. */
export const SCHEDULER_LOCK_KEY = '7310575213930980716';

const DEFAULT_TZ = 'Europe/Berlin';
/**
 * Plans whose next slot is not known yet that one tick works out (the first
 * ticks after the upgrade, or after many plans were imported): cron
 * arithmetic and a stored row each (~0.3–0.8 ms on a loaded machine), so a
 * tick stays around a second; the rest follow on the next ticks (40,000
 * plans: 40 minutes). The database hands over only these, not all unknown
 * ones. Plans whose known next slot has come are always handled.
 */
export const UNKNOWN_NEXT_SLOTS_PER_TICK = 1000;

export interface SchedulerOptions {
  /** The lock gets a connection of its own (not the pool): the lock lives exactly as long as this session. */
  databaseUrl: string;
  /** 60000 (default) ticks with node-cron every minute; anything smaller (tests) with setInterval. */
  tickMs?: number;
  /** Names this process in scheduler_heartbeats; default hostname-pid. */
  id?: string;
  /** Evaluated by the leader after the slots of each tick, with the scheduler's clock: reminders, alerts, all-clears. */
  reminders?: { evaluate(now: Date): Promise<ReminderResult> };
}

export interface TickResult {
  leader: boolean;
  /** ids of the runs enqueued by this tick */
  enqueued: string[];
  /** slots that passed without a run (plan busy), "planId@slot" */
  missed: string[];
  /** plans looked at (next slot come, or not known yet), and those of them left for the next tick */
  examined?: number;
  deferred?: number;
  reminders?: ReminderResult;
}

type RunTrigger = Pick<RunService, 'trigger'>;

/**
 * Cron only enqueues. Exactly one scheduler acts at a time: the one holding a
 * PostgreSQL session advisory lock on its own connection. When it dies, its
 * session ends, the lock is free, and another scheduler takes it on its next
 * tick (within a minute). Slots come from the last slot persisted per plan, so
 * node-cron's dropped ticks, restarts and downtime neither lose nor repeat a
 * slot; the unique (tenant, plan, slot) index makes a double enqueue impossible
 * whatever happens here.
 */
export class Scheduler {
  readonly id: string;
  private readonly repo: ScheduleRepository;
  private readonly tickMs: number;
  private lock: SessionLock | null = null;
  private leader = false;
  private task: ScheduledTask | null = null;
  private interval: NodeJS.Timeout | null = null;
  private running: Promise<TickResult> | null = null;
  private stopped = false;
  /** Real time (not the injected clock) of the last completed tick, for readiness. */
  private lastTickDone: number | null = null;

  constructor(
    db: Kysely<DB>,
    private readonly runs: RunTrigger,
    private readonly clock: () => Date,
    private readonly log: Logger,
    private readonly opts: SchedulerOptions,
  ) {
    this.id = opts.id ?? `${hostname()}-${process.pid}`;
    this.tickMs = opts.tickMs ?? 60_000;
    // still takes a database (tests hand one): its repository is made here
    this.repo = new ScheduleRepository(db);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /**
   * For the scheduler process's own /readyz: failing when it has not completed
   * a tick for two intervals (stuck, or the database unreachable). A follower
   * that ticks is ready: it is the stand-by.
   */
  readinessProbe(): { name: string; check: () => Promise<{ leader: boolean }> } {
    return {
      name: 'scheduler',
      check: async () => {
        const age = this.lastTickDone === null ? null : performance.now() - this.lastTickDone;
        if (age === null || age > 2 * this.tickMs + 15_000) throw new Error(age === null ? 'no tick completed yet' : `last tick ${Math.round(age / 1000)} s ago`);
        return { leader: this.leader };
      },
    };
  }

  /** Ticks now, then every tickMs. A tick still running when the next is due makes that one a no-op. */
  start(): void {
    this.stopped = false;
    const fire = () => {
      if (this.running || this.stopped) return;
      void this.tick().catch((err: Error) => this.log.error({ err: err.message }, 'scheduler tick failed'));
    };
    if (this.tickMs >= 60_000) this.task = cron.schedule('* * * * *', fire, { name: `ernstfall-scheduler-${this.id}`, noOverlap: true });
    else this.interval = setInterval(fire, this.tickMs);
    fire();
    this.log.info({ schedulerId: this.id, tickMs: this.tickMs }, 'scheduler started');
  }

  /** Stops ticking, waits for a running tick, and gives up leadership at once (the lock goes with the session). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.task) await this.task.destroy();
    this.task = null;
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
    await this.running?.catch(() => undefined);
    const wasLeader = this.leader;
    this.leader = false;
    const lock = this.lock;
    this.lock = null;
    if (lock) await lock.end().catch(() => undefined);
    if (wasLeader) await this.repo.leaderGone(this.id).catch(() => undefined);
  }

  /** One pass: take or confirm leadership; as leader, enqueue every due slot. */
  tick(): Promise<TickResult> {
    if (this.running) return this.running;
    this.running = this.doTick().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async doTick(): Promise<TickResult> {
    const leader = await this.ensureLeadership();
    await this.repo.heartbeat(this.id, leader);
    const result: TickResult = { leader, enqueued: [], missed: [] };
    if (!leader) {
      this.lastTickDone = performance.now();
      return result;
    }
    const now = this.clock();
    // only the plans whose next slot has come or is not known: the database picks them (set-based), the rest wait
    const { plans: todo, unknownTotal } = await this.repo.duePlans(now, UNKNOWN_NEXT_SLOTS_PER_TICK);
    result.examined = todo.length;
    result.deferred = unknownTotal - todo.filter((p) => p.next_slot === null).length;
    const next: { tenantId: string; planId: string; nextSlot: Date | null; key: string }[] = [];
    for (const plan of todo) {
      // one plan's trouble must not hold up the others; it is tried again next tick (last_slot and next_slot did not move)
      try {
        const handled = await this.handle(plan, now, result);
        if (handled === undefined) continue;
        const tz = plan.timezone ?? DEFAULT_TZ;
        const last = handled ?? plan.last_slot;
        // the first slot that dueSlot could return later: strictly after the last slot handled, not before creation
        const floor = last && last.getTime() >= plan.created_at.getTime() ? last.getTime() + 1 : plan.created_at.getTime();
        next.push({ tenantId: plan.tenant_id, planId: plan.plan_id, nextSlot: nextSlot(plan.schedule, tz, new Date(floor - 1)), key: nextSlotKey(plan.schedule, plan.timezone) });
      } catch (err) {
        this.log.error({ tenantId: plan.tenant_id, planId: plan.plan_id, err: (err as Error).message }, 'scheduling the plan failed; trying again next tick');
      }
    }
    try {
      await this.repo.setNextSlots(next, now);
    } catch (err) {
      // harmless: those plans are looked at again next tick
      this.log.error({ err: (err as Error).message }, 'storing the next slots failed; looking at those plans again next tick');
    }
    if (result.deferred) this.log.info({ examined: result.examined, deferred: result.deferred }, 'scheduler: next slots of more plans worked out on the next ticks');
    if (this.opts.reminders) {
      try {
        result.reminders = await this.opts.reminders.evaluate(now);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'evaluating reminders failed; trying again next tick');
      }
    }
    this.lastTickDone = performance.now();
    return result;
  }

  /** Handles the plan's due slot: the slot now handled, null when none was due, undefined when the plan went away. */
  private async handle(plan: ScheduledPlan, now: Date, result: TickResult): Promise<Date | null | undefined> {
    const slot = dueSlot(plan.schedule, plan.timezone ?? DEFAULT_TZ, plan.last_slot, plan.created_at, now);
    if (!slot) return null;
    const ctx = { tenantId: plan.tenant_id, planId: plan.plan_id, slot: slot.toISOString() };
    if (plan.paused_at) {
      // a paused plan's slots pass by: resuming does not fire the backlog
      await this.repo.advance(plan.tenant_id, plan.plan_id, slot, now, { reason: 'paused' });
      this.log.info(ctx, 'slot passed: plan is paused');
      return slot;
    }
    try {
      const run = await this.runs.trigger(plan.tenant_id, plan.plan_id, { trigger: 'schedule', triggeredBy: 'scheduler', slot });
      result.enqueued.push(run.id);
      await this.repo.advance(plan.tenant_id, plan.plan_id, slot, now);
      return slot;
    } catch (err) {
      if (!(err instanceof DomainError) || (err.statusCode !== 409 && err.statusCode !== 404)) throw err;
      if (err.statusCode === 404) return undefined; // the plan went away between listing and triggering
    }
    if (await this.repo.slotTaken(plan.tenant_id, plan.plan_id, slot)) {
      // another scheduler, or this one before a crash, already enqueued it
      await this.repo.advance(plan.tenant_id, plan.plan_id, slot, now);
      return slot;
    }
    // The plan is being tested right now (a manual run, or the last slot's run still going): that run serves
    // this slot's purpose, so the slot is recorded as missed and not run afterwards; the next slot comes as usual.
    await this.repo.advance(plan.tenant_id, plan.plan_id, slot, now, { reason: 'active-run' });
    result.missed.push(`${plan.plan_id}@${ctx.slot}`);
    this.log.warn(ctx, 'slot missed: the plan still has an active run');
    return slot;
  }

  /** Leader = holds the advisory lock on a live session of its own. Non-leaders try again every tick. */
  private async ensureLeadership(): Promise<boolean> {
    try {
      if (this.leader && this.lock) {
        await this.lock.alive(); // session alive = lock still held
        return true;
      }
      this.lock ??= await this.connect();
      this.leader = await this.lock.tryLock(SCHEDULER_LOCK_KEY);
      if (this.leader) this.log.info({ schedulerId: this.id }, 'scheduler is leader');
      return this.leader;
    } catch (err) {
      if (this.leader) this.log.error({ schedulerId: this.id, err: (err as Error).message }, 'lost the scheduler lock session; not leader any more');
      this.leader = false;
      const lock = this.lock;
      this.lock = null;
      void lock?.end().catch(() => undefined);
      return false;
    }
  }

  private connect(): Promise<SessionLock> {
    return SessionLock.connect(this.opts.databaseUrl, 'ernstfall-scheduler-lock', (err, lock) => {
      // a dropped session must not crash the process: the next tick notices and reconnects
      this.log.warn({ schedulerId: this.id, err: err.message }, 'scheduler lock session failed');
      if (this.lock === lock) {
        this.leader = false;
        this.lock = null;
      }
    });
  }
}
