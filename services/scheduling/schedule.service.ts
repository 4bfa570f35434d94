import type { PlanScheduleRow } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { nextScheduledAt } from './slots.js';
import type { Clock } from '../clock.js';

export interface PausedView {
  at: string;
  reason: string;
  by: string;
}

export interface ScheduleView {
  schedule: string | null;
  timezone: string;
  /** The newest slot handled (run, or passed by while paused or busy). */
  lastSlot: string | null;
  /** When the scheduler will next start the plan; null without a schedule or while paused. */
  nextScheduledAt: string | null;
  paused: PausedView | null;
  lastMissed: { slot: string; reason: string } | null;
}

export function pausedView(row: Pick<PlanScheduleRow, 'paused_at' | 'paused_reason' | 'paused_by'> | undefined): PausedView | null {
  return row?.paused_at ? { at: row.paused_at.toISOString(), reason: row.paused_reason ?? '', by: row.paused_by ?? '' } : null;
}

/** Pausing and resuming a plan's schedule, and what the schedule looks like now. */
export class ScheduleService {
  private readonly repo: Repositories['schedules'];
  private readonly plans: Repositories['plans'];

  constructor(repos: Pick<Repositories, 'schedules' | 'plans'>, private readonly clock: Clock) {
    this.repo = repos.schedules;
    this.plans = repos.plans;
  }

  async view(tenantId: string, planId: string): Promise<ScheduleView> {
    const plan = await this.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    const row = await this.repo.get(tenantId, planId);
    const def = plan.definition as RestorePlan;
    const paused = pausedView(row);
    const next = paused ? null : nextScheduledAt(def, row?.last_slot ?? null, this.clock());
    return {
      schedule: def.cadence.schedule ?? null,
      timezone: def.cadence.timezone,
      lastSlot: row?.last_slot?.toISOString() ?? null,
      nextScheduledAt: next?.toISOString() ?? null,
      paused,
      lastMissed: row?.last_missed_slot ? { slot: row.last_missed_slot.toISOString(), reason: row.last_missed_reason ?? '' } : null,
    };
  }

  /** `paused: {at, reason, by} | null` for the plan views. */
  async paused(tenantId: string, planId: string): Promise<PausedView | null> {
    return pausedView(await this.repo.get(tenantId, planId));
  }

  async pause(tenantId: string, planId: string, reason: string, by: string): Promise<ScheduleView> {
    const text = reason.trim();
    if (!text) throw new Invalid('a pause needs a reason', [{ path: 'body.reason', message: 'must not be empty' }]);
    if (!(await this.plans.get(tenantId, planId))) throw new NotFound(`plan ${planId}`);
    const row = await this.repo.pause(tenantId, planId, { at: this.clock(), reason: text, by });
    if (!row) {
      const current = pausedView(await this.repo.get(tenantId, planId));
      throw new Conflict(`plan ${planId} is already paused`, { paused: current });
    }
    return this.view(tenantId, planId);
  }

  /** Slots that passed during the pause are not caught up: the next slot after now runs. */
  async resume(tenantId: string, planId: string): Promise<ScheduleView> {
    if (!(await this.plans.get(tenantId, planId))) throw new NotFound(`plan ${planId}`);
    const row = await this.repo.resume(tenantId, planId, this.clock());
    if (!row) throw new Conflict(`plan ${planId} is not paused`);
    return this.view(tenantId, planId);
  }
}
