import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { AlertRow, NotificationRow } from '../../db/repositories/notification.repository.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { buildMessage } from './messages.js';
import { parseRecipient, type Lang } from './types.js';
import type { Clock } from '../clock.js';

const MAX_SNOOZE_MS = 30 * 86_400_000;

export function toAlertJson(a: AlertRow) {
  return {
    id: a.id,
    planId: a.plan_id,
    kind: a.kind,
    since: a.since.toISOString(),
    openedAt: a.opened_at.toISOString(),
    runId: a.run_id,
    escalationLevel: a.escalation_level,
    acknowledged: a.acknowledged_at ? { at: a.acknowledged_at.toISOString(), by: a.acknowledged_by!, reason: a.acknowledged_reason ?? '' } : null,
    snoozed: a.snoozed_until ? { until: a.snoozed_until.toISOString(), by: a.snoozed_by ?? '', reason: a.snoozed_reason ?? '' } : null,
    resolved: a.resolved_at ? { at: a.resolved_at.toISOString(), runId: a.resolved_by_run } : null,
  };
}

export function toNotificationJson(n: NotificationRow) {
  return {
    id: n.id,
    event: n.event,
    recipient: n.recipient,
    planId: n.plan_id,
    alertId: n.alert_id,
    runId: n.run_id,
    status: n.status,
    attempts: n.attempts,
    lastError: n.last_error,
    createdAt: n.created_at.toISOString(),
    nextAttemptAt: n.status === 'pending' || n.status === 'sending' ? n.next_attempt_at.toISOString() : null,
    sentAt: n.sent_at ? n.sent_at.toISOString() : null,
  };
}

/**
 * People acting on alerts: acknowledge (stops the escalation), snooze (holds
 * it until a time), both with a reason, both recorded in the evidence ledger
 * (kind `audit`) because "who knew when, and what did they decide" is what an
 * auditor asks after an incident.
 */
export class AlertService {
  private readonly repo: Repositories['notifications'];
  private readonly tenants: Repositories['tenants'];

  constructor(
    private readonly db: Kysely<DB>,
    repos: Pick<Repositories, 'notifications' | 'tenants'>,
    private readonly ledger: LedgerService,
    private readonly cfg: { lang: Lang; timezone: string; publicUrl?: string },
    private readonly clock: Clock,
  ) {
    this.repo = repos.notifications;
    this.tenants = repos.tenants;
  }

  async get(tenantId: string, id: string) {
    const a = await this.repo.getAlert(tenantId, id);
    if (!a) throw new NotFound(`alert ${id}`);
    const notifications = await this.repo.list(tenantId, { alertId: id, limit: 500 });
    return { ...toAlertJson(a), notifications: notifications.map(toNotificationJson) };
  }

  async acknowledge(tenantId: string, id: string, by: string, reason: string) {
    const now = this.clock();
    const out = await this.db.transaction().execute(async (trx) => {
      const a = await this.repo.acknowledge(tenantId, id, { at: now, by, reason }, trx);
      if (!a) {
        const current = await this.repo.getAlert(tenantId, id, trx);
        if (!current) throw new NotFound(`alert ${id}`);
        if (current.resolved_at) throw new Conflict('the alert is resolved already', { alert: toAlertJson(current) });
        throw new Conflict(`the alert was acknowledged already by ${current.acknowledged_by}`, { alert: toAlertJson(current) });
      }
      const record = await this.ledger.append(trx, {
        tenantId, kind: 'audit', subjectId: a.id,
        payload: { action: 'alert.acknowledged', alertId: a.id, planId: a.plan_id, alertKind: a.kind, level: a.escalation_level, by, reason, at: now.toISOString() },
        now,
      });
      return { a, record };
    });
    this.ledger.checkpoint(out.record);
    return toAlertJson(out.a);
  }

  async snooze(tenantId: string, id: string, by: string, reason: string, s: { until?: string; for?: string }) {
    const now = this.clock();
    if ((s.until === undefined) === (s.for === undefined)) throw new Invalid('give exactly one of "until" (a date-time) or "for" (a duration like P1D)');
    let until: Date;
    if (s.for !== undefined) {
      try {
        until = new Date(now.getTime() + parseDuration(s.for).seconds * 1000);
      } catch (err) {
        throw new Invalid(`"for": ${(err as Error).message}`, [{ path: 'for', message: (err as Error).message }]);
      }
    } else {
      until = new Date(s.until!);
      if (Number.isNaN(until.getTime())) throw new Invalid('"until" is not a date-time', [{ path: 'until', message: 'not a date-time' }]);
    }
    if (until <= now) throw new Invalid('a snooze must end in the future', [{ path: s.for !== undefined ? 'for' : 'until', message: 'must be in the future' }]);
    if (until.getTime() - now.getTime() > MAX_SNOOZE_MS) throw new Invalid('a snooze is at most 30 days; acknowledge the alert if nobody should be reminded', [{ path: s.for !== undefined ? 'for' : 'until', message: 'at most 30 days' }]);
    const out = await this.db.transaction().execute(async (trx) => {
      const a = await this.repo.snooze(tenantId, id, { until, by, reason }, trx);
      if (!a) {
        const current = await this.repo.getAlert(tenantId, id, trx);
        if (!current) throw new NotFound(`alert ${id}`);
        throw new Conflict('the alert is resolved already', { alert: toAlertJson(current) });
      }
      const record = await this.ledger.append(trx, {
        tenantId, kind: 'audit', subjectId: a.id,
        payload: { action: 'alert.snoozed', alertId: a.id, planId: a.plan_id, alertKind: a.kind, until: until.toISOString(), by, reason, at: now.toISOString() },
        now,
      });
      return { a, record };
    });
    this.ledger.checkpoint(out.record);
    return toAlertJson(out.a);
  }

  async list(tenantId: string, f: { open?: boolean; planId?: string; limit: number }) {
    return (await this.repo.listAlerts(tenantId, f)).map(toAlertJson);
  }

  async notifications(tenantId: string, f: { status?: string; planId?: string; limit: number; before?: string }) {
    const rows = await this.repo.list(tenantId, { ...f, before: f.before ? new Date(f.before) : undefined });
    return rows.map(toNotificationJson);
  }

  async retry(tenantId: string, id: string) {
    const n = await this.repo.retry(tenantId, id);
    if (n) return toNotificationJson(n);
    const current = await this.repo.get(tenantId, id);
    if (!current) throw new NotFound(`notification ${id}`);
    throw new Conflict(`only a failed notification can be retried; this one is ${current.status}`);
  }

  /** A test message through a channel, to check SMTP or a webhook while setting up. */
  async sendTest(tenantId: string, recipientText: string, by: string, lang?: Lang) {
    const r = parseRecipient(recipientText);
    if (typeof r === 'string') throw new Invalid(r, [{ path: 'recipient', message: r }]);
    const tenant = await this.tenants.names(tenantId);
    const now = this.clock();
    const [row] = await this.repo.enqueue({
      tenantId, event: 'test', key: `test:${randomUUID()}`, recipients: [r.raw],
      message: { ...buildMessage({ tenant, publicUrl: this.cfg.publicUrl, timezone: this.cfg.timezone, lang: lang ?? this.cfg.lang }, 'test', now), requestedBy: by },
    });
    return toNotificationJson(row!);
  }
}
