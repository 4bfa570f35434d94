import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { PlanStatusRepository, STATUS_CASE, addDurationSql, datedPlansSql, type PlanStatusRow } from '../../db/repositories/plan-status.repository.js';
import { NotificationRepository, type AlertRow, type NewNotification } from '../../db/repositories/notification.repository.js';
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

/** A plan that needs a decision (candidates()): its status, plan, tenant and open alert. */
interface Candidate {
  tenant_id: string;
  plan_id: string;
  status: PlanStatusRow['status'];
  next_due_at: Date | null;
  last_passed_at: Date | null;
  last_verdict: 'passed' | 'failed' | null;
  /** The newest passed or failed run: a failing plan's newest failed run. */
  decisive_id: string | null;
  /** The newest passed run. */
  passed_id: string | null;
  alert_id: string | null;
  title: string;
  system_name: string | null;
  timezone: string | null;
  grace: string | null;
  notify: PlanNotify | null;
  paused: boolean;
  slug: string;
  tenant_name: string;
  action: 'open' | 'plan';
  total: string;
}

const PROBLEM = `('overdue', 'failing')`;

function groupBy<T>(items: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of items) {
    const list = out.get(key(x));
    if (list) list.push(x);
    else out.set(key(x), [x]);
  }
  return out;
}
/** JS toISOString() of a timestamptz (the due-soon key). */
const ISO = (ts: string) => `to_char(${ts} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * candidates(): $1 now, $2 limit. The status of every plan comes from
 * plan_states (cached due dates, the rest computed), so a steady minute
 * compares stored values and returns nothing; plans and alerts are read
 * into the process only for the plans returned.
 */
const CANDIDATES_SQL = `${datedPlansSql('true')},
c1 as materialized (
  -- from the stored values only (no plan definition): the plans that may need a decision, and which kind (only these are collected)
  select * from (select x.*,
    (x.alert_id is not null and x.status not in ${PROBLEM})
      or (not x.paused and x.alert_id is null and x.status in ${PROBLEM})
      or (not x.paused and x.alert_id is not null and x.status = 'failing' and x.decisive_id is distinct from x.alert_run_id) as decide,
    not x.paused and x.status = 'due-soon' and x.next_due_at is not null as soon,
    not x.paused and x.alert_id is not null and x.status in ${PROBLEM} and x.acknowledged_at is null
      and (x.snoozed_until is null or x.snoozed_until <= $1::timestamptz) and x.escalation_level < x.esc_steps as esc
  from (
    select d.tenant_id, d.plan_id, ${STATUS_CASE} as status, d.next_due_at, d.last_passed_at, d.last_verdict, d.decisive_id, d.passed_id, d.esc_steps,
      a.id as alert_id, a.run_id as alert_run_id, a.since as alert_since, a.escalation_level, a.acknowledged_at, a.snoozed_until,
      ps.paused_at is not null as paused
    from dated d
    left join alerts a on a.tenant_id = d.tenant_id and a.plan_id = d.plan_id and a.resolved_at is null
    left join plan_schedules ps on ps.tenant_id = d.tenant_id and ps.plan_id = d.plan_id
  ) x) f
  where f.decide or f.soon or f.esc
),
checked as (
  -- due-soon and escalation need the plan's notify block: read for those few plans only
  -- (lateral: one index step per plan, never a pass over all plans)
  select c.* from (select * from c1 where not c1.decide and c1.soon) c
  cross join lateral (select pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
  where exists (
    select 1 from jsonb_array_elements_text(case when jsonb_typeof(coalesce(nullif(p.definition->'notify'->'dueSoon', 'null'::jsonb), p.definition->'notify'->'overdue')) = 'array'
      then coalesce(nullif(p.definition->'notify'->'dueSoon', 'null'::jsonb), p.definition->'notify'->'overdue') else '[]'::jsonb end) r(recipient)
    where not exists (select 1 from notifications n where n.tenant_id = c.tenant_id
      and n.dedupe_key = 'due-soon:' || c.plan_id || ':' || ${ISO('c.next_due_at')} || '|' || r.recipient))
  union all
  select c.* from (select * from c1 where not c1.decide and not c1.soon and c1.esc) c
  cross join lateral (select pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
  ${addDurationSql('c.alert_since', `btrim(p.definition->'notify'->'escalate'->c.escalation_level->>'after')`, `coalesce(p.definition->'cadence'->>'timezone', 'Europe/Berlin')`, 'esc')}
  -- the next step due within the hour (or not computable here): plan() decides with addDuration
  where esc.result is null or esc.result <= $1::timestamptz + interval '1 hour'
),
picked as (
  select c.*, count(*) over () as total from (
    select c1.* from c1 where c1.decide
    union all
    select * from checked
  ) c
  order by (c.alert_id is null and c.status in ${PROBLEM}), c.tenant_id, c.plan_id
  limit $2
)
select c.tenant_id, c.plan_id, c.status, c.next_due_at, c.last_passed_at, c.last_verdict, c.decisive_id, c.passed_id, c.alert_id,
  p.title, p.definition->'system'->>'name' as system_name, p.definition->'cadence'->>'timezone' as timezone,
  p.definition->'cadence'->>'grace' as grace, p.definition->'notify' as notify, c.paused, t.slug, t.name as tenant_name,
  case when c.alert_id is null and c.status in ${PROBLEM} then 'open' else 'plan' end as action, c.total
from picked c
cross join lateral (select pl.title, pl.definition from plans pl where pl.tenant_id = c.tenant_id and pl.id = c.plan_id offset 0) p
cross join lateral (select tn.slug, tn.name from tenants tn where tn.id = c.tenant_id offset 0) t
order by (c.alert_id is null and c.status in ${PROBLEM}), c.tenant_id, c.plan_id`;

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
  private dayFormat: Intl.DateTimeFormat | undefined;

  constructor(private readonly db: Kysely<DB>, private readonly cfg: ReminderConfig, private readonly log: Logger) {
    this.status = new PlanStatusRepository(db);
    this.repo = new NotificationRepository(db);
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
    const alerts = new Map((alertIds.length ? await this.db.selectFrom('alerts').selectAll().where('id', 'in', alertIds).execute() : []).map((a) => [a.id, a]));
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
          await sql`update alerts a set run_id = x.r from unnest(${links.map((l) => l.a.id)}::uuid[], ${links.map((l) => l.runId)}::uuid[]) as x(a, r)
            where a.id = x.a and a.resolved_at is null`.execute(trx);
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
      const tenants = await this.db.selectFrom('tenants').select(['id', 'slug', 'name']).execute();
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
  private async candidates(now: Date, limit: number): Promise<Candidate[]> {
    const res = await this.db.transaction().execute(async (trx) => {
      await sql`set local jit = off`.execute(trx);
      return trx.executeQuery<Candidate>(CompiledQuery.raw(CANDIDATES_SQL, [now, limit]));
    });
    return res.rows;
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
    const failed = new Map((failedIds.length
      ? await this.db.selectFrom('runs').select(['id', 'verdict', 'finished_at', 'findings']).where('id', 'in', failedIds).where('verdict', '=', 'failed').execute()
      : []).map((r) => [r.id, r]));
    const rows = batch.map((c) => {
      const run = c.status === 'failing' && c.decisive_id ? failed.get(c.decisive_id) : undefined;
      const since = c.status === 'overdue'
        ? (c.grace ? addDuration(c.next_due_at!, c.grace, c.timezone ?? DEFAULT_TZ) : c.next_due_at!)
        : (run?.finished_at ?? now);
      return { c, run, kind: c.status === 'overdue' ? 'overdue' : 'failing', since };
    });
    return this.db.transaction().execute(async (trx) => {
      const opened = await sql<AlertRow>`
        insert into alerts (tenant_id, plan_id, kind, since, opened_at, run_id)
        select t, p, k, s, ${now}::timestamptz, r from unnest(${rows.map((x) => x.c.tenant_id)}::uuid[], ${rows.map((x) => x.c.plan_id)}::text[],
          ${rows.map((x) => x.kind)}::text[], ${rows.map((x) => x.since.toISOString())}::timestamptz[], ${rows.map((x) => x.run?.id ?? null)}::uuid[]) as x(t, p, k, s, r)
        on conflict (tenant_id, plan_id) where resolved_at is null do nothing
        returning *`.execute(trx);
      const byPlan = new Map(rows.map((x) => [`${x.c.tenant_id}/${x.c.plan_id}`, x]));
      const out: NewNotification[] = [];
      const links: { tenantId: string; runId: string; alertId: string }[] = [];
      for (const alert of opened.rows) {
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
      return opened.rows.length;
    });
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
    const missing = await sql<{ tenant_id: string; recipient: string }>`
      select w.tenant_id, w.recipient from (
        select distinct s.tenant_id, r.recipient from plan_states s cross join lateral unnest(s.digest) as r(recipient) where s.digest is not null
      ) w
      where not exists (select 1 from notifications n where n.tenant_id = w.tenant_id and n.dedupe_key = ${prefix} || w.recipient)`.execute(this.db);
    if (!missing.rows.length) return 0;
    const todo = new Map<string, Set<string>>();
    for (const r of missing.rows) todo.set(r.tenant_id, (todo.get(r.tenant_id) ?? new Set()).add(r.recipient));
    const tenantIds = [...todo.keys()].sort().slice(0, this.cfg.digestTenantsPerTick ?? DIGEST_TENANTS_PER_TICK);
    const [tenants, plans, statuses] = await Promise.all([
      this.db.selectFrom('tenants').select(['id', 'slug', 'name']).where('id', 'in', tenantIds).orderBy('id').execute(),
      this.db.selectFrom('plans as p')
        .leftJoin('plan_schedules as s', (j) => j.onRef('s.tenant_id', '=', 'p.tenant_id').onRef('s.plan_id', '=', 'p.id'))
        .select([
          'p.tenant_id', 'p.id', 'p.title',
          sql<string | null>`p.definition->'system'->>'name'`.as('system_name'),
          sql<string | null>`p.definition->'cadence'->>'timezone'`.as('timezone'),
          sql<string | null>`p.definition->'cadence'->>'grace'`.as('grace'),
          sql<PlanNotify | null>`p.definition->'notify'`.as('notify'),
          sql<boolean>`s.paused_at is not null`.as('paused'),
        ])
        .where('p.tenant_id', 'in', tenantIds)
        .execute(),
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
