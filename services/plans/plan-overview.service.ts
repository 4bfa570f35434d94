import type { PlanRow, PlanScheduleRow, RunRow, Verdict } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { AlertRow } from '../../db/repositories/notification.repository.js';
import type { PlanStatusRow } from '../../db/repositories/plan-status.repository.js';
import type { LastRunRow, PlanSummaryRow } from '../../db/repositories/overview.repository.js';
import { NotFound } from '../errors.js';
import { planStatus } from '../runs/plan-status.js';
import type { BaselineView } from '../runs/baseline.service.js';
import { nextScheduledAt } from '../scheduling/slots.js';
import type { RestorePlan } from './plan.types.js';
import type { Clock } from '../clock.js';

export type { AlertRow, LastRunRow, PlanSummaryRow };
export type PlanStatusValue = PlanStatusRow['status'];

/** A scheduler leader that has not ticked for this long counts as stopped (the plan API, the dashboard and /readyz). */
export const TICK_STALE_SECONDS = 180;
/** The dashboard's order of statuses: what needs attention first. */
export const STATUS_ORDER = ['failing', 'overdue', 'never-tested', 'due-soon', 'ok'] as const;
const ORDER = STATUS_ORDER;

/** What every view of one plan shows besides the plan itself: its status, schedule and open alert. */
export interface PlanState {
  status: PlanStatusValue;
  nextDueAt: Date | null;
  /** The plan's schedule row (last slot, paused by whom and why); undefined before the scheduler first saw it. */
  schedule: PlanScheduleRow | undefined;
  /** Null without a schedule or while paused. */
  nextScheduledAt: Date | null;
  alert: AlertRow | undefined;
}

/** One plan as the API shows it (GET /plans, GET /plans/{id}). */
export interface PlanOverview extends PlanState {
  row: PlanRow;
  /** Whether the scheduler leader ticks; null for a plan without a schedule (watching the watcher). */
  scheduler: { lastTickAt: Date | null; healthy: boolean } | null;
  lastRun: { id: string; verdict: Verdict | null; finishedAt: Date | null } | null;
}

export interface DashboardRow {
  plan: PlanSummaryRow;
  status: PlanStatusValue;
  nextDueAt: Date | null;
  last?: LastRunRow;
  active?: { id: string; status: string };
  alert?: AlertRow;
  headroomSeconds: number | null;
}

export interface DashboardData {
  rows: DashboardRow[];
  counts: Record<string, number>;
  scheduler: { needed: boolean; healthy: boolean; lastTickAt: Date | null };
}

/** The plan page: the plan's state, its newest runs and the baseline of its drift checks. */
export interface PlanPageData extends PlanState {
  row: PlanRow;
  history: RunRow[];
  baseline: BaselineView | null;
}

type Tick = { at: Date; ageSeconds: number } | null;
const healthy = (tick: Tick) => tick !== null && tick.ageSeconds < TICK_STALE_SECONDS;

/**
 * The one place that assembles what a tenant's plans look like now: the API's
 * plan list and detail, the plan page and the dashboard. Lists take a fixed
 * number of queries however many plans and runs there are (the status in one
 * set-based query); one plan takes its own few, with the status by the same
 * rules (services/runs/plan-status.ts).
 */
export class PlanOverviewService {
  constructor(
    private readonly repos: Pick<Repositories, 'plans' | 'planStatus' | 'runs' | 'schedules' | 'notifications' | 'overview'>,
    private readonly opts: {
      /** Business time (services/clock.ts). */
      clock: Clock;
      /** The drift checks' baseline, shown on the plan page. */
      baselines?: { current(tenantId: string, planId: string): Promise<BaselineView | null> };
    },
  ) {}

  private now(): Date {
    return this.opts.clock();
  }

  private async plan(tenantId: string, id: string): Promise<PlanRow> {
    const row = await this.repos.plans.get(tenantId, id);
    if (!row) throw new NotFound(`plan ${id}`);
    return row;
  }

  /** Status, schedule and open alert of one plan, in parallel (the status by the same rules as the set-based query). */
  private async state(tenantId: string, row: PlanRow, now: Date): Promise<PlanState> {
    const [decisive, passed, schedule, alerts] = await Promise.all([
      this.repos.runs.lastDecisive(tenantId, row.id), this.repos.runs.lastPassed(tenantId, row.id),
      this.repos.schedules.get(tenantId, row.id), this.repos.notifications.listAlerts(tenantId, { open: true, planId: row.id, limit: 1 }),
    ]);
    const def = row.definition as RestorePlan;
    const status = planStatus(def, row.created_at, [decisive, passed].filter((r) => r !== undefined), now);
    return { ...status, schedule, nextScheduledAt: nextRun(def, schedule, now), alert: alerts[0] };
  }

  /** GET /plans/{id}: one plan, 404 if the tenant has none of that id. */
  async get(tenantId: string, id: string): Promise<PlanOverview> {
    return this.of(tenantId, await this.plan(tenantId, id));
  }

