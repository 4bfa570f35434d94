import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DB, ProcessesTable } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { RestartTestRow } from '../../db/repositories/restart-test.repository.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import type { RunService } from '../runs/run.service.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { Conflict, DomainError, Invalid, NotFound } from '../errors.js';
import { finding, type Finding } from '../findings.js';
import { DurationError, parseDuration } from '../util/duration.js';
import type { Clock } from '../clock.js';
import { conclude, planTiers, tierSeconds, tierState, type NotTested, type Tier, type TierRun } from './restart-order.js';

const UNIQUE_VIOLATION = '23505';
/** What a restart test writes into the runs it starts: `trigger` and, with its id, `triggered_by`. */
export const RESTART_TRIGGER = 'restart-test';
const triggeredBy = (id: string) => `${RESTART_TRIGGER}:${id}`;

export interface ProcessJson {
  name: string;
  rtoSeconds: number | null;
  /** Its systems by tier (those not retired). */
  systems: { id: string; name: string; tier: number }[];
  lastTest: { id: string; status: string; verdict: string | null; startedAt: string; finishedAt: string | null; measuredSeconds: number | null } | null;
  updatedAt: string | null;
  updatedBy: string | null;
}

export interface RestartTestJson {
  id: string;
  process: string;
  status: 'running' | 'finished';
  verdict: string | null;
  rtoSeconds: number | null;
  /** The tier number (system tier) that runs now; null once finished. */
  currentTier: number | null;
  tiers: Tier[];
  notTested: NotTested[];
  findings: Finding[];
  result: { measuredSeconds: number | null; rto: { targetSeconds: number | null; measuredSeconds: number | null; met: boolean | null }; tiers: { tier: number; state: string; seconds: number | null }[] } | null;
  triggeredBy: string;
  startedAt: string;
  finishedAt: string | null;
  cancelRequestedAt: string | null;
}

export function restartTestJson(r: RestartTestRow): RestartTestJson {
  return {
    id: r.id, process: r.process, status: r.status, verdict: r.verdict, rtoSeconds: r.rto_seconds,
    currentTier: r.status === 'running' ? ((r.tiers as Tier[])[r.current_tier]?.tier ?? null) : null,
    tiers: r.tiers as Tier[], notTested: r.not_tested as NotTested[], findings: r.findings as Finding[], result: r.result as RestartTestJson['result'],
    triggeredBy: r.triggered_by, startedAt: r.started_at.toISOString(), finishedAt: r.finished_at?.toISOString() ?? null,
    cancelRequestedAt: r.cancel_requested_at?.toISOString() ?? null,
  };
}

/**
 * Restart tests (issue #15 item 2, docs/decisions/024-restart-tests.md): the
 * systems of one business process restored tier by tier, each with its plan's
 * application group, the next tier only when every run of the tier before
 * passed; the sum of the tiers' times against the process's RTO, and a signed
 * record naming every run's record. The state is the `restart_tests` row: any
 * process holding the signing key advances it (advanceAll, every few seconds),
 * so a restart test outlives the process that started it.
 */
export class RestartTestService {
  private readonly repo: Repositories['restartTests'];
  private readonly systems: Repositories['systems'];
  private readonly ledgerRepo: Repositories['ledger'];
  private readonly runRepo: Repositories['runs'];
  constructor(
    private readonly db: Kysely<DB>,
    repos: Pick<Repositories, 'restartTests' | 'systems' | 'ledger' | 'runs'>,
    private readonly runs: RunService,
    private readonly ledger: LedgerService,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.repo = repos.restartTests;
    this.systems = repos.systems;
    this.ledgerRepo = repos.ledger;
    this.runRepo = repos.runs;
  }

