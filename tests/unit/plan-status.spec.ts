import { describe, expect, it } from 'vitest';
import { planStatus } from '../../services/runs/plan-status.js';
import type { RestorePlan } from '../../services/plans/plan.types.js';

const plan = { cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' } } as RestorePlan;
const created = new Date('2026-11-01T00:00:00Z');
const run = (verdict: string, at: string) => ({ status: 'finished', verdict, queued_at: new Date(at), started_at: new Date(at), finished_at: new Date(at) });

describe('planStatus precedence', () => {
  it('is never-tested before the first decisive run, overdue when the clock from creation ran out', () => {
    expect(planStatus(plan, created, [], new Date('2026-11-01T12:00:00Z')).status).toBe('never-tested');
    expect(planStatus(plan, created, [run('error', '2026-11-01T10:00:00Z')], new Date('2026-11-02T07:00:00Z')).status).toBe('overdue');
  });
  it('is failing when the last decisive run failed, even if overdue', () => {
    const runs = [run('passed', '2026-11-01T01:00:00Z'), run('failed', '2026-11-02T01:00:00Z'), run('error', '2026-11-03T01:00:00Z')];
    expect(planStatus(plan, created, runs, new Date('2026-11-09T00:00:00Z')).status).toBe('failing');
  });
  it('only a passed run resets the due clock; error and cancelled change nothing', () => {
    const runs = [run('passed', '2026-11-01T01:00:00Z'), run('error', '2026-11-02T00:00:00Z'), run('cancelled', '2026-11-02T01:00:00Z')];
    const s = planStatus(plan, created, runs, new Date('2026-11-01T12:00:00Z'));
    expect(s.nextDueAt?.toISOString()).toBe('2026-11-02T01:00:00.000Z');
    expect(s.status).toBe('ok');
    // past the due date but inside the grace period: due, not yet overdue
    expect(planStatus(plan, created, runs, new Date('2026-11-02T04:00:00Z')).status).toBe('due-soon');
    expect(planStatus(plan, created, runs, new Date('2026-11-02T07:00:01Z')).status).toBe('overdue');
  });
  it('is due-soon inside the window before the due date, ok before it', () => {
    const runs = [run('passed', '2026-11-01T01:00:00Z')];
    expect(planStatus(plan, created, runs, new Date('2026-11-01T12:00:00Z')).status).toBe('ok');
    expect(planStatus(plan, created, runs, new Date('2026-11-01T21:00:00Z')).status).toBe('due-soon');
  });
});
