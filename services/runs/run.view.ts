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
    /** The worker pool it waits or ran in; absent for the default pool. */
    ...(r.pool && r.pool !== 'default' && { pool: r.pool }),
  };
}

export type RunJson = ReturnType<typeof toRunJson>;

/** Where the next page starts: the last run's queued_at with the database's microseconds (when the query selected them) and its id. */
export function encodeCursor(r: Pick<RunRow, 'queued_at' | 'id'> & { queued_at_us?: string }): string {
  return Buffer.from(`${r.queued_at_us ?? r.queued_at.toISOString()}|${r.id}`).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** UTC, up to microseconds (cursors of earlier versions carry milliseconds and stay valid). */
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/;

export function decodeCursor(c: string): { queuedAt: string; id: string } | undefined {
  const [ts, id, ...rest] = Buffer.from(c, 'base64url').toString('utf8').split('|');
  if (!ts || !id || rest.length || !UTC_TIME.test(ts) || !UUID.test(id)) return undefined;
  // the text goes to PostgreSQL as it is: a date JavaScript cannot read is no cursor
  const at = new Date(ts.replace(/(\.\d{3})\d*Z$/, '$1Z'));
  const year = at.getUTCFullYear();
  if (Number.isNaN(at.getTime()) || year < 2000 || year > 9999 || at.toISOString().slice(0, 19) !== ts.slice(0, 19)) return undefined;
  return { queuedAt: ts, id };
}