  /** The tenant's processes: every name its systems give, and those with an RTO set, with their newest restart test. */
  async processes(tenantId: string): Promise<ProcessJson[]> {
    const [systems, stored, newest] = await Promise.all([this.systems.list(tenantId), this.repo.processes(tenantId), this.repo.newestPerProcess(tenantId)]);
    const names = new Set<string>([...systems.map((s) => s.process).filter((p): p is string => Boolean(p)), ...stored.map((p) => p.name)]);
    const out: ProcessJson[] = [];
    for (const name of [...names].sort((a, b) => a.localeCompare(b, 'de'))) {
      const row = stored.find((p) => p.name === name);
      const last = newest.find((t) => t.process === name);
      out.push({
        name, rtoSeconds: row?.rto_seconds ?? null,
        systems: systems.filter((s) => s.process === name).map((s) => ({ id: s.id, name: s.name, tier: s.tier })),
        lastTest: last ? {
          id: last.id, status: last.status, verdict: last.verdict, startedAt: last.started_at.toISOString(), finishedAt: last.finished_at?.toISOString() ?? null,
          measuredSeconds: (last.result as RestartTestJson['result'])?.measuredSeconds ?? null,
        } : null,
        updatedAt: row?.updated_at.toISOString() ?? null, updatedBy: row?.updated_by ?? null,
      });
    }
    return out;
  }

  /** Sets (or clears, with null) a process's RTO. */
  async putProcess(tenantId: string, name: string, input: { rto: string | null }, by: string): Promise<{ process: ProcessesTable; created: boolean }> {
    const trimmed = name.trim();
    if (!trimmed) throw new Invalid('invalid process', [{ path: 'name', message: 'the process\'s name, as its systems give it (e.g. "Meldewesen")' }]);
    let rtoSeconds: number | null = null;
    if (input.rto !== null) {
      try {
        rtoSeconds = Math.round(parseDuration(input.rto).seconds);
      } catch (err) {
        if (err instanceof DurationError) throw new Invalid('invalid process', [{ path: 'rto', message: err.message }]);
        throw err;
      }
      if (rtoSeconds < 1) throw new Invalid('invalid process', [{ path: 'rto', message: 'at least one second' }]);
    }
    const before = await this.repo.process(tenantId, trimmed);
    const process = await this.repo.putProcess({ tenant_id: tenantId, name: trimmed, rto_seconds: rtoSeconds, updated_by: by, updated_at: this.clock() });
    return { process, created: !before };
  }

  async get(tenantId: string, id: string): Promise<RestartTestJson> {
    const row = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? await this.repo.get(tenantId, id) : undefined;
    if (!row) throw new NotFound(`restart test ${id}`);
    return restartTestJson(row);
  }

  async list(tenantId: string, opts: { process?: string; limit?: number } = {}): Promise<RestartTestJson[]> {
    return (await this.repo.list(tenantId, { process: opts.process, limit: opts.limit ?? 50 })).map(restartTestJson);
  }

