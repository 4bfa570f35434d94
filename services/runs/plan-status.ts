import type { RestorePlan } from '../plans/plan.types.js';
import { addDuration } from '../util/calendar.js';

export type PlanStatus = 'failing' | 'overdue' | 'never-tested' | 'due-soon' | 'ok';

interface RunLike {
  status: string;
  verdict: string | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const at = (r: RunLike) => (r.finished_at ?? r.started_at ?? r.queued_at).getTime();

/** Share of the interval before the due date that counts as "due soon" (at most 7 days). */
const DUE_SOON_SHARE = 0.2;

/**
 * Plan status, one value by precedence (docs/ARCHITECTURE.md "Plan status"): failing > overdue >
 * never-tested > due-soon > ok. Only a passed run resets the due clock; error
 * and cancelled runs change nothing.
 */
export function planStatus(plan: RestorePlan, createdAt: Date, runs: RunLike[], now: Date): { status: PlanStatus; nextDueAt: Date | null } {
  const finished = runs
    .filter((r) => r.status === 'finished' && (r.verdict === 'passed' || r.verdict === 'failed'))
    .sort((a, b) => at(b) - at(a));
  const lastPassed = finished.find((r) => r.verdict === 'passed');
  const tz = plan.cadence.timezone;
  const every = plan.cadence.requiredEvery;
  const clockStart = lastPassed ? (lastPassed.started_at ?? lastPassed.queued_at) : createdAt;
  const nextDueAt = every ? addDuration(clockStart, every, tz) : null;

  if (finished[0]?.verdict === 'failed') return { status: 'failing', nextDueAt };
  if (nextDueAt) {
    const overdueAt = plan.cadence.grace ? addDuration(nextDueAt, plan.cadence.grace, tz) : nextDueAt;
    if (now > overdueAt) return { status: 'overdue', nextDueAt };
  }
  if (finished.length === 0) return { status: 'never-tested', nextDueAt };
  if (nextDueAt) {
    const window = Math.min((nextDueAt.getTime() - clockStart.getTime()) * DUE_SOON_SHARE, 7 * 86_400_000);
    if (now.getTime() >= nextDueAt.getTime() - window) return { status: 'due-soon', nextDueAt };
  }
  return { status: 'ok', nextDueAt };
}
