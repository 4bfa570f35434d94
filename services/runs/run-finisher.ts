import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DB, NewRun, RunRow, Verdict } from '../../db/schema.js';
import type { RunResult } from '../../db/repositories/run.repository.js';
import type { Repositories } from '../../db/repositories/index.js';
import { parseStoredOutcome } from './outcome-handover.js';
import type { Attachment, LedgerService } from '../evidence/ledger.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { runRecordPayload } from '../evidence/evidence-payload.js';
import { finding } from '../findings.js';
import { measureTargets } from './verdict.js';
import { skippedChecks } from '../../workers/checks/checks.js';
import { completePhases, type Phase } from '../../workers/engine/phases.js';
import type { Clock } from '../clock.js';

/** What a way of ending a run hands to the one transaction that stores it and its record. */
interface Finished {
  row: RunRow;
  attachments?: Attachment[];
  /** The record's time; default this process's clock. */
  at?: Date;
  /** The worker that handed the outcome over (central signing): named in the record. */
  reportedBy?: string;
  /** More records that belong to the run (an exercise's measures), in the same transaction, after the run's own. */
  also?: (trx: Transaction<DB>, row: RunRow) => Promise<LedgerRecord | undefined>;
}

/**
 * Every way a run ends goes through here: the run row becomes `finished` and
 * its evidence record is appended in the same transaction, so there is never
 * a finished run without a record (or a record of a run that is not finished).
 */
export class RunFinisher {
  private readonly runs: Repositories['runs'];
  private readonly plans: Repositories['plans'];
  private readonly outcomes: Repositories['outcomes'];
  constructor(
    private readonly db: Kysely<DB>,
    repos: Pick<Repositories, 'runs' | 'plans' | 'outcomes'>,
    private readonly ledger: LedgerService,
    private readonly log: Logger,
    /** Business time: when a run ends that nobody reported a time for (services/clock.ts). */
    private readonly clock: Clock,
    /** Also in the transaction: failure alerts into the notification outbox. */
    private readonly onFinished?: (trx: Transaction<DB>, row: RunRow, plan: RestorePlan | undefined) => Promise<void>,
  ) {
    this.runs = repos.runs;
    this.plans = repos.plans;
    this.outcomes = repos.outcomes;
  }

  finishClaimed(runId: string, workerId: string, result: RunResult & { verdict: Verdict }, attachments: Attachment[] = []): Promise<RunRow | undefined> {
    return this.finish(async (trx) => {
      const finishedAt = result.finishedAt ?? this.clock();
      const row = await this.runs.finish(runId, workerId, { ...result, finishedAt }, trx);
      return row && { row, attachments, at: finishedAt };
    });
  }

  /**
   * Central signing: ends the run a worker handed over (run_outcomes) and
   * signs its record, in one transaction that marks the outcome signed; a
   * second signer finds it signed and does nothing. The record's time is this
   * process's clock, and the record names the worker that reported it.
   */
  finishOutcome(runId: string): Promise<RunRow | undefined> {
    return this.finish(async (trx) => {
      const taken = await this.outcomes.take(runId, trx);
      if (!taken) return undefined;
      let o;
      try {
        o = parseStoredOutcome(taken.outcome);
      } catch (err) {
        // a malformed outcome is no evidence: the run ends as `error`, saying so
        this.log.error({ runId, workerId: taken.workerId, err: (err as Error).message }, 'a worker handed over an outcome that cannot be read');
        const row = await this.unclaimed(trx, runId, {
          verdict: 'error', findings: [finding('INTERNAL_ERROR', `the worker's outcome could not be read: ${(err as Error).message}`)],
        }, 'running');
        return row && { row, reportedBy: taken.workerId };
      }
      const row = o.mode === 'claimed'
        ? await this.runs.finish(runId, taken.workerId, { ...o.result, finishedAt: o.result.finishedAt ?? this.clock() }, trx)
        : await this.unclaimed(trx, runId, o.result, o.onlyStatus, { reaped: o.reaped });
      if (!row) this.log.warn({ runId, workerId: taken.workerId }, 'a handed-over outcome arrived for a run that had ended otherwise; it is kept unused');
      return row && { row, attachments: o.attachments, reportedBy: taken.workerId };
    });
  }

