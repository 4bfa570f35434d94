import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { BaselineRow } from '../../db/repositories/baseline.repository.js';
import type { AuditActor, AuditService } from '../audit/audit.service.js';
import { Conflict, NotFound } from '../errors.js';
import type { Clock } from '../clock.js';

export interface BaselineView {
  planId: string;
  /** The run whose database profile the built-in drift checks compare with. */
  runId: string;
  /** accepted: a person accepted it (with reason); passed: the last passed run. */
  source: 'accepted' | 'passed';
  at: string;
  acceptedBy: string | null;
  reason: string | null;
}

/** The accepted baseline if it is newer than the last passed run, else the last passed run. */
export function chooseBaseline<P extends { finished_at: Date | null }>(
  accepted: BaselineRow | undefined, passed: P | undefined,
): { kind: 'accepted'; row: BaselineRow } | { kind: 'passed'; row: P } | undefined {
  if (accepted && (!passed?.finished_at || accepted.accepted_at > passed.finished_at)) return { kind: 'accepted', row: accepted };
  return passed?.finished_at ? { kind: 'passed', row: passed } : undefined;
}

/**
 * The baseline of the built-in drift checks (schema, volume): the last
 * passed run, unless a person accepted a newer run's profile — an intended
 * change, reviewed, recorded in the ledger with who and why.
 */
export class BaselineService {
  private readonly runs: Repositories['runs'];
  private readonly repo: Repositories['baselines'];
  constructor(
    private readonly db: Kysely<DB>, repos: Pick<Repositories, 'runs' | 'baselines'>, private readonly audit: AuditService, private readonly clock: Clock,
  ) {
    this.runs = repos.runs;
    this.repo = repos.baselines;
  }

  async current(tenantId: string, planId: string): Promise<BaselineView | null> {
    const [accepted, passed] = await Promise.all([this.repo.latest(tenantId, planId), this.runs.lastPassed(tenantId, planId)]);
    const b = chooseBaseline(accepted, passed);
    if (!b) return null;
    if (b.kind === 'accepted') {
      return { planId, runId: b.row.run_id, source: 'accepted', at: b.row.accepted_at.toISOString(), acceptedBy: b.row.accepted_by, reason: b.row.reason };
    }
    return { planId, runId: b.row.id, source: 'passed', at: b.row.finished_at!.toISOString(), acceptedBy: null, reason: null };
  }

  async accept(tenantId: string, planId: string, runId: string, reason: string, by: { actor: AuditActor; name: string; ip?: string }): Promise<BaselineView> {
    const run = await this.runs.get(tenantId, runId);
    if (!run || run.plan_id !== planId) throw new NotFound(`run ${runId} of plan ${planId}`);
    if (run.status !== 'finished') throw new Conflict(`run ${runId} has not finished`);
    if (!(run.restore as { profile?: unknown } | null)?.profile) {
      throw new Conflict(`run ${runId} has no database profile (it did not get as far as the built-in checks); accept a run that restored`);
    }
    const at = this.clock();
    const record = await this.db.transaction().execute(async (trx) => {
      await this.repo.insert({ id: randomUUID(), tenant_id: tenantId, plan_id: planId, run_id: runId, accepted_by: by.name, reason: reason.trim(), accepted_at: at }, trx);
      return this.audit.record({
        tenantId, action: 'plan.baseline.accepted', actor: by.actor, ...(by.ip && { ip: by.ip }), subject: { type: 'plan', id: planId },
        details: { runId, reason: reason.trim(), verdict: run.verdict }, at,
      }, trx);
    });
    this.audit.anchor(record);
    return { planId, runId, source: 'accepted', at: at.toISOString(), acceptedBy: by.name, reason: reason.trim() };
  }
}