  /**
   * Starts a restart test of the process: its systems (not retired) with
   * their plans that restore a backup with services, in tier order; tier 1's
   * runs are queued at once. 404 for a process no system names; 409 when
   * none of its systems can be restarted automatically, one of their plans
   * has an active run, or a restart test of the process runs already.
   */
  async start(tenantId: string, processName: string, by: string): Promise<RestartTestJson> {
    const systems = (await this.systems.list(tenantId)).filter((s) => s.process === processName);
    if (!systems.length) throw new NotFound(`process ${processName}`);
    const plans = (await this.systems.plans(tenantId)).map((p) => ({ id: p.id, definition: p.definition as RestorePlan }));
    const { tiers, notTested } = planTiers(systems, plans);
    if (!tiers.length) {
      throw new Conflict(`no system of process ${processName} has a plan that restores a backup with services (an application group): nothing to restart`, { notTested });
    }
    for (const r of tiers.flatMap((t) => t.runs)) {
      const active = await this.runRepo.activeForPlan(tenantId, r.planId);
      if (active) throw new Conflict(`plan ${r.planId} (system ${r.systemName}) already has an active run; start the restart test when it has ended`, { activeRunId: active.id });
    }
    const process = await this.repo.process(tenantId, processName);
    const id = randomUUID();
    try {
      await this.repo.insert({
        id, tenant_id: tenantId, process: processName, status: 'running', verdict: null, rto_seconds: process?.rto_seconds ?? null, current_tier: 0,
        tiers: JSON.stringify(tiers), not_tested: JSON.stringify(notTested), findings: '[]', result: null, cancel_requested_at: null,
        triggered_by: by, started_at: this.clock(), finished_at: null,
      });
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
        const running = await this.repo.running(tenantId, processName);
        throw new Conflict(`a restart test of process ${processName} is already running`, { restartTestId: running?.id ?? null });
      }
      throw err;
    }
    this.log.info({ restartTestId: id, tenantId, process: processName, tiers: tiers.length, notTested: notTested.length }, 'restart test started');
    await this.advance(tenantId, id);
    return this.get(tenantId, id);
  }

  /** Cancels the runs of the tier that runs now; the test ends `cancelled` once they have ended. */
  async cancel(tenantId: string, id: string): Promise<RestartTestJson> {
    const current = await this.get(tenantId, id);
    if (current.status === 'finished') throw new Conflict(`restart test ${id} is already finished (${current.verdict})`);
    await this.db.transaction().execute(async (trx) => {
      const row = await this.repo.lockOne(trx, tenantId, id);
      if (row && row.status === 'running' && !row.cancel_requested_at) await this.repo.update(id, { cancel_requested_at: this.clock() }, trx);
    });
    await this.advance(tenantId, id);
    return this.get(tenantId, id);
  }

  /** One pass over every running restart test no other process holds: a few seconds apart, from RestartTestCoordinator. */
  async advanceAll(): Promise<number> {
    const records: LedgerRecord[] = [];
    const n = await this.db.transaction().execute(async (trx) => {
      const rows = await this.repo.lockRunning(trx);
      for (const row of rows) {
        const rec = await this.step(trx, row);
        if (rec) records.push(rec);
      }
      return rows.length;
    });
    for (const r of records) this.ledger.checkpoint(r);
    return n;
  }

  /** Advances one restart test now (after it was started or cancelled), waiting for another process holding it. */
  private async advance(tenantId: string, id: string): Promise<void> {
    const rec = await this.db.transaction().execute(async (trx) => {
      const row = await this.repo.lockOne(trx, tenantId, id);
      return row && row.status === 'running' ? this.step(trx, row) : undefined;
    });
    if (rec) this.ledger.checkpoint(rec);
  }

  /**
   * Brings a locked running restart test up to date: the current tier's runs
   * read again; its waiting runs started; a passed tier makes way for the
   * next; a tier that did not pass, the last tier, or a cancel ends the test
   * with its record. Returns the record when it ended.
   */
  private async step(trx: Transaction<DB>, row: RestartTestRow): Promise<LedgerRecord | undefined> {
    const tiers = row.tiers as Tier[];
    const extra = [...(row.findings as Finding[])];
    let cur = row.current_tier;
    const cancelling = row.cancel_requested_at !== null;
    for (;;) {
      const tier = tiers[cur];
      if (!tier) break;
      await this.refresh(trx, row.tenant_id, tier.runs);
      if (cancelling) {
        for (const r of tier.runs) {
          if (r.runId && r.status !== 'finished') {
            await this.runs.cancel(row.tenant_id, r.runId).catch((err: Error) => this.log.warn({ runId: r.runId, err: err.message }, 'restart test: cancelling a run failed'));
          } else if (!r.runId) Object.assign(r, { status: 'finished', verdict: 'cancelled' });
        }
        await this.refresh(trx, row.tenant_id, tier.runs);
      } else {
        for (const r of tier.runs.filter((x) => x.runId === null)) await this.startRun(row, r, extra);
      }
      tier.state = tierState(tier.runs);
      tier.seconds = tier.state === 'passed' ? tierSeconds(tier.runs) : null;
      if (tier.state === 'waiting' || tier.state === 'running') {
        await this.repo.update(row.id, { tiers: JSON.stringify(tiers), current_tier: cur, findings: JSON.stringify(extra) }, trx);
        return undefined;
      }
      if (tier.state !== 'passed' || cancelling) break;
      cur++;
    }
    for (const t of tiers.slice(cur + 1)) if (t.state === 'waiting') t.state = 'not started';
    if (cur >= tiers.length) cur = tiers.length;
    const c = conclude(tiers, row.not_tested as NotTested[], row.rto_seconds, cancelling);
    const findings = [...extra, ...c.findings];
    const verdict = c.verdict !== 'cancelled' && extra.some((f) => f.severity === 'error') ? 'error' : c.verdict;
    const finishedAt = this.clock();
    const record = await this.ledger.append(trx, {
      tenantId: row.tenant_id, kind: 'restart-test', subjectId: row.id, now: finishedAt,
      payload: {
        restartTest: {
          id: row.id, process: row.process, verdict, startedAt: row.started_at.toISOString(), finishedAt: finishedAt.toISOString(), triggeredBy: row.triggered_by,
          rto: c.result.rto, findings,
          tiers: tiers.map((t) => ({
            tier: t.tier, state: t.state, seconds: t.seconds,
            runs: t.runs.map((r) => ({ system: { id: r.systemId, name: r.systemName }, planId: r.planId, runId: r.runId, verdict: r.verdict, serviceRtoSeconds: r.serviceRtoSeconds, recordHash: r.recordHash })),
          })),
          notTested: row.not_tested,
        },
      },
    });
    await this.repo.update(row.id, {
      tiers: JSON.stringify(tiers), current_tier: cur, status: 'finished', verdict, findings: JSON.stringify(findings), result: JSON.stringify(c.result), finished_at: finishedAt,
    }, trx);
    this.log.info({ restartTestId: row.id, tenantId: row.tenant_id, process: row.process, verdict, measuredSeconds: c.result.measuredSeconds }, 'restart test finished');
    return record;
  }

  /** Queues a tier's run; a run this test started before a crash is found again by its `triggered_by`. */
  private async startRun(row: RestartTestRow, r: TierRun, extra: Finding[]): Promise<void> {
    try {
      const run = await this.runs.trigger(row.tenant_id, r.planId, { trigger: RESTART_TRIGGER, triggeredBy: triggeredBy(row.id) });
      Object.assign(r, { runId: run.id, status: run.status });
    } catch (err) {
      const mine = err instanceof Conflict ? await this.repo.activeRunOf(row.tenant_id, r.planId, triggeredBy(row.id)) : undefined;
      if (mine) {
        Object.assign(r, { runId: mine.id, status: 'queued' });
        return;
      }
      if (!(err instanceof DomainError)) throw err;
      Object.assign(r, { status: 'finished', verdict: 'error' });
      extra.push(finding('RESTART_RUN_NOT_STARTED', `tier ${r.systemName}: the run of plan ${r.planId} could not be started: ${err.message}`));
    }
  }

  /** Status, verdict, times, service RTO and evidence record of the tier's started runs. */
  private async refresh(trx: Transaction<DB>, tenantId: string, runs: TierRun[]): Promise<void> {
    const ids = runs.map((r) => r.runId).filter((x): x is string => x !== null);
    const rows = new Map((await this.repo.runs(tenantId, ids, trx)).map((r) => [r.id, r]));
    for (const r of runs) {
      const row = r.runId ? rows.get(r.runId) : undefined;
      if (!row) continue;
      const restore = row.restore as { serviceRtoSeconds?: number | null } | null;
      const rto = row.rto as { measuredSeconds?: number | null } | null;
      Object.assign(r, {
        status: row.status, verdict: row.verdict, startedAt: row.started_at?.toISOString() ?? null, finishedAt: row.finished_at?.toISOString() ?? null,
        serviceRtoSeconds: restore?.serviceRtoSeconds ?? (row.verdict === 'passed' ? (rto?.measuredSeconds ?? null) : null),
      });
      if (row.status === 'finished' && !r.recordHash) {
        r.recordHash = (await this.ledgerRepo.bySubject(tenantId, 'run', row.id, trx))[0]?.hash ?? null;
      }
    }
  }
}

/** Advances running restart tests every `pollMs` in a process that holds the signing key (api or scheduler role). */
export class RestartTestCoordinator {
  private timer?: NodeJS.Timeout;
  private busy?: Promise<void>;
  constructor(private readonly service: RestartTestService, private readonly log: Logger, private readonly pollMs = 2000) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = this.service.advanceAll().then(() => undefined, (err: Error) => this.log.error({ err: err.message }, 'restart tests could not be advanced')).finally(() => { this.busy = undefined; });
    }, this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.busy;
  }
}
