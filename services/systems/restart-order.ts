import type { Verdict } from '../../db/schema.js';
import { finding, type Finding } from '../findings.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { isSandboxPlan } from '../plans/plan.types.js';

/**
 * A restart test's pure rules (docs/decisions/024-restart-tests.md): which
 * systems of a process take part, in which tiers, how a tier ends, and how the
 * test's time and verdict follow from its runs. No database, no clock.
 */

/** One system's restore run in a tier. */
export interface TierRun {
  systemId: string;
  systemName: string;
  planId: string;
  /** null until the run is started. */
  runId: string | null;
  status: 'waiting' | 'queued' | 'running' | 'finished';
  verdict: Verdict | null;
  /** From the run's start (fetch) until its last service answered healthy; null when they never did. */
  serviceRtoSeconds: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The run's evidence record (its hash in the ledger), once finished. */
  recordHash: string | null;
}

export type TierState = 'waiting' | 'running' | 'passed' | 'failed' | 'error' | 'cancelled' | 'not started';

export interface Tier {
  tier: number;
  state: TierState;
  /** The tier's restart time: its slowest run's service RTO (runs of one tier restart side by side). */
  seconds: number | null;
  runs: TierRun[];
}

/** A system of the process that no restart test can restart: why. */
export interface NotTested {
  systemId: string;
  systemName: string;
  tier: number;
  reason: string;
}

export interface ProcessSystem {
  id: string;
  name: string;
  tier: number;
}
export interface ProcessPlan {
  id: string;
  definition: RestorePlan;
}

/** A plan that restores a backup in a sandbox and starts its application (`services`): what a restart test runs. */
export function restartable(plan: RestorePlan): boolean {
  return isSandboxPlan(plan) && Boolean(plan.services?.length);
}

/**
 * The process's systems in tier order, each with its restartable plans; the
 * systems without one are listed, never left out silently.
 */
export function planTiers(systems: ProcessSystem[], plans: ProcessPlan[]): { tiers: Tier[]; notTested: NotTested[] } {
  const byTier = new Map<number, TierRun[]>();
  const notTested: NotTested[] = [];
  for (const sys of [...systems].sort((a, b) => a.tier - b.tier || a.name.localeCompare(b.name))) {
    const mine = plans.filter((p) => p.definition.system?.id === sys.id);
    const usable = mine.filter((p) => restartable(p.definition));
    if (!usable.length) {
      notTested.push({
        systemId: sys.id, systemName: sys.name, tier: sys.tier,
        reason: mine.length
          ? `none of its plans (${mine.map((p) => p.id).join(', ')}) restores a backup with services: nothing to restart automatically`
          : 'no plan names this system',
      });
      continue;
    }
    for (const p of usable) {
      byTier.set(sys.tier, [...(byTier.get(sys.tier) ?? []), {
        systemId: sys.id, systemName: sys.name, planId: p.id, runId: null, status: 'waiting', verdict: null,
        serviceRtoSeconds: null, startedAt: null, finishedAt: null, recordHash: null,
      }]);
    }
  }
  const tiers = [...byTier.entries()].sort(([a], [b]) => a - b).map(([tier, runs]): Tier => ({ tier, state: 'waiting', seconds: null, runs }));
  return { tiers, notTested };
}

/** How a tier stands from its runs: running until every run ended; then the worst of them (error before failed, as in a run's verdict). */
export function tierState(runs: TierRun[]): TierState {
  if (runs.some((r) => r.status !== 'finished')) return runs.every((r) => r.status === 'waiting') ? 'waiting' : 'running';
  const v = runs.map((r) => r.verdict);
  if (v.includes('cancelled')) return 'cancelled';
  if (v.includes('error')) return 'error';
  if (v.includes('failed')) return 'failed';
  return 'passed';
}

/** The slowest run's service RTO; null if any run has none (it never became healthy). */
export function tierSeconds(runs: TierRun[]): number | null {
  const s = runs.map((r) => r.serviceRtoSeconds);
  return s.some((x) => x === null) ? null : Math.max(...(s as number[]));
}

export interface Conclusion {
  verdict: Verdict;
  findings: Finding[];
  result: {
    /** Sum of the tiers' times: the time until the process works again when each tier starts as the one before is up. */
    measuredSeconds: number | null;
    rto: { targetSeconds: number | null; measuredSeconds: number | null; met: boolean | null };
    tiers: { tier: number; state: TierState; seconds: number | null }[];
  };
}

const names = (runs: TierRun[]) => [...new Set(runs.map((r) => r.systemName))].join(', ');

/**
 * The verdict of a restart test whose tiers have ended (or stopped): a tier
 * whose system did not come back fails the test (`TIER_FAILED`); a tier that
 * could not be verified makes it `error` (`TIER_NOT_VERIFIED`); the sum of the
 * tiers' times over the process's RTO fails it (`RTO_EXCEEDED`). Systems
 * without a restartable plan are named (`SYSTEMS_NOT_TESTED`, a warning): the
 * time then covers only the systems that were restarted.
 */
export function conclude(tiers: Tier[], notTested: NotTested[], rtoSeconds: number | null, cancelled: boolean): Conclusion {
  const findings: Finding[] = [];
  for (const t of tiers) {
    if (t.state === 'failed') {
      const bad = t.runs.filter((r) => r.verdict === 'failed');
      findings.push(finding('TIER_FAILED', `tier ${t.tier}: ${names(bad)} did not come back (run${bad.length > 1 ? 's' : ''} ${bad.map((r) => r.runId).join(', ')} failed); the tiers after it were not started`));
    } else if (t.state === 'error' || (t.state === 'cancelled' && !cancelled)) {
      const bad = t.runs.filter((r) => r.verdict === 'error' || r.verdict === 'cancelled');
      findings.push(finding('TIER_NOT_VERIFIED', `tier ${t.tier}: the restore of ${names(bad)} could not be verified (run ${bad.map((r) => `${r.runId} ${r.verdict}`).join(', ')}); the tiers after it were not started`));
    }
  }
  if (notTested.length) {
    findings.push(finding('SYSTEMS_NOT_TESTED', `not restarted automatically, not in the measured time: ${notTested.map((n) => `${n.systemName} (tier ${n.tier}: ${n.reason})`).join('; ')}`));
  }
  const complete = tiers.every((t) => t.state === 'passed');
  const measuredSeconds = complete ? Math.round(tiers.reduce((sum, t) => sum + (t.seconds ?? 0), 0) * 10) / 10 : null;
  const met = measuredSeconds === null || rtoSeconds === null ? null : measuredSeconds <= rtoSeconds;
  if (met === false) {
    findings.push(finding('RTO_EXCEEDED', `the process worked again after ${measuredSeconds} s (${tiers.map((t) => `tier ${t.tier}: ${t.seconds} s`).join(', ')}), over its RTO of ${rtoSeconds} s`));
  }
  let verdict: Verdict;
  if (cancelled) verdict = 'cancelled';
  else if (findings.some((f) => f.severity === 'error')) verdict = 'error';
  else if (findings.some((f) => f.severity === 'failure')) verdict = 'failed';
  else if (!complete) verdict = 'error';
  else verdict = 'passed';
  return {
    verdict, findings,
    result: { measuredSeconds, rto: { targetSeconds: rtoSeconds, measuredSeconds, met }, tiers: tiers.map((t) => ({ tier: t.tier, state: t.state, seconds: t.seconds })) },
  };
}
