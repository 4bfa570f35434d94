import { randomUUID } from 'node:crypto';
import { DEFAULT_TENANT_ID, type Verdict } from '../../db/schema.js';
import type { Container } from '../../services/container.js';

export interface SeedRun {
  planId: string;
  verdict: Verdict;
  finishedAt: Date;
  rtoSeconds?: number | null;
  rtoTarget?: number;
  backupAgeSeconds?: number | null;
  rpoTarget?: number;
  triggeredBy?: string;
  tenantId?: string;
}

/**
 * A finished run with a given outcome and time, ended through the real
 * RunFinisher (so its ledger record is appended exactly as in production);
 * only the restore itself is skipped.
 */
export async function seedRun(h: { c: Container }, s: SeedRun): Promise<string> {
  const tenantId = s.tenantId ?? DEFAULT_TENANT_ID;
  const plan = await h.c.db.selectFrom('plans').select('version_hash').where('tenant_id', '=', tenantId).where('id', '=', s.planId).executeTakeFirstOrThrow();
  const id = randomUUID();
  const dur = (s.rtoSeconds ?? 60) * 1000;
  const started = new Date(s.finishedAt.getTime() - dur);
  await h.c.db.insertInto('runs').values({
    id, tenant_id: tenantId, plan_id: s.planId, plan_version_hash: plan.version_hash, status: 'running', trigger: 'api',
    triggered_by: s.triggeredBy ?? 'seed', queued_at: new Date(started.getTime() - 1000), started_at: started, worker_id: 'seed',
  }).execute();
  const rtoTarget = s.rtoTarget ?? 3600;
  const rpoTarget = s.rpoTarget ?? 93_600;
  const measured = s.verdict === 'passed' || s.verdict === 'failed' ? (s.rtoSeconds ?? 60) : null;
  const age = s.verdict === 'cancelled' ? null : (s.backupAgeSeconds ?? 3600);
  await h.c.finisher.finishClaimed(id, 'seed', {
    verdict: s.verdict,
    finishedAt: s.finishedAt,
    phases: [{ name: 'restore', startedAt: started.toISOString(), durationMs: dur, status: 'ok' }],
    checks: [],
    findings: s.verdict === 'failed' ? [{ code: 'CHECK_FAILED', severity: 'failure', message: 'seeded' }] : [],
    rto: { targetSeconds: rtoTarget, measuredSeconds: measured, met: measured === null ? null : measured <= rtoTarget },
    rpo: { targetSeconds: rpoTarget, backupAgeSeconds: age, met: age === null ? null : age <= rpoTarget },
    backup: { path: '/seed.dump', sizeBytes: 1, sha256: id.replace(/-/g, '').padEnd(64, '0'), createdAt: started.toISOString() },
  });
  return id;
}
