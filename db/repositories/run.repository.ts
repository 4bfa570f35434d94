import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, NewRun, RunRow, Verdict } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

const runColumns = [
  'id', 'tenant_id', 'plan_id', 'plan_version_hash', 'status', 'verdict', 'trigger', 'triggered_by', 'slot',
  'queued_at', 'started_at', 'finished_at', 'heartbeat_at', 'worker_id', 'attempts', 'cancel_requested_at',
  'phases', 'checks', 'findings', 'rto', 'rpo', 'backup', 'sandbox', 'restore', 'origin', 'external_id', 'pool',
] as const;

export interface RunFilter {
  tenantId: string;
  planId?: string;
  verdict?: Verdict;
  status?: string;
  from?: Date;
  to?: Date;
  limit: number;
  /** Keyset cursor: runs strictly older than this (queued_at as text with the database's microseconds, id). */
  before?: { queuedAt: string; id: string };
}

/** What a finished (or progressing) run writes back. */
export interface RunResult {
  verdict?: Verdict | null;
  phases?: unknown[];
  checks?: unknown[];
  findings?: unknown[];
  rto?: unknown;
  rpo?: unknown;
  backup?: unknown;
  sandbox?: unknown;
  restore?: unknown;
  /** When it ended; default now (a seam for importing or seeding history). */
  finishedAt?: Date;
}

function resultColumns(r: RunResult): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const key of ['phases', 'checks', 'findings', 'rto', 'rpo', 'backup', 'sandbox', 'restore'] as const) {
    if (r[key] !== undefined) out[key] = r[key] === null ? null : JSON.stringify(r[key]);
  }
  return out;
}

export class RunRepository {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(run: NewRun, trx: Db = this.db): Promise<void> {
    await trx.insertInto('runs').values(run).execute();
  }

  get(tenantId: string, id: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns).where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  /** The run a tool's result with this id became (a result reported twice is one run). */
  byExternalId(tenantId: string, planId: string, externalId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('external_id', '=', externalId).executeTakeFirst();
  }

