import type { RunRow } from '../../db/schema.js';

/** A run as the API shows it (the shape docs/api.md "A run" promises to integrating tools). */
export function toRunJson(r: RunRow) {
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
    /** ernstfall: restored in a sandbox; external: another tool tested and reported the result */
    origin: r.origin ?? 'ernstfall',
    ...(r.external_id && { externalId: r.external_id }),
  };
}

export type RunJson = ReturnType<typeof toRunJson>;

export function encodeCursor(r: Pick<RunRow, 'queued_at' | 'id'>): string {
  return Buffer.from(`${r.queued_at.toISOString()}|${r.id}`).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function decodeCursor(c: string): { queuedAt: Date; id: string } | undefined {
  const [ts, id] = Buffer.from(c, 'base64url').toString('utf8').split('|');
  const queuedAt = new Date(ts ?? '');
  const year = queuedAt.getUTCFullYear();
  if (!id || Number.isNaN(queuedAt.getTime()) || year < 2000 || year > 9999 || !UUID.test(id)) return undefined;
  return { queuedAt, id };
}
