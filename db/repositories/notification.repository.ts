import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { AlertsTable, DB, NotificationsTable } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;
export type AlertRow = Selectable<AlertsTable>;
export type NotificationRow = Selectable<NotificationsTable>;

export interface NewNotification {
  tenantId: string;
  planId?: string | null;
  alertId?: string | null;
  runId?: string | null;
  event: string;
  /** Identifies the state change; the recipient is appended, so it is one notification per change and recipient. */
  key: string;
  recipients: string[];
  message: unknown;
}

/** The outbox and the alerts. Notifications are never deleted: what was sent, to whom, and what failed stays visible. */
export class NotificationRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Inserts one row per recipient; a key already there is left alone (restarts and second schedulers resend nothing). Returns the rows inserted. */
  async enqueue(n: NewNotification, trx: Db = this.db): Promise<NotificationRow[]> {
    if (n.recipients.length === 0) return [];
    return trx.insertInto('notifications')
      .values(n.recipients.map((r) => ({
        tenant_id: n.tenantId, plan_id: n.planId ?? null, alert_id: n.alertId ?? null, run_id: n.runId ?? null,
        event: n.event, dedupe_key: `${n.key}|${r}`, recipient: r, message: JSON.stringify(n.message),
      })))
      .onConflict((oc) => oc.columns(['tenant_id', 'dedupe_key']).doNothing())
      .returningAll()
      .execute();
  }

  /** enqueue() for many changes in one statement (per 1,000 rows): a key already there is left alone. Returns the number inserted. */
  async enqueueMany(list: NewNotification[], trx: Db = this.db): Promise<number> {
    const rows = list.flatMap((n) => n.recipients.map((r) => ({
      tenant_id: n.tenantId, plan_id: n.planId ?? null, alert_id: n.alertId ?? null, run_id: n.runId ?? null,
      event: n.event, dedupe_key: `${n.key}|${r}`, recipient: r, message: JSON.stringify(n.message),
    })));
    let inserted = 0;
    for (let i = 0; i < rows.length; i += 1000) {
      const res = await trx.insertInto('notifications').values(rows.slice(i, i + 1000))
        .onConflict((oc) => oc.columns(['tenant_id', 'dedupe_key']).doNothing()).executeTakeFirst();
      inserted += Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return inserted;
  }

  /** Which of these full keys (`key|recipient`) exist already: one query instead of an insert attempt per plan and tick. */
  async existing(tenantId: string, keys: string[], trx: Db = this.db): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows = await trx.selectFrom('notifications').select('dedupe_key')
      .where('tenant_id', '=', tenantId).where('dedupe_key', '=', sql<string>`any(${keys}::text[])`).execute();
    return new Set(rows.map((r) => r.dedupe_key));
  }

  /** The keys with this prefix in every tenant at once, by tenant (the daily digest of 2,000 tenants in one query; index notifications_key_prefix). */
  async existingKeysAllTenants(prefix: string, trx: Db = this.db): Promise<Map<string, Set<string>>> {
    const rows = await trx.selectFrom('notifications').select(['tenant_id', 'dedupe_key'])
      .where('dedupe_key', 'like', `${prefix.replace(/[\\%_]/g, '\\$&')}%`).execute();
    const out = new Map<string, Set<string>>();
    for (const r of rows) {
      const set = out.get(r.tenant_id) ?? new Set<string>();
      if (!set.size) out.set(r.tenant_id, set);
      set.add(r.dedupe_key);
    }
    return out;
  }

  /** Which keys with this prefix exist already (for work that is expensive to build, like the digest). */
  async existingKeys(tenantId: string, prefix: string, trx: Db = this.db): Promise<Set<string>> {
    const rows = await trx.selectFrom('notifications').select('dedupe_key')
      .where('tenant_id', '=', tenantId).where('dedupe_key', 'like', `${prefix.replace(/[\\%_]/g, '\\$&')}%`).execute();
    return new Set(rows.map((r) => r.dedupe_key));
  }

  /**
   * Takes up to `limit` notifications that are due, for `leaseMs`: the lease
   * (locked_until) keeps other dispatchers off while this one sends; if this
   * process dies mid-send, the lease runs out and another one retries.
   */
  async claimDue(limit: number, leaseMs: number, trx: Db = this.db): Promise<(NotificationRow & { age_ms: number })[]> {
    // the outbox is a delivery queue between processes: its times (created, due, leased, sent) are the database's,
    // and so is the age the dispatcher's give-up compares (both sides one clock, whatever the hosts' clocks say)
    const res = await sql<NotificationRow & { age_ms: number }>`
      update notifications n set status = 'sending', attempts = n.attempts + 1,
        locked_until = now() + ${leaseMs} * interval '1 millisecond'
      where n.id in (
        select id from notifications
        where status in ('pending', 'sending') and next_attempt_at <= now() and (locked_until is null or locked_until < now())
        order by next_attempt_at, created_at
        limit ${limit}
        for update skip locked)
      returning n.*, (extract(epoch from now() - n.created_at) * 1000)::float8 as age_ms`.execute(trx);
    return res.rows;
  }

  async markSent(id: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('notifications').set({ status: 'sent', sent_at: sql`now()`, locked_until: null, last_error: null })
      .where('id', '=', id).execute();
  }

  /** Retry later, or give up (`failed`) when the error is permanent or the retry window is over. */
  async markFailed(id: string, error: string, retryInMs: number | null, trx: Db = this.db): Promise<void> {
    await trx.updateTable('notifications')
      .set(retryInMs === null
        ? { status: 'failed', locked_until: null, last_error: error }
        : { status: 'pending', locked_until: null, last_error: error, next_attempt_at: sql`now() + ${retryInMs} * interval '1 millisecond'` })
      .where('id', '=', id).execute();
  }

  /** A failed notification back into the queue (by hand). */
  retry(tenantId: string, id: string, trx: Db = this.db): Promise<NotificationRow | undefined> {
    return trx.updateTable('notifications')
      .set({ status: 'pending', next_attempt_at: sql`now()`, locked_until: null })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('status', '=', 'failed')
      .returningAll().executeTakeFirst();
  }

  get(tenantId: string, id: string, trx: Db = this.db): Promise<NotificationRow | undefined> {
    return trx.selectFrom('notifications').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  list(tenantId: string, f: { status?: string; planId?: string; alertId?: string; limit: number; before?: Date }, trx: Db = this.db): Promise<NotificationRow[]> {
    let q = trx.selectFrom('notifications').selectAll().where('tenant_id', '=', tenantId);
    if (f.status) q = q.where('status', '=', f.status as NotificationRow['status']);
    if (f.planId) q = q.where('plan_id', '=', f.planId);
    if (f.alertId) q = q.where('alert_id', '=', f.alertId);
    if (f.before) q = q.where('created_at', '<', f.before);
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
  }

  /** Everyone told about this alert (or its failed run): they get the all-clear. */
  async alertRecipients(alertId: string, trx: Db = this.db): Promise<string[]> {
    const rows = await trx.selectFrom('notifications').select('recipient').distinct()
      .where('alert_id', '=', alertId).where('event', 'in', ['overdue', 'escalation', 'failure']).orderBy('recipient').execute();
    return rows.map((r) => r.recipient);
  }

  /** Failure notifications of a run that opened an alert belong to that alert (so its all-clear reaches them). */
  async linkRunToAlert(tenantId: string, runId: string, alertId: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('notifications').set({ alert_id: alertId })
      .where('tenant_id', '=', tenantId).where('run_id', '=', runId).where('alert_id', 'is', null).execute();
  }

  /** linkRunToAlert() for many runs in one statement (index notifications_run). */
  async linkRunsToAlerts(links: { tenantId: string; runId: string; alertId: string }[], trx: Db = this.db): Promise<void> {
    if (!links.length) return;
    await sql`update notifications n set alert_id = x.a
      from unnest(${links.map((l) => l.tenantId)}::uuid[], ${links.map((l) => l.runId)}::uuid[], ${links.map((l) => l.alertId)}::uuid[]) as x(t, r, a)
      where n.tenant_id = x.t and n.run_id = x.r and n.alert_id is null`.execute(trx);
  }

  // ---- alerts ----

  openAlerts(trx: Db = this.db): Promise<AlertRow[]> {
    return trx.selectFrom('alerts').selectAll().where('resolved_at', 'is', null).execute();
  }

  /** Opens the plan's alert; undefined when one is open already (unique partial index). */
  async openAlert(a: { tenantId: string; planId: string; kind: AlertRow['kind']; since: Date; openedAt: Date; runId?: string | null }, trx: Db = this.db): Promise<AlertRow | undefined> {
    const res = await sql<AlertRow>`
      insert into alerts (tenant_id, plan_id, kind, since, opened_at, run_id)
      values (${a.tenantId}, ${a.planId}, ${a.kind}, ${a.since}, ${a.openedAt}, ${a.runId ?? null})
      on conflict (tenant_id, plan_id) where resolved_at is null do nothing
      returning *`.execute(trx);
    return res.rows[0];
  }

  async resolve(id: string, at: Date, runId: string | null, trx: Db = this.db): Promise<boolean> {
    const r = await trx.updateTable('alerts').set({ resolved_at: at, resolved_by_run: runId })
      .where('id', '=', id).where('resolved_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Moves the escalation level up (never down: a second scheduler cannot repeat a level). */
  async escalate(id: string, level: number, trx: Db = this.db): Promise<boolean> {
    const r = await trx.updateTable('alerts').set({ escalation_level: level })
      .where('id', '=', id).where('escalation_level', '<', level).where('resolved_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The plan's unresolved alert, if any (a plan has at most one). */
  openAlertOfPlan(tenantId: string, planId: string, trx: Db = this.db): Promise<{ id: string } | undefined> {
    return trx.selectFrom('alerts').select('id').where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('resolved_at', 'is', null).executeTakeFirst();
  }

  getAlert(tenantId: string, id: string, trx: Db = this.db): Promise<AlertRow | undefined> {
    return trx.selectFrom('alerts').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  listAlerts(tenantId: string, f: { open?: boolean; planId?: string; limit: number }, trx: Db = this.db): Promise<AlertRow[]> {
    let q = trx.selectFrom('alerts').selectAll().where('tenant_id', '=', tenantId);
    if (f.open === true) q = q.where('resolved_at', 'is', null);
    if (f.open === false) q = q.where('resolved_at', 'is not', null);
    if (f.planId) q = q.where('plan_id', '=', f.planId);
    return q.orderBy('opened_at', 'desc').orderBy('id').limit(f.limit).execute();
  }

  acknowledge(tenantId: string, id: string, a: { at: Date; by: string; reason: string }, trx: Db = this.db): Promise<AlertRow | undefined> {
    return trx.updateTable('alerts').set({ acknowledged_at: a.at, acknowledged_by: a.by, acknowledged_reason: a.reason })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('acknowledged_at', 'is', null).where('resolved_at', 'is', null)
      .returningAll().executeTakeFirst();
  }

  snooze(tenantId: string, id: string, s: { until: Date; by: string; reason: string }, trx: Db = this.db): Promise<AlertRow | undefined> {
    return trx.updateTable('alerts').set({ snoozed_until: s.until, snoozed_by: s.by, snoozed_reason: s.reason })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('resolved_at', 'is', null)
      .returningAll().executeTakeFirst();
  }
}