  /** One plan the caller has read already (after storing it). */
  async of(tenantId: string, row: PlanRow): Promise<PlanOverview> {
    const now = this.now();
    const [state, last, tick] = await Promise.all([
      this.state(tenantId, row, now), this.repos.runs.lastFinished(tenantId, row.id), this.repos.schedules.lastLeaderTick(),
    ]);
    return overview(row, state, last, tick);
  }

  /** GET /plans: all plans of a tenant in a fixed number of queries, however many plans. */
  async list(tenantId: string): Promise<PlanOverview[]> {
    const rows = await this.repos.plans.list(tenantId);
    const now = this.now();
    const [statuses, schedules, lasts, tick, alerts] = await Promise.all([
      this.repos.planStatus.statusAll(tenantId, now), this.repos.schedules.listForTenant(tenantId), this.repos.runs.lastFinishedAll(tenantId),
      this.repos.schedules.lastLeaderTick(), this.repos.notifications.listAlerts(tenantId, { open: true, limit: 100_000 }),
    ]);
    const st = byKey(statuses, 'planId');
    const sc = byKey(schedules, 'plan_id');
    const la = byKey(lasts, 'plan_id');
    const al = byKey(alerts, 'plan_id');
    return rows.map((row) => {
      const status = st.get(row.id) ?? { status: 'never-tested' as const, nextDueAt: null };
      const schedule = sc.get(row.id);
      const state: PlanState = {
        status: status.status, nextDueAt: status.nextDueAt, schedule, nextScheduledAt: nextRun(row.definition as RestorePlan, schedule, now), alert: al.get(row.id),
      };
      return overview(row, state, la.get(row.id), tick);
    });
  }

  /**
   * Everything the dashboard shows, in three queries however many plans and
   * runs there are, sent at once: one row per plan with its status, newest
   * run, measured restore time and active run (one statement); the open
   * alerts; the scheduler's tick.
   */
  async dashboard(tenantId: string): Promise<DashboardData> {
    const now = this.now();
    const [plans, tick, alerts] = await Promise.all([
      this.repos.overview.dashboardRows(tenantId, now), this.repos.schedules.lastLeaderTick(),
      this.repos.notifications.listAlerts(tenantId, { open: true, limit: 100_000 }),
    ]);
    const al = new Map(alerts.map((x) => [x.plan_id, x]));
    const counts: Record<string, number> = Object.fromEntries(ORDER.map((k) => [k, 0]));
    const rows = plans.map(({ plan, status, nextDueAt, last, active }): DashboardRow => {
      counts[status] = (counts[status] ?? 0) + 1;
      const measured = last?.measured_seconds ?? null;
      return {
        plan, status, nextDueAt, last, active, alert: al.get(plan.id),
        headroomSeconds: plan.rto_seconds !== null && measured !== null ? plan.rto_seconds - measured : null,
      };
    });
    rows.sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.plan.title.localeCompare(b.plan.title, 'de') || a.plan.id.localeCompare(b.plan.id));
    const needed = plans.some((p) => p.plan.scheduled);
    return { rows, counts, scheduler: { needed, healthy: healthy(tick), lastTickAt: tick?.at ?? null } };
  }

  /** The plan page: 404 if the tenant has no such plan; then its state, its newest `history` runs and its baseline, in parallel. */
  async page(tenantId: string, id: string, history: number): Promise<PlanPageData> {
    const row = await this.plan(tenantId, id);
    const now = this.now();
    const [state, runs, baseline] = await Promise.all([
      this.state(tenantId, row, now), this.repos.runs.list({ tenantId, planId: row.id, limit: history }),
      this.opts.baselines?.current(tenantId, row.id) ?? Promise.resolve(null),
    ]);
    return { row, ...state, history: runs, baseline };
  }

  /** Titles of all plans (for lists of runs, alerts and measures). */
  planTitles(tenantId: string): Promise<Map<string, string>> {
    return this.repos.overview.planTitles(tenantId);
  }

  /** The tenant's name, as page headers show it. */
  tenantName(tenantId: string): Promise<string | undefined> {
    return this.repos.overview.tenantName(tenantId);
  }
}

/** The next scheduled start; none while paused. */
function nextRun(def: RestorePlan, schedule: PlanScheduleRow | undefined, now: Date): Date | null {
  return schedule?.paused_at ? null : nextScheduledAt(def, schedule?.last_slot ?? null, now);
}

function overview(
  row: PlanRow, state: PlanState, last: { id: string; verdict: Verdict | null; finished_at: Date | null } | undefined, tick: Tick,
): PlanOverview {
  return {
    row, ...state,
    scheduler: (row.definition as RestorePlan).cadence.schedule ? { lastTickAt: tick?.at ?? null, healthy: healthy(tick) } : null,
    lastRun: last ? { id: last.id, verdict: last.verdict, finishedAt: last.finished_at } : null,
  };
}

function byKey<T, K extends keyof T>(list: T[], key: K): Map<string, T> {
  return new Map(list.map((x) => [x[key] as unknown as string, x]));
}
