import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { PlanStatusRepository, type PlanStatusRow } from '../../db/repositories/plan-status.repository.js';
import { NotificationRepository, type AlertRow } from '../../db/repositories/notification.repository.js';
import type { PlanNotify } from '../plans/plan.types.js';
import { addDuration, zonedToUtc } from '../util/calendar.js';
import { buildMessage, messageAlert, messageRun, type MessageContext } from './messages.js';
import type { DigestItem, Lang } from './types.js';
import type { Checkpoint } from '../evidence/ledger-format.js';

const DEFAULT_TZ = 'Europe/Berlin';

const dueSoonKey = (planId: string, dueAt: Date) => `due-soon:${planId}:${dueAt.toISOString()}`;
const dueSoonRecipients = (p: { notify: PlanNotify | null; paused: boolean }) => (p.paused ? [] : (p.notify?.dueSoon ?? p.notify?.overdue ?? []));

export interface ReminderConfig {
  lang: Lang;
  timezone: string;
  digestTime: string;
  publicUrl?: string;
  /** Daily signed chain head per tenant to these recipients (ERNSTFALL_CHECKPOINT_RECIPIENTS). */
  checkpoints?: { recipients: string[]; sign: (tenantId: string) => Promise<Checkpoint | null> };
}

export interface ReminderResult {
  dueSoon: number;
  opened: number;
  escalated: number;
  resolved: number;
  digests: number;
  checkpoints: number;
}

interface PlanInfo {
  tenant_id: string;
  id: string;
  title: string;
  system_name: string | null;
  timezone: string | null;
  grace: string | null;
  notify: PlanNotify | null;
  paused: boolean;
}

/**
 * Turns plan status into reminders, alerts and all-clears (docs/ARCHITECTURE.md
 * "Plan status"; issue #4). Runs on the scheduler leader's tick with the
 * scheduler's clock. Stateless between ticks: every decision is a row in
 * the database (an alert, a notification with a unique key), so a restart,
 * a second scheduler or a repeated tick sends nothing twice and forgets
 * nothing. Paused plans get no due-soon, overdue or escalation messages
 * (the pause and its reason are the documented decision); failure alerts of
 * runs started by hand still go out.
 */
export class ReminderEngine {
  private readonly status: PlanStatusRepository;
  private readonly repo: NotificationRepository;

  constructor(private readonly db: Kysely<DB>, private readonly cfg: ReminderConfig, private readonly log: Logger) {
    this.status = new PlanStatusRepository(db);
    this.repo = new NotificationRepository(db);
  }

