import type { Finding } from '../findings.js';
import type { Verdict } from '../../db/schema.js';

export interface CheckLike {
  status: 'passed' | 'failed' | 'error' | 'skipped';
}

/**
 * A test that could not run never passes: any `error` finding makes the
 * verdict `error`; a finding of severity `failure` or a check that did not
 * pass makes it `failed`; a skipped check without a reason that explains it
 * is treated as not verified (`error`).
 */
export function decideVerdict(input: { findings: Finding[]; checks: CheckLike[]; cancelled?: boolean; restored: boolean }): Verdict {
  if (input.cancelled) return 'cancelled';
  if (input.findings.some((f) => f.severity === 'error')) return 'error';
  if (input.findings.some((f) => f.severity === 'failure')) return 'failed';
  if (input.checks.some((c) => c.status === 'failed' || c.status === 'error')) return 'failed';
  if (!input.restored || input.checks.some((c) => c.status === 'skipped')) return 'error';
  return 'passed';
}

export interface RtoRpo {
  rto: { targetSeconds: number; measuredSeconds: number | null; met: boolean | null };
  rpo: { targetSeconds: number; backupAgeSeconds: number | null; met: boolean | null };
}

export function measureTargets(t: { rtoSeconds: number; rpoSeconds: number }, measuredSeconds: number | null, backupAgeSeconds: number | null): RtoRpo {
  return {
    rto: { targetSeconds: t.rtoSeconds, measuredSeconds, met: measuredSeconds === null ? null : measuredSeconds <= t.rtoSeconds },
    rpo: { targetSeconds: t.rpoSeconds, backupAgeSeconds, met: backupAgeSeconds === null ? null : backupAgeSeconds <= t.rpoSeconds },
  };
}
