import type { Transaction } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import { parseEnvelope, type LedgerRecord } from '../evidence/ledger-format.js';
import { Invalid } from '../errors.js';
import type { Clock } from '../clock.js';

/** The service provider's own chain: events that belong to no tenant (provider logins, unknown-user login failures). */
export const PROVIDER_TENANT_ID = '00000000-0000-4000-8000-000000000000';

/** What happened; the catalogue is documented in docs/evidence.md "Audit trail". */
export type AuditAction =
  | 'login.succeeded' | 'login.failed' | 'login.locked' | 'logout' | 'logout.everywhere'
  | 'mfa.enrolled' | 'mfa.reset' | 'mfa.recovery-code-used' | 'password.changed' | 'invite.accepted'
  | 'plan.changed' | 'system.changed' | 'plan.baseline.accepted' | 'run.triggered' | 'run.cancelled' | 'run.attachment-added' | 'schedule.paused' | 'schedule.resumed'
  | 'export.protocol' | 'export.audit-report' | 'export.evidence-bundle' | 'export.programme'
  | 'token.created' | 'token.revoked' | 'calendar-feed.created' | 'calendar-feed.revoked' | 'ingest-token.created' | 'ingest-token.revoked'
  | 'user.created' | 'user.changed' | 'user.disabled' | 'user.enabled'
  | 'tenant.created' | 'tenant.changed' | 'grant.created' | 'grant.revoked' | 'provider.entered-tenant' | 'provider.left-tenant'
  | 'alert.acknowledged' | 'alert.snoozed'
  | 'queue.job-retried' | 'queue.job-removed'
  | 'process.changed' | 'restart-test.started' | 'restart-test.cancelled';

export interface AuditActor {
  /** e-mail of a user, name of a token without user, 'bootstrap-token', or 'anonymous' (failed logins) */
  name: string;
  kind: 'session' | 'token' | 'bootstrap' | 'anonymous' | 'system' | 'ingest';
  userId?: string;
  /** a provider admin acting in a tenant by grant */
  viaProviderGrant?: boolean;
}

export interface AuditEvent {
  /** The tenant whose chain gets the record; null = the provider's chain. */
  tenantId: string | null;
  action: AuditAction;
  actor: AuditActor;
  /** What it was about, e.g. {type: 'plan', id: 'ewo-db'}. */
  subject?: { type: string; id: string };
  /** Small, secret-free facts (never passwords, tokens, codes or canary values). */
  details?: Record<string, unknown>;
  ip?: string;
  at?: Date;
}

/** One audit record as GET /api/v1/audit shows it. */
export interface AuditEntry {
  seq: number;
  at: string;
  action: string;
  actor: { name: string; kind?: string; userId?: string; viaProviderGrant?: boolean } | null;
  subject: { type: string; id: string } | null;
  details: Record<string, unknown>;
  ip: string | null;
  recordHash: string;
}

export interface AuditQuery {
  action?: string;
  /** YYYY-MM-DD (start of that day, UTC) or an ISO 8601 date-time */
  from?: string;
  /** YYYY-MM-DD (inclusive: up to the end of that day, UTC) or an ISO 8601 date-time (exclusive) */
  to?: string;
  limit?: number;
  /** `nextCursor` of the previous page */
  cursor?: string;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** Keys of the payload that are shown in their own fields, not under details. */
const SHOWN = new Set(['action', 'actor', 'subject', 'details', 'ip', 'at', 'by']);

/**
 * Reads a record of kind `audit`. Records written by AuditService carry
 * actor/subject/details; the older alert records ({action, alertId, by, …})
 * are mapped onto the same shape.
 */
export function toAuditEntry(rec: LedgerRecord): AuditEntry {
  const env = parseEnvelope(rec);
  const p = env.payload as Record<string, unknown>;
  const actor = (p.actor as AuditEntry['actor'] | undefined) ?? (typeof p.by === 'string' ? { name: p.by } : null);
  const subject = (p.subject as AuditEntry['subject'] | undefined) ?? (typeof p.alertId === 'string' ? { type: 'alert', id: p.alertId } : null);
  const details = (p.details as Record<string, unknown> | undefined)
    ?? Object.fromEntries(Object.entries(p).filter(([k]) => !SHOWN.has(k) && !(subject?.type === 'alert' && k === 'alertId')));
  return {
    seq: rec.seq, at: typeof p.at === 'string' ? p.at : env.createdAt, action: String(p.action ?? ''), actor, subject, details,
    ip: typeof p.ip === 'string' ? p.ip : null, recordHash: rec.hash,
  };
}

/**
 * The audit trail (issue #5: "who did what … itself in the ledger"): every
 * event is a signed record of kind `audit` in the tenant's evidence chain, so
 * it is as tamper-evident as the restore evidence and exported and verified
 * with it. Pass the transaction of the change itself where there is one: then
 * the change and its record commit together.
 */
export class AuditService {
  constructor(private readonly ledger: LedgerService, private readonly clock: Clock) {}

  /**
   * Appends the record. Inside a transaction, call `anchor(record)` after it
   * committed (writes the signed checkpoint outside the database).
   */
  async record(e: AuditEvent, trx?: Transaction<DB>): Promise<LedgerRecord> {
    const at = e.at ?? this.clock();
    const entry = {
      tenantId: e.tenantId ?? PROVIDER_TENANT_ID,
      kind: 'audit' as const,
      subjectId: e.subject ? `${e.subject.type}:${e.subject.id}` : e.action,
      payload: {
        action: e.action,
        actor: e.actor,
        ...(e.subject && { subject: e.subject }),
        ...(e.details && { details: e.details }),
        ...(e.ip && { ip: e.ip }),
        at: at.toISOString(),
      },
      now: at,
    };
    return trx ? this.ledger.append(trx, entry) : this.ledger.appendNow(entry);
  }

  anchor(rec: LedgerRecord): void {
    this.ledger.checkpoint(rec);
  }

  /** The tenant's audit records, newest first, a page at a time (cursor = the last seq shown). */
  async list(tenantId: string, q: AuditQuery): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
    const problems: { path: string; message: string }[] = [];
    const time = (v: string | undefined, path: 'from' | 'to') => {
      if (v === undefined) return undefined;
      const d = DAY.test(v) ? new Date(`${v}T00:00:00Z`) : new Date(v);
      if (Number.isNaN(d.getTime())) {
        problems.push({ path, message: 'a date YYYY-MM-DD or an ISO 8601 date-time' });
        return undefined;
      }
      return path === 'to' && DAY.test(v) ? new Date(d.getTime() + 86_400_000) : d;
    };
    const from = time(q.from, 'from');
    const to = time(q.to, 'to');
    const beforeSeq = q.cursor === undefined ? undefined : /^[1-9]\d{0,15}$/.test(q.cursor) ? Number(q.cursor) : NaN;
    if (Number.isNaN(beforeSeq)) problems.push({ path: 'cursor', message: 'not a cursor returned by this API' });
    if (problems.length) throw new Invalid('invalid query', problems);
    const limit = q.limit ?? 50;
    const rows = await this.ledger.repo.auditPage(tenantId, { action: q.action, from, to, beforeSeq, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { items: page.map(toAuditEntry), nextCursor: rows.length > limit ? String(page.at(-1)!.seq) : null };
  }
}