  async evaluate(now: Date): Promise<ReminderResult> {
    const result: ReminderResult = { dueSoon: 0, opened: 0, escalated: 0, resolved: 0, digests: 0, checkpoints: 0 };
    const tenants = await this.db.selectFrom('tenants').select(['id', 'slug', 'name']).execute();
    const plans = await this.plans();
    const open = new Map((await this.repo.openAlerts()).map((a) => [`${a.tenant_id}/${a.plan_id}`, a]));
    // the status of every plan of every tenant in one query (a provider's 2,000 tenants are not 2,000 queries)
    const statusesOf = new Map<string, PlanStatusRow[]>();
    for (const st of await this.status.statusAllTenants(now)) {
      const list = statusesOf.get(st.tenantId) ?? [];
      if (!list.length) statusesOf.set(st.tenantId, list);
      list.push(st);
    }
    const plansOf = new Map<string, PlanInfo[]>();
    for (const p of plans) {
      const list = plansOf.get(p.tenant_id) ?? [];
      if (!list.length) plansOf.set(p.tenant_id, list);
      list.push(p);
    }
    // the newest failed run of every failing plan with an open alert, in one query for all tenants (a newer failure joins the alert)
    const latestFailed = await this.latestFailedRuns([...statusesOf.entries()].flatMap(([t, list]) => list
      .filter((st) => st.status === 'failing' && open.has(`${t}/${st.planId}`)).map((st) => ({ tenantId: t, planId: st.planId }))));
    // today's digests already written, for all tenants in one query (once the digest time has passed)
    const today = plans.some((p) => p.notify?.digest?.length) ? this.dailyDate(now) : undefined;
    const digestsDone = today ? await this.repo.existingKeysAllTenants(`digest:${today}|`) : new Map<string, Set<string>>();
    for (const tenant of tenants) {
      const statuses = (statusesOf.get(tenant.id) ?? []).sort((a, b) => (a.planId < b.planId ? -1 : a.planId > b.planId ? 1 : 0));
      const byPlan = new Map((plansOf.get(tenant.id) ?? []).map((p) => [p.id, p]));
      // nothing to remind of in a tenant without plans
      if (!statuses.length && !byPlan.size) continue;
      // due-soon reminders already sent, looked up for all plans at once (most ticks find nothing new)
      const soon = statuses.flatMap((st) => {
        const p = byPlan.get(st.planId);
        return st.status === 'due-soon' && st.nextDueAt && p ? dueSoonRecipients(p).map((r) => `${dueSoonKey(p.id, st.nextDueAt!)}|${r}`) : [];
      });
      const sent = soon.length ? await this.repo.existing(tenant.id, soon) : new Set<string>();
      for (const st of statuses) {
        const plan = byPlan.get(st.planId);
        if (!plan) continue;
        try {
          await this.plan(tenant, plan, st, open.get(`${tenant.id}/${plan.id}`), now, result, sent, latestFailed);
        } catch (err) {
          // one plan's trouble must not silence the others; the next tick tries again (nothing was recorded)
          this.log.error({ tenantId: tenant.id, planId: plan.id, err: (err as Error).message }, 'reminders for the plan failed; trying again next tick');
        }
      }
      try {
        result.digests += await this.digest(tenant, [...byPlan.values()], statuses, now, digestsDone.get(tenant.id) ?? new Set());
      } catch (err) {
        this.log.error({ tenantId: tenant.id, err: (err as Error).message }, 'daily digest failed; trying again next tick');
      }
    }
    if (this.cfg.checkpoints?.recipients.length) {
      for (const tenant of tenants) {
        try {
          result.checkpoints += await this.checkpoint(tenant, now);
        } catch (err) {
          this.log.error({ tenantId: tenant.id, err: (err as Error).message }, 'evidence checkpoint mail failed; trying again next tick');
        }
      }
    }
    if (result.dueSoon + result.opened + result.escalated + result.resolved + result.digests + result.checkpoints > 0) this.log.info(result, 'reminders evaluated');
    return result;
  }

  private plans(): Promise<PlanInfo[]> {
    return this.db.selectFrom('plans as p')
      .leftJoin('plan_schedules as s', (j) => j.onRef('s.tenant_id', '=', 'p.tenant_id').onRef('s.plan_id', '=', 'p.id'))
      .select([
        'p.tenant_id', 'p.id', 'p.title',
        sql<string | null>`p.definition->'system'->>'name'`.as('system_name'),
        sql<string | null>`p.definition->'cadence'->>'timezone'`.as('timezone'),
        sql<string | null>`p.definition->'cadence'->>'grace'`.as('grace'),
        sql<PlanNotify | null>`p.definition->'notify'`.as('notify'),
        sql<boolean>`s.paused_at is not null`.as('paused'),
      ])
      .execute();
  }

  private ctx(tenant: { slug: string; name: string }, plan: PlanInfo): MessageContext {
    return {
      tenant: { slug: tenant.slug, name: tenant.name },
      plan: { id: plan.id, title: plan.title, ...(plan.system_name && { system: { name: plan.system_name } }) },
      publicUrl: this.cfg.publicUrl,
      timezone: this.cfg.timezone,
      lang: plan.notify?.language ?? this.cfg.lang,
    };
  }

