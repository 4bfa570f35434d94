/**
 * What the evidence ledger signs: the payloads of run, review and measure
 * records, built here and nowhere else. The run payload lists its fields
 * itself instead of reusing the API's run view (services/runs/run.view.ts), so
 * a change to what the API shows cannot change what is signed: a change of the
 * evidence format is a change of this file, and of the golden record in
 * tests/unit/evidence-payload.spec.ts. Format: docs/decisions/006-evidence-ledger.md.
 */
import type { RunRow, ReviewDecision, Verdict } from '../../db/schema.js';
import type { RestorePlan } from '../plans/plan.types.js';

/** The run as its record keeps it (the same fields the API showed when the format was fixed). */
export function runEvidence(r: RunRow) {
  return {
    id: r.id,
    planId: r.plan_id,
    planVersion: r.plan_version_hash,
    status: r.status,
    verdict: r.verdict,
    trigger: r.trigger,
    triggeredBy: r.triggered_by,
    queuedAt: r.queued_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
    cancelRequestedAt: r.cancel_requested_at?.toISOString() ?? null,
    phases: r.phases,
    rto: r.rto ?? null,
    rpo: r.rpo ?? null,
    checks: r.checks,
    backup: r.backup ?? null,
    findings: r.findings,
    sandbox: r.sandbox ?? null,
    restore: r.restore ?? null,
    origin: r.origin ?? 'ernstfall',
    ...(r.external_id && { externalId: r.external_id }),
    ...(r.pool && r.pool !== 'default' && { pool: r.pool }),
  };
}

/** What the ledger keeps of the plan a run ran: enough to read the record alone, never a canary value. */
export function planSnapshot(plan: RestorePlan | undefined, version: string) {
  if (!plan) return { version };
  return {
    id: plan.id, title: plan.title, version, system: plan.system ?? null, targets: plan.targets,
    cadence: plan.cadence, controls: plan.controls,
    ...(plan.restore ? { restore: { driver: plan.restore.driver, ...('database' in plan.restore && { database: plan.restore.database }) } } : { kind: plan.kind ?? null, external: plan.external ?? null }),
  };
}

/** A finished run's record: the run, the plan version it ran and, under central signing, the worker that reported it. */
export function runRecordPayload(row: RunRow, plan: RestorePlan | undefined, reportedBy?: string): Record<string, unknown> {
  return { run: runEvidence(row), plan: planSnapshot(plan, row.plan_version_hash), ...(reportedBy && { reportedBy: { worker: reportedBy } }) };
}

/** A review's record (four-eyes sign-off), naming the run's record it signs off. */
export function reviewRecordPayload(r: {
  reviewId: string; runId: string; planId: string; runVerdict: Verdict | null; runRecordHash: string | null;
  decision: ReviewDecision; comment: string; reviewer: string; measureIds: string[];
}): Record<string, unknown> {
  return {
    reviewId: r.reviewId, runId: r.runId, planId: r.planId, runVerdict: r.runVerdict, runRecordHash: r.runRecordHash,
    decision: r.decision, comment: r.comment, reviewer: r.reviewer, measureIds: r.measureIds,
  };
}

/** A new follow-up measure's record. */
export function measureCreatedPayload(m: {
  measureId: string; planId: string; runId: string; reviewId: string | null; title: string; owner: string; dueDate: string; by: string;
}): Record<string, unknown> {
  return {
    measureId: m.measureId, action: 'created', planId: m.planId, runId: m.runId, reviewId: m.reviewId,
    title: m.title, owner: m.owner, dueDate: m.dueDate, status: 'open', by: m.by,
  };
}

/** A measure's change (updated, or closed by a re-test): its state after the change. */
export function measureChangedPayload(m: {
  measureId: string; action: 'updated' | 'closed'; planId: string; runId: string; title: string; owner: string; dueDate: string;
  status: string; closedByRunId: string | null; by: string;
}): Record<string, unknown> {
  return {
    measureId: m.measureId, action: m.action, planId: m.planId, runId: m.runId, title: m.title, owner: m.owner,
    dueDate: m.dueDate, status: m.status, closedByRunId: m.closedByRunId, by: m.by,
  };
}
