import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import { PlanStatusRepository, type PlanStatusRow } from '../../db/repositories/plan-status.repository.js';
import { NotificationRepository, type AlertRow, type NewNotification } from '../../db/repositories/notification.repository.js';
import { ReminderRepository, type DigestPlanRow, type ReminderCandidate } from '../../db/repositories/reminder.repository.js';
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
  /** At most this many plans decided on per tick (default DECISIONS_PER_TICK); the rest on the next ticks. */
  decisionsPerTick?: number;
  /** At most this many tenants' daily digests per tick (default DIGEST_TENANTS_PER_TICK). */
  digestTenantsPerTick?: number;
}

/**
 * Plans one tick decides on at most (open, resolve, link, escalate, due-soon):
 * after an upgrade or an import tens of thousands of plans may need an alert
 * at once; they are opened set-based, this many per tick, oldest decisions
 * first (every other kind before openings), the rest on the next ticks.
 * Nothing is lost: a plan that was left stays a candidate until decided.
 */
export const DECISIONS_PER_TICK = 1000;
/** Tenants whose daily digest one tick writes at most (2,000 tenants at the digest time: two ticks). */
export const DIGEST_TENANTS_PER_TICK = 1000;
/** Due dates cached per tick at most (plans new, changed or with a new passed run since; after an upgrade: all). */
export const DUE_DATES_PER_TICK = 20_000;
/** Alerts opened per transaction (one statement each for alerts, notifications, links). */
const OPEN_BATCH = 500;

export interface ReminderResult {
  dueSoon: number;
  opened: number;
  escalated: number;
  resolved: number;
  digests: number;
  checkpoints: number;
}

/** A plan that needs a decision (candidates()): its status, plan, tenant and open alert. */
type Candidate = ReminderCandidate;

type PlanInfo = DigestPlanRow;