  private async plan(tenant: { id: string; slug: string; name: string }, plan: PlanInfo, st: PlanStatusRow, alert: AlertRow | undefined, now: Date, result: ReminderResult, sent: Set<string>, latestFailed: Map<string, string>) {
    const notify = plan.notify;
    const tz = plan.timezone ?? DEFAULT_TZ;
    const ctx = this.ctx(tenant, plan);
    const dueAt = st.nextDueAt?.toISOString() ?? null;
    const problem = st.status === 'overdue' || st.status === 'failing';

    // recovered (or the plan changed so that it is no longer overdue): close the episode, all-clear to everyone told
    if (alert && !problem) {
      const lastPassed = await this.db.selectFrom('runs').select('id')
        .where('tenant_id', '=', tenant.id).where('plan_id', '=', plan.id).where('status', '=', 'finished').where('verdict', '=', 'passed')
        .orderBy(sql`coalesce(finished_at, started_at, queued_at)`, 'desc').limit(1).executeTakeFirst();
      const passedAfter = lastPassed && st.lastPassedAt && st.lastPassedAt >= alert.since;
      await this.db.transaction().execute(async (trx) => {
        if (!(await this.repo.resolve(alert.id, now, passedAfter ? lastPassed.id : null, trx))) return;
        const to = await this.repo.alertRecipients(alert.id, trx);
        await this.repo.enqueue({
          tenantId: tenant.id, planId: plan.id, alertId: alert.id, runId: passedAfter ? lastPassed.id : null, event: 'recovered', key: `recovered:${alert.id}`, recipients: to,
          message: buildMessage(ctx, 'recovered', now, { status: st.status, dueAt, alert: messageAlert(alert), resolution: passedAfter ? 'passed' : 'plan-changed' }),
        }, trx);
        result.resolved++;
      });
      return;
    }

    if (plan.paused) return;

    if (st.status === 'due-soon' && st.nextDueAt) {
      const key = dueSoonKey(plan.id, st.nextDueAt);
      const to = dueSoonRecipients(plan).filter((r) => !sent.has(`${key}|${r}`));
      if (!to.length) return;
      const rows = await this.repo.enqueue({
        tenantId: tenant.id, planId: plan.id, event: 'due-soon', key, recipients: to,
        message: buildMessage(ctx, 'due-soon', now, { status: st.status, dueAt }),
      });
      if (rows.length) result.dueSoon++;
      return;
    }

    if (!problem) return;
    let current = alert;
    if (!current) {
      current = await this.open(tenant.id, plan, st, tz, ctx, now);
      if (current) result.opened++;
      return; // escalation counts from `since`; a step already due is taken on the next tick
    }
    const failedId = st.status === 'failing' ? latestFailed.get(`${tenant.id}/${plan.id}`) : undefined;
    if (failedId && failedId !== current.run_id) await this.linkFailure(tenant.id, failedId, current);
    if (await this.escalateIfDue(tenant.id, plan, current, notify, tz, ctx, st, now)) result.escalated++;
  }

  /** Opens the alert: overdue (message to notify.overdue) or failing (the run's failure message went out already). */
  private async open(tenantId: string, plan: PlanInfo, st: PlanStatusRow, tz: string, ctx: MessageContext, now: Date): Promise<AlertRow | undefined> {
    const dueAt = st.nextDueAt?.toISOString() ?? null;
    return this.db.transaction().execute(async (trx) => {
      if (st.status === 'overdue') {
        const since = plan.grace ? addDuration(st.nextDueAt!, plan.grace, tz) : st.nextDueAt!;
        const alert = await this.repo.openAlert({ tenantId, planId: plan.id, kind: 'overdue', since, openedAt: now }, trx);
        if (!alert) return undefined;
        await this.repo.enqueue({
          tenantId, planId: plan.id, alertId: alert.id, event: 'overdue', key: `overdue:${alert.id}`, recipients: plan.notify?.overdue ?? [],
          message: buildMessage(ctx, 'overdue', now, { status: st.status, dueAt, overdueSince: since.toISOString(), alert: messageAlert(alert) }),
        }, trx);
        return alert;
      }
      const failed = await trx.selectFrom('runs').select(['id', 'verdict', 'finished_at', 'findings'])
        .where('tenant_id', '=', tenantId).where('plan_id', '=', plan.id).where('status', '=', 'finished').where('verdict', '=', 'failed')
        .orderBy(sql`coalesce(finished_at, started_at, queued_at)`, 'desc').limit(1).executeTakeFirst();
      const since = failed?.finished_at ?? now;
      const alert = await this.repo.openAlert({ tenantId, planId: plan.id, kind: 'failing', since, openedAt: now, runId: failed?.id ?? null }, trx);
      if (!alert || !failed) return alert;
      await this.repo.linkRunToAlert(tenantId, failed.id, alert.id, trx);
      // normally the run's failure message went out when it ended; if the plan had no failure recipients, the
      // overdue recipients still hear about it (a failing plan must not stay silent)
      if (!plan.notify?.failure.length && plan.notify?.overdue.length) {
        await this.repo.enqueue({
          tenantId, planId: plan.id, alertId: alert.id, runId: failed.id, event: 'failure', key: `failure:${failed.id}`, recipients: plan.notify.overdue,
          message: buildMessage(ctx, 'failure', now, { status: st.status, dueAt, run: messageRun(failed), alert: messageAlert(alert) }),
        }, trx);
      }
      return alert;
    });
  }

