import { finding, type Finding } from '../../services/findings.js';
import type { PlanCheck, PlanTargets } from '../../services/plans/plan.types.js';
import { decideVerdict, measureTargets, type RtoRpo } from '../../services/runs/verdict.js';
import type { Verdict } from '../../db/schema.js';
import { skippedChecks, type CheckResult } from '../checks/checks.js';
import { completePhases, type Phase } from './phases.js';

/** Why a run stopped before its end. */
export type StopReason = 'cancelled' | 'timeout' | 'lost' | 'shutdown' | 'disk';

/**
 * Everything one restore test found out, filled in phase by phase. Each phase
 * adds its part; `concludeRun` turns it into the stored result.
 */
export interface RunOutcome {
  phases: Phase[];
  findings: Finding[];
  checks: CheckResult[];
  backup: Record<string, unknown> | null;
  sandbox: Record<string, unknown> | null;
  restore: Record<string, unknown> | null;
  /** The restore tool's own output: a prunable evidence attachment, never in findings. */
  toolLog?: string;
  /** The data is in the sandbox (the driver restored it and nothing proves otherwise). */
  restored: boolean;
  /** When fetch started (ms, business clock): the backup's age (RPO) is taken here. */
  testStart: number;
  /** The same moment on the monotonic clock (performance.now()): the measured RTO runs from here to verifyEnd. */
  testStartMono: number;
  /** The end of verify on the monotonic clock. */
  verifyEnd: number | null;
  /** An application group's run: when its last service answered healthy (monotonic); null while not (decisions/021). */
  servicesEnd?: number | null;
  backupCreatedAt: Date | null;
  stopped?: StopReason;
}

export function newOutcome(testStart: number, testStartMono = performance.now()): RunOutcome {
  return { phases: [], findings: [], checks: [], backup: null, sandbox: null, restore: null, restored: false, testStart, testStartMono, verifyEnd: null, backupCreatedAt: null };
}

export interface ConcludedRun extends RtoRpo {
  verdict: Verdict;
  phases: Phase[];
  findings: Finding[];
  checks: CheckResult[];
}

const STOP_FINDINGS: Record<Exclude<StopReason, 'cancelled'>, (timeoutSeconds: number) => Finding> = {
  shutdown: () => finding('INTERRUPTED', 'the worker was shut down during the test; the sandbox was removed and the test did not complete'),
  lost: () => finding('WORKER_LOST', 'this worker lost the run (no longer registered as its holder); the test did not complete'),
  timeout: (s) => finding('TIMEOUT', `the test did not finish within the sandbox timeout of ${s}s`),
  disk: () => finding('SANDBOX_DISK_FULL', 'the restore used up the sandbox\'s data area; the test was stopped (raise sandbox.disk, within the operator\'s bound)'),
};

const SKIP_REASON: Partial<Record<StopReason, string>> = { cancelled: 'abgebrochen', timeout: 'Zeitlimit überschritten' };

/**
 * The one rule that ends a run, for the worker, the finisher (runs no worker
 * completes) and the benchmarks alike: findings for how it stopped, every
 * check that did not run `skipped` with a reason, every phase accounted for,
 * RTO and RPO measured only when there was something to measure, and the
 * verdict from all of that.
 */
export function concludeRun(
  o: RunOutcome,
  plan: { targets: PlanTargets; checks: PlanCheck[]; services?: unknown[] },
  at: Date,
  opts: { timeoutSeconds?: number; skipReason?: string } = {},
): ConcludedRun {
  const findings = [...o.findings];
  if (o.stopped && o.stopped !== 'cancelled' && !findings.some((f) => f.code === STOP_FINDINGS[o.stopped as Exclude<StopReason, 'cancelled'>](0).code)) {
    findings.push(STOP_FINDINGS[o.stopped](opts.timeoutSeconds ?? 0));
  }
  if (plan.checks.length === 0 && o.verifyEnd !== null) {
    findings.push(finding('NO_CHECKS', 'the plan has no checks: only "restored without errors and not empty" was proven; add checks that prove the data'));
  }
  let checks = o.checks;
  if (checks.length < plan.checks.length) {
    const reason = (o.stopped && SKIP_REASON[o.stopped]) ?? opts.skipReason ?? 'nicht ausgeführt: Wiederherstellung nicht erfolgreich';
    checks = [...checks, ...skippedChecks(plan.checks.slice(checks.length), reason)];
  }
  // with an application group the RTO is the service's: it ends when the last service answers healthy (decisions/021)
  const end = plan.services?.length ? (o.verifyEnd === null ? null : o.servicesEnd ?? null) : o.verifyEnd;
  const measured = end === null ? null : (end - o.testStartMono) / 1000;
  const age = o.backupCreatedAt ? Math.max(0, (o.testStart - o.backupCreatedAt.getTime()) / 1000) : null;
  const targets = measureTargets(plan.targets, measured, age);
  if (targets.rto.met === false) findings.push(finding('RTO_EXCEEDED', `${plan.services?.length ? 'restore until the services answered healthy' : 'restore'} took ${Math.round(measured!)}s, RTO is ${plan.targets.rtoSeconds}s`));
  if (targets.rpo.met === false) findings.push(finding('RPO_EXCEEDED', `backup is ${Math.round(age! / 3600)}h old, RPO is ${Math.round(plan.targets.rpoSeconds / 3600)}h`));
  const verdict = decideVerdict({ findings, checks, cancelled: o.stopped === 'cancelled', restored: o.restored && o.verifyEnd !== null });
  return { verdict, phases: completePhases(o.phases, at), findings, checks, ...targets };
}
