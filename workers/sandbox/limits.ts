import type { PlanSandbox } from '../../services/plans/plan.types.js';
import type { SandboxMax } from '../../services/sandbox-policy.js';

export interface EffectiveLimits {
  memoryBytes: number;
  cpus: number;
  pids: number;
  timeoutSeconds: number;
  /** The data area's bound: the plan's `disk`, or the operator's bound when the plan names none. */
  diskBytes: number;
  /** Which of the plan's values the operator's bounds replaced, e.g. "memory 16g -> 8g". */
  capped: string[];
}

/** The plan's sandbox limits, each no higher than the operator's bound. */
export function effectiveLimits(plan: PlanSandbox, max: SandboxMax): EffectiveLimits {
  const capped: string[] = [];
  const cap = (name: string, value: number, bound: number) => {
    if (value <= bound) return value;
    capped.push(`${name} ${value} -> ${bound}`);
    return bound;
  };
  return {
    memoryBytes: cap('memoryBytes', plan.memoryBytes, max.memoryBytes),
    cpus: cap('cpus', plan.cpus, max.cpus),
    pids: cap('pids', plan.pids, max.pids),
    timeoutSeconds: cap('timeoutSeconds', plan.timeoutSeconds, max.timeoutSeconds),
    diskBytes: plan.diskBytes === undefined ? max.diskBytes : cap('diskBytes', plan.diskBytes, max.diskBytes),
    capped,
  };
}
