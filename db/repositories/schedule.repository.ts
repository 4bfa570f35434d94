import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, PlanScheduleRow } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

/** A plan with a cron schedule, with what the scheduler needs to decide on it. */
export interface ScheduledPlan {
  tenant_id: string;
  plan_id: string;
  schedule: string;
  timezone: string | null;
  created_at: Date;
  last_slot: Date | null;
  paused_at: Date | null;
  /** The first slot after last_slot as a tick computed it; null when not known (new plan, changed schedule or zone). */
  next_slot: Date | null;
}

/** What a stored next slot was computed for: the schedule and the zone (a change of either makes it unknown). */
export const nextSlotKey = (schedule: string, timezone: string | null) => `${schedule}|${timezone ?? ''}`;

const scheduleColumns = [
  'tenant_id', 'plan_id', 'last_slot', 'last_missed_slot', 'last_missed_reason', 'paused_at', 'paused_reason', 'paused_by', 'updated_at',
] as const;

export class ScheduleRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /**
   * The scheduled plans a tick must look at: those whose stored next slot
   * has come, and at most `unknownLimit` of those whose next slot is not
   * known for their current schedule and zone (first tick after the upgrade,
   * a new or changed plan; `unknownTotal` counts them all). Every other
   * scheduled plan is decided without leaving the database: one query,
   * however many plans. Known-due plans first. Only plans ernstfall runs
   * itself (an external plan's schedule says when its tool is expected,
   * nothing is triggered).
   */
  async duePlans(now: Date, unknownLimit = Number.MAX_SAFE_INTEGER, trx: Db = this.db): Promise<{ plans: ScheduledPlan[]; unknownTotal: number }> {
    const res = await sql<ScheduledPlan & { known: boolean; unknown_total: string | null }>`
      with scheduled as (
        select p.tenant_id, p.id as plan_id, p.created_at, s.last_slot, s.paused_at,
          p.definition->'cadence'->>'schedule' as schedule, p.definition->'cadence'->>'timezone' as timezone,
          case when s.next_slot_key = (p.definition->'cadence'->>'schedule') || '|' || coalesce(p.definition->'cadence'->>'timezone', '') then s.next_slot end as next_slot
        from plans p
        left join plan_schedules s on s.tenant_id = p.tenant_id and s.plan_id = p.id
        where p.definition->'cadence'->>'schedule' is not null and p.definition->>'kind' is null
          and (s.next_slot is null or s.next_slot <= ${now}::timestamptz
            or s.next_slot_key is distinct from (p.definition->'cadence'->>'schedule') || '|' || coalesce(p.definition->'cadence'->>'timezone', ''))
      )
      (select *, true as known, null::bigint as unknown_total from scheduled where next_slot is not null order by tenant_id, plan_id)
      union all
      (select *, false, count(*) over () from scheduled where next_slot is null order by tenant_id, plan_id limit ${unknownLimit})`.execute(trx);
    const unknown = res.rows.filter((r) => !r.known);
    const strip = ({ known: _k, unknown_total: _u, ...r }: ScheduledPlan & { known: boolean; unknown_total: string | null }): ScheduledPlan => r;
    return { plans: res.rows.map(strip), unknownTotal: unknown.length ? Number(unknown[0]!.unknown_total) : 0 };
  }

  /** Stores next slots in one statement (null: the schedule never fires again, stored as infinity). */
  async setNextSlots(rows: { tenantId: string; planId: string; nextSlot: Date | null; key: string }[], now: Date, trx: Db = this.db): Promise<void> {
    for (let i = 0; i < rows.length; i += 5000) {
      const chunk = rows.slice(i, i + 5000);
      await sql`insert into plan_schedules (tenant_id, plan_id, next_slot, next_slot_key, updated_at)
        select t, p, coalesce(n, 'infinity'), k, ${now}::timestamptz from unnest(${chunk.map((r) => r.tenantId)}::uuid[], ${chunk.map((r) => r.planId)}::text[],
          ${chunk.map((r) => r.nextSlot?.toISOString() ?? null)}::timestamptz[], ${chunk.map((r) => r.key)}::text[]) as x(t, p, n, k)
        on conflict (tenant_id, plan_id) do update set next_slot = excluded.next_slot, next_slot_key = excluded.next_slot_key`.execute(trx);
    }
  }

  listForTenant(tenantId: string, trx: Db = this.db): Promise<PlanScheduleRow[]> {
    return trx.selectFrom('plan_schedules').select(scheduleColumns).where('tenant_id', '=', tenantId).execute();
  }

  get(tenantId: string, planId: string, trx: Db = this.db): Promise<PlanScheduleRow | undefined> {
    return trx.selectFrom('plan_schedules').select(scheduleColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).executeTakeFirst();
  }

  /** Moves last_slot forward, never back (two schedulers, or a late tick, cannot rewind it). */
  /** `now`: the scheduler's tick (business time). */
  async advance(tenantId: string, planId: string, slot: Date, now: Date, missed?: { reason: string }, trx: Db = this.db): Promise<void> {
    await trx.insertInto('plan_schedules')
      .values({
        tenant_id: tenantId, plan_id: planId, last_slot: slot, updated_at: now,
        last_missed_slot: missed ? slot : null, last_missed_reason: missed?.reason ?? null,
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'plan_id']).doUpdateSet({
        last_slot: sql`greatest(plan_schedules.last_slot, excluded.last_slot)`,
        ...(missed ? { last_missed_slot: sql`excluded.last_missed_slot`, last_missed_reason: sql`excluded.last_missed_reason` } : {}),
        updated_at: now,
      }))
      .execute();
  }

  /** Pauses the plan's schedule; undefined when it is paused already. */
  pause(tenantId: string, planId: string, p: { at: Date; reason: string; by: string }, trx: Db = this.db): Promise<PlanScheduleRow | undefined> {
    return trx.insertInto('plan_schedules')
      .values({ tenant_id: tenantId, plan_id: planId, paused_at: p.at, paused_reason: p.reason, paused_by: p.by, updated_at: p.at })
      .onConflict((oc) => oc.columns(['tenant_id', 'plan_id'])
        .doUpdateSet({ paused_at: p.at, paused_reason: p.reason, paused_by: p.by, updated_at: p.at })
        .where('plan_schedules.paused_at', 'is', null))
      .returning(scheduleColumns)
      .executeTakeFirst();
  }

  /**
   * Ends a pause; the slots that passed meanwhile are not caught up (last_slot
   * moves to the moment of resuming). Undefined when it was not paused.
   */
  resume(tenantId: string, planId: string, at: Date, trx: Db = this.db): Promise<PlanScheduleRow | undefined> {
    return trx.updateTable('plan_schedules')
      .set({
        paused_at: null, paused_reason: null, paused_by: null, updated_at: at,
        last_slot: sql`greatest(last_slot, ${at}::timestamptz)`,
      })
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('paused_at', 'is not', null)
      .returning(scheduleColumns)
      .executeTakeFirst();
  }

  async slotTaken(tenantId: string, planId: string, slot: Date, trx: Db = this.db): Promise<boolean> {
    const row = await trx.selectFrom('runs').select('id')
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('slot', '=', slot).executeTakeFirst();
    return row !== undefined;
  }

  /** One row per scheduler process, updated on every tick (database clock, so hosts' clock skew does not matter). */
  async heartbeat(id: string, isLeader: boolean, trx: Db = this.db): Promise<void> {
    await trx.insertInto('scheduler_heartbeats')
      .values({ id, is_leader: isLeader, last_leader_tick_at: isLeader ? sql`now()` : null })
      .onConflict((oc) => oc.column('id').doUpdateSet({
        is_leader: isLeader, last_tick_at: sql`now()`,
        ...(isLeader ? { last_leader_tick_at: sql`now()` } : {}),
      }))
      .execute();
  }

  async leaderGone(id: string, trx: Db = this.db): Promise<void> {
    await trx.updateTable('scheduler_heartbeats').set({ is_leader: false }).where('id', '=', id).execute();
  }

  /**
   * For readiness and plan status: when a leader last ticked, and how many
   * seconds ago by the database clock. Null when no scheduler ever led.
   */
  async lastLeaderTick(trx: Db = this.db): Promise<{ at: Date; ageSeconds: number } | null> {
    const row = await trx.selectFrom('scheduler_heartbeats')
      .select([
        sql<Date>`max(last_leader_tick_at)`.as('at'),
        sql<number>`extract(epoch from now() - max(last_leader_tick_at))::float8`.as('age'),
      ])
      .executeTakeFirst();
    return row?.at ? { at: row.at, ageSeconds: row.age } : null;
  }
}
