import type { SystemsTable } from '../../db/schema.js';
import type { SystemRepository } from '../../db/repositories/system.repository.js';
import { Invalid, NotFound } from '../errors.js';
import type { AuditActor, AuditService } from '../audit/audit.service.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { addDuration } from '../util/calendar.js';
import type { Clock } from '../clock.js';

export interface SystemInput {
  name: string;
  process?: string | null;
  protectionNeed?: 'normal' | 'hoch' | 'sehr hoch' | null;
  tier: number;
  owner?: string | null;
  handbookRef?: string | null;
  retired?: boolean;
}

export interface SystemJson {
  id: string;
  name: string;
  process: string | null;
  protectionNeed: string | null;
  tier: number;
  owner: string | null;
  handbookRef: string | null;
  createdAt: string;
  updatedAt: string;
  retiredAt: string | null;
}

/** A system in the restart order: its plans, its newest passed test of any kind, and whether a tier-1 system lacks one. */
export interface SystemOverview extends SystemJson {
  plans: { id: string; title: string; kind: string }[];
  lastPassed: { runId: string; planId: string; origin: string; at: string } | null;
  /** Tier 1 without a passed test of any kind in the last RECENT (a year). */
  lacksRecentPass: boolean;
}

/** How recent a tier-1 system's last passed test must be (BSI CON.3.A15 and ISO 22301 8.5: at least yearly). */
export const RECENT = 'P1Y';

const toJson = (r: SystemsTable): SystemJson => ({
  id: r.id, name: r.name, process: r.process, protectionNeed: r.protection_need, tier: r.tier, owner: r.owner, handbookRef: r.handbook_ref,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(), retiredAt: r.retired_at?.toISOString() ?? null,
});

/**
 * A plan that names a system by id gets the system's name, process and
 * protection need copied in when it is stored: the plan version (and every
 * run's evidence) then says which system it tested as it was then. An unknown
 * or retired system is an invalid plan.
 */
export async function resolvePlanSystem(systems: SystemRepository, tenantId: string, plan: RestorePlan): Promise<RestorePlan> {
  const id = plan.system?.id;
  if (!id) return plan;
  const row = await systems.get(tenantId, id);
  if (!row || row.retired_at) {
    throw new Invalid('invalid restore plan', [{ path: 'system', message: row ? `system "${id}" is retired` : `no system "${id}": create it first (PUT /api/v1/systems/${id})` }]);
  }
  return { ...plan, system: { id, name: row.name, ...(row.process && { process: row.process }), ...(row.protection_need && { protectionNeed: row.protection_need }) } };
}

/**
 * The tenant's systems (issue #12): what is restored in which order, who owns
 * it, where the emergency manual describes it. Plans link to a system by id;
 * the dashboard and the audit report group by system and show the restart
 * order and the tier-1 systems without a recent passed test of any kind.
 */
export class SystemService {
  constructor(private readonly repo: SystemRepository, private readonly audit: AuditService | undefined, private readonly clock: Clock) {}

  async list(tenantId: string, opts: { retired?: boolean } = {}): Promise<SystemJson[]> {
    return (await this.repo.list(tenantId, opts)).map(toJson);
  }

  async get(tenantId: string, id: string): Promise<SystemJson> {
    const row = await this.repo.get(tenantId, id);
    if (!row) throw new NotFound(`system ${id}`);
    return toJson(row);
  }

  async put(tenantId: string, id: string, input: SystemInput, by: { actor: AuditActor; ip?: string }): Promise<{ system: SystemJson; created: boolean }> {
    const name = input.name.trim();
    const problems: { path: string; message: string }[] = [];
    if (!name) problems.push({ path: 'name', message: 'the system\'s name, e.g. "Einwohnermeldewesen (OK.EWO)"' });
    if (!Number.isInteger(input.tier) || input.tier < 1 || input.tier > 9) problems.push({ path: 'tier', message: 'the restart priority: 1 (first) to 9' });
    if (problems.length) throw new Invalid('invalid system', problems);
    const now = this.clock();
    const values = {
      name, process: input.process?.trim() || null, protection_need: input.protectionNeed ?? null, tier: input.tier,
      owner: input.owner?.trim() || null, handbook_ref: input.handbookRef?.trim() || null,
      retired_at: input.retired ? now : null, updated_at: now,
    };
    const before = await this.repo.existing(tenantId, id);
    const row = await this.repo.upsert(tenantId, id, values, { by: by.actor.name, at: now }, input.retired ? (before?.retired_at ?? now) : null);
    await this.audit?.record({ tenantId, action: 'system.changed', actor: by.actor, ...(by.ip && { ip: by.ip }), subject: { type: 'system', id }, details: { created: !before, name, tier: input.tier, retired: Boolean(input.retired) } });
    return { system: toJson(row), created: !before };
  }

  /** The restart order: every system by tier and name, with its plans and its newest passed test of any kind. */
  async overview(tenantId: string, opts: { at?: Date; retired?: boolean } = {}): Promise<SystemOverview[]> {
    const at = opts.at ?? this.clock();
    const systems = await this.list(tenantId, { retired: opts.retired });
    if (!systems.length) return [];
    const plans = await this.repo.plans(tenantId);
    const linked = new Map<string, { id: string; title: string; kind: string }[]>();
    for (const p of plans) {
      const def = p.definition as RestorePlan;
      const sid = def.system?.id;
      if (sid) linked.set(sid, [...(linked.get(sid) ?? []), { id: p.id, title: p.title, kind: def.kind ?? 'restore' }]);
    }
    const planIds = [...linked.values()].flat().map((p) => p.id);
    // the newest passed run per plan (one row each, however long the history), newest first
    const passed = planIds.length
      ? (await this.repo.lastPassedPerPlan(tenantId, planIds, at))
        .sort((a, b) => b.queued_at.getTime() - a.queued_at.getTime())
      : [];
    return systems.map((sys) => {
      const mine = new Set((linked.get(sys.id) ?? []).map((p) => p.id));
      const last = passed.find((r) => mine.has(r.plan_id));
      const lastAt = last ? (last.started_at ?? last.queued_at) : null;
      return {
        ...sys, plans: linked.get(sys.id) ?? [],
        lastPassed: last ? { runId: last.id, planId: last.plan_id, origin: last.origin, at: lastAt!.toISOString() } : null,
        lacksRecentPass: sys.tier === 1 && (!lastAt || addDuration(lastAt, RECENT, 'Europe/Berlin') < at),
      };
    });
  }
}