  /**
   * Ends a run no worker completes (cancel before start, a lost worker) in the
   * same shape as every run: RTO/RPO objects with nothing measured, every
   * check skipped with a reason, phases that did not run marked skipped.
   */
  finishUnclaimed(
    runId: string, result: RunResult & { verdict: Verdict }, onlyStatus: 'queued' | 'running',
    /** A lost worker's run: how many sandboxes the reaper removed for it (its teardown). Attachments: hashed into its record (a manual test's evidence). */
    opts: {
      reaped?: number; attachments?: Attachment[];
      /** Runs first in the transaction, with the run's row locked: throws if what the caller decided on has changed meanwhile. */
      before?: (trx: Transaction<DB>, current: RunRow) => Promise<void>;
      also?: (trx: Transaction<DB>, row: RunRow) => Promise<LedgerRecord | undefined>;
    } = {},
  ): Promise<RunRow | undefined> {
    return this.finish(async (trx) => {
      const row = await this.unclaimed(trx, runId, result, onlyStatus, opts);
      return row && { row, attachments: opts.attachments, at: result.finishedAt, also: opts.also };
    });
  }

  private async unclaimed(
    trx: Transaction<DB>, runId: string, result: RunResult & { verdict: Verdict }, onlyStatus: 'queued' | 'running',
    opts: { reaped?: number; before?: (trx: Transaction<DB>, current: RunRow) => Promise<void> } = {},
  ): Promise<RunRow | undefined> {
    const current = opts.before
      ? await this.runs.getByIdForUpdate(runId, trx)
      : await this.runs.getById(runId, trx);
    if (!current) return undefined;
    await opts.before?.(trx, current);
    const plan = (await this.plans.getVersion(current.tenant_id, current.plan_id, current.plan_version_hash, trx)) as RestorePlan | undefined;
    const reason = result.verdict === 'cancelled' ? 'abgebrochen' : 'nicht ausgeführt: Test nicht abgeschlossen';
    // a phase a heartbeat stored as running ended with the worker's last sign of life: its age on the
    // database's clock (a lease), placed on the business clock the phases were timed with
    const heartbeatAge = await this.runs.heartbeatAgeSeconds(runId, trx);
    const lastSeen = new Date(this.clock().getTime() - Math.max(0, heartbeatAge ?? 0) * 1000);
    const phases = completePhases((current.phases as Phase[] | null) ?? [], lastSeen, 'the worker stopped responding during this phase');
    if (opts.reaped !== undefined) {
      const teardown = phases.find((p) => p.name === 'teardown')!;
      Object.assign(teardown, { status: 'ok', startedAt: this.clock().toISOString(), durationMs: 0, note: `the reaper removed ${opts.reaped} sandbox(es) of this run` });
    }
    const full: RunResult & { verdict: Verdict } = {
      phases,
      checks: plan ? skippedChecks(plan.checks, reason) : [],
      ...(plan ? measureTargets(plan.targets, null, null) : {}),
      ...result,
    };
    return this.runs.finishUnclaimed(runId, { ...full, finishedAt: full.finishedAt ?? this.clock() }, onlyStatus, trx);
  }

  /**
   * Stores a run that is already over when ernstfall hears of it (a result another tool reports):
   * inserted finished, with its ledger record and alerts in the same transaction.
   */
  recordFinished(run: Omit<NewRun, 'queued_at'>, result: RunResult & { verdict: Verdict; finishedAt: Date }, startedAt: Date, attachments: Attachment[] = []): Promise<RunRow> {
    return this.finish(async (trx) => {
      await this.runs.insert({
        ...run, status: 'finished', verdict: result.verdict, queued_at: result.finishedAt, started_at: startedAt, finished_at: result.finishedAt,
        ...Object.fromEntries((['phases', 'checks', 'findings', 'rto', 'rpo', 'backup', 'sandbox', 'restore'] as const)
          .filter((k) => result[k] !== undefined).map((k) => [k, JSON.stringify(result[k])])),
      }, trx);
      const row = await this.runs.getById(run.id, trx);
      return row && { row, attachments, at: result.finishedAt };
    }).then((row) => row!);
  }

  private async finish(update: (trx: Transaction<DB>) => Promise<Finished | undefined>): Promise<RunRow | undefined> {
    const out = await this.db.transaction().execute(async (trx) => {
      const done = await update(trx);
      if (!done) return undefined;
      const { row } = done;
      const plan = (await this.plans.getVersion(row.tenant_id, row.plan_id, row.plan_version_hash, trx)) as RestorePlan | undefined;
      const record = await this.ledger.append(trx, {
        tenantId: row.tenant_id, kind: 'run', subjectId: row.id,
        payload: runRecordPayload(row, plan, done.reportedBy),
        attachments: done.attachments ?? [],
        now: done.at,
      });
      const last = (await done.also?.(trx, row)) ?? record;
      await this.onFinished?.(trx, row, plan);
      return { row, record: last };
    });
    if (!out) return undefined;
    this.ledger.checkpoint(out.record);
    this.log.debug({ runId: out.row.id, seq: out.record.seq }, 'run recorded in the evidence ledger');
    return out.row;
  }
}