  /** The newest failed run of each of these plans, in one query for all tenants (one index step per plan). */
  private async latestFailedRuns(plans: { tenantId: string; planId: string }[]): Promise<Map<string, string>> {
    if (!plans.length) return new Map();
    const res = await sql<{ tenant_id: string; plan_id: string; id: string }>`
      select x.t as tenant_id, x.p as plan_id, f.id from unnest(${plans.map((p) => p.tenantId)}::uuid[], ${plans.map((p) => p.planId)}::text[]) as x(t, p)
      cross join lateral (
        select r.id from runs r
        where r.tenant_id = x.t and r.plan_id = x.p and r.status = 'finished' and r.verdict in ('passed', 'failed') and r.verdict = 'failed'
        order by coalesce(r.finished_at, r.started_at, r.queued_at) desc, r.id desc limit 1
      ) f`.execute(this.db);
    return new Map(res.rows.map((r) => [`${r.tenant_id}/${r.plan_id}`, r.id]));
  }

  /** A newer failed run during an open alert: its failure recipients get the all-clear too. */
  private async linkFailure(tenantId: string, runId: string, alert: AlertRow) {
    await this.db.transaction().execute(async (trx) => {
      await this.repo.linkRunToAlert(tenantId, runId, alert.id, trx);
      await trx.updateTable('alerts').set({ run_id: runId }).where('id', '=', alert.id).execute();
    });
  }

  /**
   * The escalation chain: step i is due `after_i` after the problem began.
   * Acknowledged alerts stop; snoozed ones wait. Steps that fell due together
   * (downtime, a long snooze) go out as one message at the highest level, to
   * the recipients of all of them.
   */
  private async escalateIfDue(tenantId: string, plan: PlanInfo, alert: AlertRow, notify: PlanNotify | null, tz: string, ctx: MessageContext, st: PlanStatusRow, now: Date): Promise<boolean> {
    const steps = notify?.escalate ?? [];
    if (alert.acknowledged_at || alert.escalation_level >= steps.length) return false;
    if (alert.snoozed_until && alert.snoozed_until > now) return false;
    let level = alert.escalation_level;
    const to: string[] = [];
    for (let i = alert.escalation_level; i < steps.length; i++) {
      if (addDuration(alert.since, steps[i]!.after, tz) > now) break;
      level = i + 1;
      for (const r of steps[i]!.to) if (!to.includes(r)) to.push(r);
    }
    if (level === alert.escalation_level) return false;
    return this.db.transaction().execute(async (trx) => {
      if (!(await this.repo.escalate(alert.id, level, trx))) return false;
      await this.repo.enqueue({
        tenantId, planId: plan.id, alertId: alert.id, runId: alert.run_id, event: 'escalation', key: `escalation:${alert.id}:${level}`, recipients: to,
        message: buildMessage(ctx, 'escalation', now, {
          status: st.status, dueAt: st.nextDueAt?.toISOString() ?? null,
          ...(alert.kind === 'overdue' && { overdueSince: alert.since.toISOString() }),
          alert: { ...messageAlert(alert), level },
        }),
      }, trx);
      return true;
    });
  }

