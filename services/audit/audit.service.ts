import type { Transaction } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';

/** The service provider's own chain: events that belong to no tenant (provider logins, unknown-user login failures). */
export const PROVIDER_TENANT_ID = '00000000-0000-4000-8000-000000000000';

/** What happened; the catalogue is documented in README "Audit trail". */
export type AuditAction =
  | 'login.succeeded' | 'login.failed' | 'login.locked' | 'logout' | 'logout.everywhere'
  | 'mfa.enrolled' | 'mfa.reset' | 'mfa.recovery-code-used' | 'password.changed' | 'invite.accepted'
  | 'plan.changed' | 'run.triggered' | 'run.cancelled' | 'schedule.paused' | 'schedule.resumed'
  | 'export.protocol' | 'export.audit-report' | 'export.evidence-bundle'
  | 'token.created' | 'token.revoked' | 'calendar-feed.created' | 'calendar-feed.revoked'
  | 'user.created' | 'user.changed' | 'user.disabled' | 'user.enabled'
  | 'tenant.created' | 'tenant.changed' | 'grant.created' | 'grant.revoked' | 'provider.entered-tenant' | 'provider.left-tenant'
  | 'alert.acknowledged' | 'alert.snoozed';

export interface AuditActor {
  /** e-mail of a user, name of a token without user, 'bootstrap-token', or 'anonymous' (failed logins) */
  name: string;
  kind: 'session' | 'token' | 'bootstrap' | 'anonymous' | 'system';
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

/**
 * The audit trail (issue #5: "who did what … itself in the ledger"): every
 * event is a signed record of kind `audit` in the tenant's evidence chain, so
 * it is as tamper-evident as the restore evidence and exported and verified
 * with it. Pass the transaction of the change itself where there is one: then
 * the change and its record commit together.
 */
export class AuditService {
  constructor(private readonly ledger: LedgerService) {}

  /**
   * Appends the record. Inside a transaction, call `anchor(record)` after it
   * committed (writes the signed checkpoint outside the database).
   */
  async record(e: AuditEvent, trx?: Transaction<DB>): Promise<LedgerRecord> {
    const at = e.at ?? new Date();
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
}
