import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DB, ProcessesTable, RestartTestsTable } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;
export type RestartTestRow = Selectable<RestartTestsTable>;

/** Processes' RTOs and restart tests (docs/decisions/024-restart-tests.md). */
export class RestartTestRepository {
  constructor(private readonly db: Kysely<DB>) {}

  processes(tenantId: string, trx: Db = this.db): Promise<ProcessesTable[]> {
    return trx.selectFrom('processes').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
  }

  process(tenantId: string, name: string, trx: Db = this.db): Promise<ProcessesTable | undefined> {
    return trx.selectFrom('processes').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
  }

  putProcess(row: ProcessesTable, trx: Db = this.db): Promise<ProcessesTable> {
    return trx.insertInto('processes').values(row)
      .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet({ rto_seconds: row.rto_seconds, updated_by: row.updated_by, updated_at: row.updated_at }))
      .returningAll().executeTakeFirstOrThrow();
  }

  insert(row: Omit<RestartTestRow, 'tiers' | 'not_tested' | 'findings' | 'result'> & { tiers: string; not_tested: string; findings: string; result: string | null }, trx: Db = this.db): Promise<void> {
    return trx.insertInto('restart_tests').values(row).execute().then(() => undefined);
  }

  get(tenantId: string, id: string, trx: Db = this.db): Promise<RestartTestRow | undefined> {
    return trx.selectFrom('restart_tests').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  running(tenantId: string, process: string, trx: Db = this.db): Promise<RestartTestRow | undefined> {
    return trx.selectFrom('restart_tests').selectAll().where('tenant_id', '=', tenantId).where('process', '=', process).where('status', '=', 'running').executeTakeFirst();
  }

  /** Newest first; one process's, or the tenant's. */
  list(tenantId: string, opts: { process?: string; limit: number }, trx: Db = this.db): Promise<RestartTestRow[]> {
    let q = trx.selectFrom('restart_tests').selectAll().where('tenant_id', '=', tenantId);
    if (opts.process !== undefined) q = q.where('process', '=', opts.process);
    return q.orderBy('started_at', 'desc').limit(opts.limit).execute();
  }

  /** The newest restart test of each of the tenant's processes (one query, however many there are). */
  newestPerProcess(tenantId: string, trx: Db = this.db): Promise<RestartTestRow[]> {
    return trx.selectFrom('restart_tests').selectAll().distinctOn('process').where('tenant_id', '=', tenantId)
      .orderBy('process').orderBy('started_at', 'desc').execute();
  }

  /** The running tests no other process holds right now (locked until the transaction ends). */
  lockRunning(trx: Transaction<DB>, limit = 50): Promise<RestartTestRow[]> {
    return trx.selectFrom('restart_tests').selectAll().where('status', '=', 'running')
      .orderBy('started_at').limit(limit).forUpdate().skipLocked().execute();
  }

  lockOne(trx: Transaction<DB>, tenantId: string, id: string): Promise<RestartTestRow | undefined> {
    return trx.selectFrom('restart_tests').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
  }

  update(id: string, values: { tiers?: string; current_tier?: number; status?: 'finished'; verdict?: RestartTestRow['verdict']; findings?: string; result?: string; finished_at?: Date; cancel_requested_at?: Date }, trx: Db): Promise<void> {
    return trx.updateTable('restart_tests').set(values).where('id', '=', id).execute().then(() => undefined);
  }

  /** What a restart test needs of its runs: status, verdict, times and the service RTO. */
  runs(tenantId: string, ids: string[], trx: Db = this.db) {
    if (!ids.length) return Promise.resolve([]);
    return trx.selectFrom('runs').select(['id', 'status', 'verdict', 'started_at', 'finished_at', 'restore', 'rto', 'trigger', 'triggered_by', 'plan_id'])
      .where('tenant_id', '=', tenantId).where('id', 'in', ids).execute();
  }

  /** The active run of a plan that this restart test started (found again after a crash between start and store). */
  activeRunOf(tenantId: string, planId: string, triggeredBy: string, trx: Db = this.db) {
    return trx.selectFrom('runs').select(['id']).where('tenant_id', '=', tenantId).where('plan_id', '=', planId)
      .where('status', 'in', ['queued', 'running']).where('triggered_by', '=', triggeredBy).executeTakeFirst();
  }
}