  /** Today's local date, when the daily messages (digest, checkpoint) are due; undefined before ERNSTFALL_DIGEST_TIME. */
  private dailyDate(now: Date): string | undefined {
    const parts = new Intl.DateTimeFormat('en-CA', { timeZone: this.cfg.timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
    const [y, m, d] = parts.split('-').map(Number) as [number, number, number];
    const [hh, mm] = this.cfg.digestTime.split(':').map(Number) as [number, number];
    return now < zonedToUtc(y, m, d, hh, mm, 0, this.cfg.timezone) ? undefined : parts;
  }

  /**
   * Once a day: the tenant's chain head, signed, to the checkpoint recipients
   * (an anchor outside the server: whoever keeps these mails can prove later
   * that no record up to there was removed). Tenants without records get none.
   */
  private async checkpoint(tenant: { id: string; slug: string; name: string }, now: Date): Promise<number> {
    const date = this.dailyDate(now);
    if (!date) return 0;
    const key = `checkpoint:${date}`;
    const to = this.cfg.checkpoints!.recipients;
    const done = await this.repo.existing(tenant.id, to.map((r) => `${key}|${r}`));
    if (done.size === to.length) return 0;
    const cp = await this.cfg.checkpoints!.sign(tenant.id);
    if (!cp) return 0;
    const body = JSON.parse(cp.canonical) as { seq: number; hash: string };
    const ctx: MessageContext = { tenant: { slug: tenant.slug, name: tenant.name }, publicUrl: this.cfg.publicUrl, timezone: this.cfg.timezone, lang: this.cfg.lang };
    const rows = await this.repo.enqueue({
      tenantId: tenant.id, event: 'checkpoint', key, recipients: to.filter((r) => !done.has(`${key}|${r}`)),
      message: buildMessage(ctx, 'checkpoint', now, { checkpoint: { seq: body.seq, hash: body.hash, keyId: cp.keyId, canonical: cp.canonical, signature: cp.signature } }),
    });
    return rows.length;
  }

  /** Once a day after ERNSTFALL_DIGEST_TIME (local): one summary per recipient of the plans that name them under notify.digest. */
  private async digest(tenant: { id: string; slug: string; name: string }, plans: PlanInfo[], statuses: PlanStatusRow[], now: Date, done: Set<string>): Promise<number> {
    const wanted = plans.filter((p) => p.notify?.digest?.length);
    if (!wanted.length) return 0;
    const parts = this.dailyDate(now);
    if (!parts) return 0;
    const prefix = `digest:${parts}|`;
    const byPlan = new Map(statuses.map((s) => [s.planId, s]));
    const recipients = [...new Set(wanted.flatMap((p) => p.notify!.digest))].filter((r) => !done.has(`${prefix}${r}`));
    let n = 0;
    for (const r of recipients) {
      const items: DigestItem[] = wanted.filter((p) => p.notify!.digest.includes(r)).map((p) => {
        const s = byPlan.get(p.id);
        return { planId: p.id, title: p.title, status: s?.status ?? 'never-tested', nextDueAt: s?.nextDueAt?.toISOString() ?? null, lastVerdict: s?.lastVerdict ?? null, paused: p.paused };
      });
      const ctx: MessageContext = { tenant: { slug: tenant.slug, name: tenant.name }, publicUrl: this.cfg.publicUrl, timezone: this.cfg.timezone, lang: this.cfg.lang };
      const rows = await this.repo.enqueue({
        tenantId: tenant.id, event: 'digest', key: `digest:${parts}`, recipients: [r],
        message: buildMessage(ctx, 'digest', now, { digest: { date: parts, items } }),
      });
      n += rows.length;
    }
    return n;
  }
}