function groupBy<T>(items: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of items) {
    const list = out.get(key(x));
    if (list) list.push(x);
    else out.set(key(x), [x]);
  }
  return out;
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
  private readonly status: Repositories['planStatus'];
  private readonly repo: Repositories['notifications'];
  private readonly reminders: Repositories['reminders'];
  private dayFormat: Intl.DateTimeFormat | undefined;

  constructor(private readonly db: Kysely<DB>, private readonly cfg: ReminderConfig, private readonly log: Logger) {
    // still takes a database (tests and the scheduler's process hand one): its repositories are made here
    this.status = new PlanStatusRepository(db);
    this.repo = new NotificationRepository(db);
    this.reminders = new ReminderRepository(db);
  }

  async evaluate(now: Date): Promise<ReminderResult> {
    const result: ReminderResult = { dueSoon: 0, opened: 0, escalated: 0, resolved: 0, digests: 0, checkpoints: 0 };
    // cache the due dates of plans that are new, changed or passed since (bounded; statuses are right without it, only slower)
    try {
      await this.status.refreshDueDates(DUE_DATES_PER_TICK);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'caching due dates failed; trying again next tick');
    }
    // only the plans that need a decision, picked by the database (set-based), at most decisionsPerTick of them
    const limit = this.cfg.decisionsPerTick ?? DECISIONS_PER_TICK;
    const cands = await this.candidates(now, limit);
    const total = cands[0] ? Number(cands[0].total) : 0;
    const alertIds = cands.flatMap((c) => (c.alert_id ? [c.alert_id] : []));
    const alerts = new Map((await this.reminders.alertsByIds(alertIds)).map((a) => [a.id, a]));
    const opens = cands.filter((c) => c.action === 'open');
    const others = cands.filter((c) => c.action !== 'open');
    // due-soon reminders already sent, looked up per tenant for all its candidates at once
    const sent = new Set<string>();
    const soonByTenant = new Map<string, string[]>();
    for (const c of others) {
      if (c.status !== 'due-soon' || !c.next_due_at) continue;
      const keys = dueSoonRecipients(c).map((r) => `${dueSoonKey(c.plan_id, c.next_due_at!)}|${r}`);
      soonByTenant.set(c.tenant_id, [...(soonByTenant.get(c.tenant_id) ?? []), ...keys]);
    }
    for (const [t, keys] of soonByTenant) for (const k of await this.repo.existing(t, keys)) sent.add(k);
    // a newer failed run joins its open alert: all of them in one transaction (after an import: thousands)
    const links = others.flatMap((c) => {
      const a = alerts.get(c.alert_id ?? '');
      return a && !c.paused && c.status === 'failing' && c.decisive_id && c.decisive_id !== a.run_id ? [{ c, a, runId: c.decisive_id }] : [];
    });
    if (links.length) {
      try {
        await this.db.transaction().execute(async (trx) => {
          await this.repo.linkRunsToAlerts(links.map((l) => ({ tenantId: l.c.tenant_id, runId: l.runId, alertId: l.a.id })), trx);
          await this.reminders.setAlertRuns(links.map((l) => ({ alertId: l.a.id, runId: l.runId })), trx);
        });
        for (const l of links) l.a.run_id = l.runId;
      } catch (err) {
        this.log.error({ alerts: links.length, err: (err as Error).message }, 'linking newer failed runs to their alerts failed; trying again next tick');
      }
    }
    for (const c of others) {
      try {
        await this.plan(c, alerts.get(c.alert_id ?? ''), now, result, sent);
      } catch (err) {
        // one plan's trouble must not silence the others; the next tick tries again (nothing was recorded)
        this.log.error({ tenantId: c.tenant_id, planId: c.plan_id, err: (err as Error).message }, 'reminders for the plan failed; trying again next tick');
      }
    }
    for (let i = 0; i < opens.length; i += OPEN_BATCH) {
      const batch = opens.slice(i, i + OPEN_BATCH);
      try {
        result.opened += await this.openMany(batch, now);
      } catch (err) {
        this.log.error({ plans: batch.length, err: (err as Error).message }, 'opening alerts failed; trying again next tick');
      }
    }
    if (total > cands.length) this.log.info({ decided: cands.length, deferred: total - cands.length }, 'reminders: more plans need a decision; the next ticks take them');
    try {
      result.digests += await this.digests(now);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'daily digests failed; trying again next tick');
    }
    if (this.cfg.checkpoints?.recipients.length) {
      const tenants = await this.reminders.tenants();
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

  /**
   * The plans that need a decision now, with everything deciding needs; the
   * rest (in a steady minute: all) stay in the database. A superset of what
   * plan() acts on — it decides, the query only narrows:
   * - an open alert whose plan is no longer overdue or failing (resolve);
   * - not paused: a problem without an open alert (open), a failing plan
   *   whose newest failed run is not the alert's (link), an open alert not
   *   acknowledged nor snoozed whose next escalation step is due (or within
   *   the hour), a due-soon plan with a recipient not reminded yet.
   * Openings come last; `total` counts them all before the limit.
   */
  private candidates(now: Date, limit: number): Promise<Candidate[]> {
    return this.reminders.candidates(now, limit);
  }

  /** Plans left to the JS side by candidates(): as plan() reads them. */
  private info(c: Candidate): PlanInfo {
    return { tenant_id: c.tenant_id, id: c.plan_id, title: c.title, system_name: c.system_name, timezone: c.timezone, grace: c.grace, notify: c.notify, paused: c.paused };
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

  private async plan(c: Candidate, alert: AlertRow | undefined, now: Date, result: ReminderResult, sent: Set<string>) {
    const tenant = { id: c.tenant_id, slug: c.slug, name: c.tenant_name };
    const plan = this.info(c);
    const st: PlanStatusRow = { planId: c.plan_id, status: c.status, nextDueAt: c.next_due_at, lastPassedAt: c.last_passed_at, lastVerdict: c.last_verdict };
    const notify = plan.notify;
    const tz = plan.timezone ?? DEFAULT_TZ;
    const ctx = this.ctx(tenant, plan);
    const dueAt = st.nextDueAt?.toISOString() ?? null;
    const problem = st.status === 'overdue' || st.status === 'failing';

    // recovered (or the plan changed so that it is no longer overdue): close the episode, all-clear to everyone told
    if (alert && !problem) {
      const passedAfter = c.passed_id && st.lastPassedAt && st.lastPassedAt >= alert.since ? c.passed_id : null;
      await this.db.transaction().execute(async (trx) => {
        if (!(await this.repo.resolve(alert.id, now, passedAfter, trx))) return;
        const to = await this.repo.alertRecipients(alert.id, trx);
        await this.repo.enqueue({
          tenantId: tenant.id, planId: plan.id, alertId: alert.id, runId: passedAfter, event: 'recovered', key: `recovered:${alert.id}`, recipients: to,
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

    // a problem without an alert is opened by openMany(); escalation counts from `since`, a step already due is taken on the next tick
    if (!problem || !alert) return;
    const failedId = st.status === 'failing' ? c.decisive_id : null;
    if (failedId && failedId !== alert.run_id) await this.linkFailure(tenant.id, failedId, alert);
    if (await this.escalateIfDue(tenant.id, plan, alert, notify, tz, ctx, st, now)) result.escalated++;
  }

  /**
   * Opens the alerts of these plans, set-based, in one transaction: one
   * statement inserts the alerts (a plan with one open already is skipped:
   * unique partial index), one the notifications (overdue: to notify.overdue;
   * failing: the run's failure message went out when it ended — if the plan
   * had no failure recipients, the overdue recipients hear of it), one links
   * the failed runs' notifications to the new alerts. Returns the number opened.
   */
  private async openMany(batch: Candidate[], now: Date): Promise<number> {
    const failedIds = batch.flatMap((c) => (c.status === 'failing' && c.decisive_id ? [c.decisive_id] : []));
    const failed = new Map((await this.reminders.failedRuns(failedIds)).map((r) => [r.id, r]));
    const rows = batch.map((c) => {
      const run = c.status === 'failing' && c.decisive_id ? failed.get(c.decisive_id) : undefined;
      const since = c.status === 'overdue'
        ? (c.grace ? addDuration(c.next_due_at!, c.grace, c.timezone ?? DEFAULT_TZ) : c.next_due_at!)
        : (run?.finished_at ?? now);
      return { c, run, kind: c.status === 'overdue' ? 'overdue' : 'failing', since };
    });
    return this.db.transaction().execute(async (trx) => {
      const opened = await this.reminders.openAlerts(
        rows.map((x) => ({ tenantId: x.c.tenant_id, planId: x.c.plan_id, kind: x.kind, since: x.since, runId: x.run?.id ?? null })), now, trx,
      );
      const byPlan = new Map(rows.map((x) => [`${x.c.tenant_id}/${x.c.plan_id}`, x]));
      const out: NewNotification[] = [];
      const links: { tenantId: string; runId: string; alertId: string }[] = [];
      for (const alert of opened) {
        const { c, run } = byPlan.get(`${alert.tenant_id}/${alert.plan_id}`)!;
        const plan = this.info(c);
        const ctx = this.ctx({ slug: c.slug, name: c.tenant_name }, plan);
        const dueAt = c.next_due_at?.toISOString() ?? null;
        if (alert.kind === 'overdue') {
          out.push({
            tenantId: c.tenant_id, planId: c.plan_id, alertId: alert.id, event: 'overdue', key: `overdue:${alert.id}`, recipients: plan.notify?.overdue ?? [],
            message: buildMessage(ctx, 'overdue', now, { status: c.status, dueAt, overdueSince: alert.since.toISOString(), alert: messageAlert(alert) }),
          });
          continue;
        }
        if (!run) continue;
        links.push({ tenantId: c.tenant_id, runId: run.id, alertId: alert.id });
        if (!plan.notify?.failure.length && plan.notify?.overdue.length) {
          out.push({
            tenantId: c.tenant_id, planId: c.plan_id, alertId: alert.id, runId: run.id, event: 'failure', key: `failure:${run.id}`, recipients: plan.notify.overdue,
            message: buildMessage(ctx, 'failure', now, { status: c.status, dueAt, run: messageRun(run), alert: messageAlert(alert) }),
          });
        }
      }
      // the failure notifications the runs sent when they ended belong to the alert (its all-clear reaches them)
      await this.repo.linkRunsToAlerts(links, trx);
      await this.repo.enqueueMany(out, trx);
      return opened.length;
    });
  }

  /** A newer failed run during an open alert: its failure recipients get the all-clear too. */
  private async linkFailure(tenantId: string, runId: string, alert: AlertRow) {
    await this.db.transaction().execute(async (trx) => {
      await this.repo.linkRunToAlert(tenantId, runId, alert.id, trx);
      await this.reminders.setAlertRun(alert.id, runId, trx);
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
    this.dayFormat ??= new Intl.DateTimeFormat('en-CA', { timeZone: this.cfg.timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    const parts = this.dayFormat.format(now);
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

  /**
   * The daily digests still to write today (after ERNSTFALL_DIGEST_TIME): the
   * database names the tenants and recipients without one (one query over
   * plan_states, whose trigger copies each plan's notify.digest; none in a
   * steady tick), then those tenants' plans and statuses are read, at
   * most digestTenantsPerTick tenants per tick.
   */
  private async digests(now: Date): Promise<number> {
    const date = this.dailyDate(now);
    if (!date) return 0;
    const prefix = `digest:${date}|`;
    const missing = await this.reminders.missingDigests(prefix);
    if (!missing.length) return 0;
    const todo = new Map<string, Set<string>>();
    for (const r of missing) todo.set(r.tenant_id, (todo.get(r.tenant_id) ?? new Set()).add(r.recipient));
    const tenantIds = [...todo.keys()].sort().slice(0, this.cfg.digestTenantsPerTick ?? DIGEST_TENANTS_PER_TICK);
    const [tenants, plans, statuses] = await Promise.all([
      this.reminders.tenantsByIds(tenantIds),
      this.reminders.digestPlans(tenantIds),
      this.status.statusOfTenants(tenantIds, now),
    ]);
    const plansOf = groupBy(plans, (p) => p.tenant_id);
    const statusesOf = groupBy(statuses, (s) => s.tenantId);
    const out: NewNotification[] = [];
    for (const tenant of tenants) {
      try {
        out.push(...this.digest(tenant, plansOf.get(tenant.id) ?? [], statusesOf.get(tenant.id) ?? [], now, date, todo.get(tenant.id)!));
      } catch (err) {
        this.log.error({ tenantId: tenant.id, err: (err as Error).message }, 'daily digest failed; trying again next tick');
      }
    }
    // all of them in a few statements (1,000 rows each); a key already there is left alone
    const n = await this.repo.enqueueMany(out);
    if (todo.size > tenantIds.length) this.log.info({ written: tenantIds.length, deferred: todo.size - tenantIds.length }, 'daily digests: more tenants on the next ticks');
    return n;
  }

  /** Once a day after ERNSTFALL_DIGEST_TIME (local): one summary per recipient of the plans that name them under notify.digest (built here, written by digests()). */
  private digest(tenant: { id: string; slug: string; name: string }, plans: PlanInfo[], statuses: PlanStatusRow[], now: Date, date: string, todo: Set<string>): NewNotification[] {
    const wanted = plans.filter((p) => p.notify?.digest?.length);
    if (!wanted.length) return [];
    const byPlan = new Map(statuses.map((s) => [s.planId, s]));
    // the recipients without today's digest (digests() asked the database)
    const recipients = [...new Set(wanted.flatMap((p) => p.notify!.digest))].filter((r) => todo.has(r));
    const ctx: MessageContext = { tenant: { slug: tenant.slug, name: tenant.name }, publicUrl: this.cfg.publicUrl, timezone: this.cfg.timezone, lang: this.cfg.lang };
    return recipients.map((r) => {
      const items: DigestItem[] = wanted.filter((p) => p.notify!.digest.includes(r)).map((p) => {
        const s = byPlan.get(p.id);
        return { planId: p.id, title: p.title, status: s?.status ?? 'never-tested', nextDueAt: s?.nextDueAt?.toISOString() ?? null, lastVerdict: s?.lastVerdict ?? null, paused: p.paused };
      });
      return { tenantId: tenant.id, event: 'digest', key: `digest:${date}`, recipients: [r], message: buildMessage(ctx, 'digest', now, { digest: { date, items } }) };
    });
  }
}