  /** For workers, which learn the tenant from the run itself. */
  getById(id: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns).where('id', '=', id).executeTakeFirst();
  }

  /** The run, locked until the transaction ends (whoever decides on it first holds it). */
  getByIdForUpdate(id: string, trx: Transaction<DB>): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns).where('id', '=', id).forUpdate().executeTakeFirst();
  }

  /** The tenant's run, locked until the transaction ends. */
  getForUpdate(tenantId: string, id: string, trx: Transaction<DB>): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns).where('tenant_id', '=', tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
  }

  /** The run's checks (a manual test's steps, an exercise's observations). */
  async checks(tenantId: string, id: string, trx: Db = this.db): Promise<unknown[]> {
    return (await trx.selectFrom('runs').select('checks').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirstOrThrow()).checks;
  }

  async setChecks(tenantId: string, id: string, checks: unknown[], trx: Db = this.db): Promise<void> {
    await trx.updateTable('runs').set({ checks: JSON.stringify(checks) as never }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
  }

  /**
   * Appends to a running run's checks only if it still has `expectedLength` of
   * them: two people writing at once, the second one's list must contain the
   * first one's entry. False when the run changed meanwhile.
   */
  async setChecksIfUnchanged(tenantId: string, id: string, checks: unknown[], expectedLength: number, trx: Db = this.db): Promise<boolean> {
    const updated = await trx.updateTable('runs').set({ checks: JSON.stringify(checks) as never })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('status', '=', 'running')
      .where(({ eb, fn }) => eb(fn('jsonb_array_length', ['checks']), '=', expectedLength))
      .returning('id').executeTakeFirst();
    return updated !== undefined;
  }

  activeForPlan(tenantId: string, planId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('status', '<>', 'finished')
      .executeTakeFirst();
  }

  /** The newest finished run of a plan that got as far as reading a backup. */
  lastWithBackup(tenantId: string, planId: string, excludeRunId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('id', '<>', excludeRunId)
      .where('status', '=', 'finished').where('backup', 'is not', null)
      .where(sql<boolean>`backup->>'sha256' is not null`)
      .orderBy('queued_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  /** The newest passed or failed run: with lastPassed, all the plan status needs, however long the history. */
  lastDecisive(tenantId: string, planId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('verdict', 'in', ['passed', 'failed'])
      .orderBy('finished_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  lastFinished(tenantId: string, planId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('status', '=', 'finished')
      .orderBy('finished_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  /** The newest finished run of every plan of the tenant, in one query. */
  lastFinishedAll(tenantId: string, trx: Db = this.db): Promise<Pick<RunRow, 'id' | 'plan_id' | 'verdict' | 'finished_at'>[]> {
    return trx.selectFrom('runs').select(['id', 'plan_id', 'verdict', 'finished_at'])
      .distinctOn('plan_id')
      .where('tenant_id', '=', tenantId).where('status', '=', 'finished')
      .orderBy('plan_id').orderBy('finished_at', 'desc').orderBy('id', 'desc').execute();
  }

  lastPassed(tenantId: string, planId: string, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.selectFrom('runs').select(runColumns)
      .where('tenant_id', '=', tenantId).where('plan_id', '=', planId).where('verdict', '=', 'passed')
      .orderBy('finished_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  list(f: RunFilter, trx: Db = this.db): Promise<(RunRow & { queued_at_us: string })[]> {
    let q = trx.selectFrom('runs').select(runColumns)
      // a Date keeps milliseconds, the column microseconds: the cursor takes the full value as text (runs in one millisecond stay apart)
      .select(sql<string>`to_char(queued_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('queued_at_us'))
      .where('tenant_id', '=', f.tenantId);
    if (f.planId) q = q.where('plan_id', '=', f.planId);
    if (f.verdict) q = q.where('verdict', '=', f.verdict);
    if (f.status) q = q.where('status', '=', f.status as RunRow['status']);
    if (f.from) q = q.where('queued_at', '>=', f.from);
    if (f.to) q = q.where('queued_at', '<', f.to);
    if (f.before) {
      const b = f.before;
      const at = sql<Date>`${b.queuedAt}::timestamptz`;
      q = q.where((eb) => eb.or([
        eb('queued_at', '<', at),
        eb.and([eb('queued_at', '=', at), eb('id', '<', b.id)]),
      ]));
    }
    return q.orderBy('queued_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
  }

  /**
   * queued -> running for this worker. Returns undefined when the run is not
   * queued any more (cancelled meanwhile, or another worker has it).
   */
  claim(id: string, workerId: string, at: Date, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.updateTable('runs')
      .set({ status: 'running', worker_id: workerId, started_at: at, heartbeat_at: sql`now()`, attempts: sql`attempts + 1` })
      // a run whose cancel was requested as it was being picked up is not started
      .where('id', '=', id).where('status', '=', 'queued').where('cancel_requested_at', 'is', null)
      .returning(runColumns).executeTakeFirst();
  }

  async heartbeat(id: string, workerId: string, progress?: RunResult): Promise<{ cancelRequested: boolean } | undefined> {
    const row = await this.db.updateTable('runs')
      .set({ heartbeat_at: sql`now()`, ...(progress ? resultColumns(progress) : {}) })
      .where('id', '=', id).where('status', '=', 'running').where('worker_id', '=', workerId)
      .returning(['cancel_requested_at']).executeTakeFirst();
    return row ? { cancelRequested: row.cancel_requested_at !== null } : undefined;
  }

  /** running -> finished, only for the worker that holds it. Returns the finished row. */
  finish(id: string, workerId: string, result: RunResult & { verdict: Verdict; finishedAt: Date }, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.updateTable('runs')
      .set({ status: 'finished', verdict: result.verdict, finished_at: result.finishedAt, heartbeat_at: sql`now()`, ...resultColumns(result) })
      .where('id', '=', id).where('status', '=', 'running').where('worker_id', '=', workerId)
      .returning(runColumns).executeTakeFirst();
  }

  /** Ends a run that no worker holds (cancel before start, a lost worker). Returns the finished row. */
  finishUnclaimed(id: string, result: RunResult & { verdict: Verdict; finishedAt: Date }, onlyStatus: 'queued' | 'running', trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.updateTable('runs')
      .set({ status: 'finished', verdict: result.verdict, finished_at: result.finishedAt, ...resultColumns(result) })
      .where('id', '=', id).where('status', '=', onlyStatus)
      .returning(runColumns).executeTakeFirst();
  }

  async requestCancel(tenantId: string, id: string, at: Date, trx: Db = this.db): Promise<RunRow | undefined> {
    return trx.updateTable('runs').set({ cancel_requested_at: at })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('status', '<>', 'finished')
      .returning(runColumns).executeTakeFirst();
  }

  /**
   * How long ago (seconds) the run's worker last beat, on the database's clock — the heartbeat is a lease,
   * so its age is measured on the clock that wrote it; null without a heartbeat.
   */
  async heartbeatAgeSeconds(id: string, trx: Db = this.db): Promise<number | null> {
    const row = await trx.selectFrom('runs').select(sql<number | null>`extract(epoch from now() - heartbeat_at)::float8`.as('age'))
      .where('id', '=', id).executeTakeFirst();
    return row?.age ?? null;
  }

  /** Running runs whose worker stopped sending heartbeats; the database's clock on both sides, so hosts' clock skew does not matter. */
  stale(seconds: number, opts: { pools?: string[] } = {}, trx: Db = this.db): Promise<RunRow[]> {
    let q = trx.selectFrom('runs').select(runColumns);
    // a worker judges only its own pools' runs: another pool's sandbox is on an engine it cannot see
    if (opts.pools) q = q.where('pool', 'in', opts.pools);
    return q
      // a manual test has no worker and no heartbeat: people take their time
      .where('status', '=', 'running').where('origin', '=', 'ernstfall')
      .where('heartbeat_at', '<', sql<Date>`now() - make_interval(secs => ${seconds})`)
      // a worker that handed its outcome over sends no more heartbeats: the run waits for a signer, it is not lost
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('run_outcomes').select('run_id').whereRef('run_outcomes.run_id', '=', 'runs.id'))))
      .execute();
  }

  /** Status per known run id, to tell the reaper which sandboxes to keep. */
  async statuses(ids: string[], trx: Db = this.db): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await trx.selectFrom('runs').select(['id', 'status']).where('id', 'in', ids).execute();
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  queuedOlderThan(olderThan: Date, trx: Db = this.db): Promise<RunRow[]> {
    return trx.selectFrom('runs').select(runColumns).where('status', '=', 'queued').where('queued_at', '<', olderThan).execute();
  }
}
