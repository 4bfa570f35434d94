import type { Repositories } from '../../db/repositories/index.js';
import type { QueueRunRow } from '../../db/repositories/queue.repository.js';
import type { QueueJobFacts, RunQueue } from '../../workers/queue.js';
import type { AuditActor, AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/principal.js';
import { isProviderAdmin } from '../auth/tenant.service.js';
import { Conflict, DomainError, Forbidden, NotFound, Unauthorized } from '../errors.js';
import type { PoolService } from './pools.js';
import type { Clock } from '../clock.js';

/**
 * Whose jobs a principal sees. The installation (every tenant, every pool)
 * is the service provider's: a provider admin, or the bootstrap token, which
 * the code treats as the installation's set-up admin (it may create tenants).
 * It shows jobs by tenant, run and state, never which plan they test: that is
 * the tenant's data, which a provider admin sees only inside the tenant under its grant.
 * A tenant's admin sees only jobs of the tenant's runs. Everyone else: 403.
 */
export type QueueScope = { kind: 'installation' } | { kind: 'tenant'; tenantId: string };

export function queueScope(p: Principal | undefined): QueueScope {
  if (!p) throw new Unauthorized();
  if (p.kind === 'bootstrap' || isProviderAdmin(p)) return { kind: 'installation' };
  if (p.role === 'admin' && p.tenantId) return { kind: 'tenant', tenantId: p.tenantId };
  throw new Forbidden(`this needs the role admin; you have ${p.role}`);
}

/** Redis did not answer: the view cannot be shown, nothing was changed. */
export class QueueUnavailable extends DomainError {
  constructor(message: string) {
    super(503, 'ServiceUnavailable', message);
  }
}

export const QUEUE_STATES = ['waiting', 'active', 'failed'] as const;
export type QueueViewState = (typeof QUEUE_STATES)[number];

/** Jobs listed per pool and state (the counts cover all of them). */
export const LIST_LIMIT = 100;
/** A tenant's jobs are found among this many jobs per pool and state; beyond it a tenant's count is a lower bound (`exact: false`). */
export const SCAN_LIMIT = 2000;
/** Failure reasons are cut to this many characters. */
export const REASON_MAX = 300;

/**
 * A failure reason fit to show: one line, at most REASON_MAX characters,
 * credentials in URLs, tokens and `password=`-like values blanked. Job
 * payloads hold only ids; the reason is the one free text a job carries.
 */
export function cleanReason(reason: string, max = REASON_MAX): string {
  let t = reason.replace(/\s+/g, ' ').trim();
  t = t.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@');
  t = t.replace(/\b(efi?_)[A-Za-z0-9_-]{8,}/g, '$1[redacted]');
  t = t.replace(/\b(bearer\s+)\S+/gi, '$1[redacted]');
  t = t.replace(/\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1$2[redacted]');
  const chars = Array.from(t);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : t;
}

export interface QueueJobView {
  jobId: string;
  runId: string | null;
  pool: string;
  state: QueueViewState;
  planId: string | null;
  planTitle: string | null;
  /** Only in the installation's view. */
  tenant?: { id: string; slug: string; name: string } | null;
  runStatus: 'queued' | 'running' | 'finished' | null;
  verdict: string | null;
  enqueuedAt: string;
  /** Seconds since the job was enqueued. */
  ageSeconds: number;
  startedAt: string | null;
  failedAt: string | null;
  failedReason: string | null;
  attemptsMade: number;
}

export interface QueueStateView {
  count: number;
  /** false: a tenant's count is a lower bound (the pool had more than SCAN_LIMIT jobs in this state). */
  exact: boolean;
  jobs: QueueJobView[];
}

export interface QueuePoolView {
  pool: string;
  /** Live workers connected to the pool's queue; null when Redis did not answer. */
  workers: number | null;
  waiting: QueueStateView;
  active: QueueStateView;
  failed: QueueStateView;
}

export interface QueueOverview {
  scope: 'installation' | 'tenant';
  at: string;
  pools: QueuePoolView[];
}

export interface QueueActionBy {
  actor: AuditActor;
  ip?: string;
}

const unavailable = (err: unknown): never => {
  if (err instanceof DomainError) throw err;
  throw new QueueUnavailable(`the queue is not reachable: ${(err as Error).message}`);
};

/**
 * The queue as an admin sees it (issue 13 item 6): per worker pool the live
 * workers and the waiting, active and failed jobs, each with its run; retry
 * and removal of failed jobs, both audited in the run's tenant's trail.
 */
export class QueueOpsService {
  private readonly repo: Repositories['queue'];
  private readonly poolRepo: Repositories['pools'];
  constructor(
    repos: Pick<Repositories, 'queue' | 'pools'>, private readonly queue: RunQueue, private readonly pools: PoolService, private readonly declared: string[],
    private readonly audit: AuditService, private readonly now: Clock,
  ) {
    this.repo = repos.queue;
    this.poolRepo = repos.pools;
  }

  async overview(scope: QueueScope): Promise<QueueOverview> {
    const tenantId = scope.kind === 'tenant' ? scope.tenantId : undefined;
    // the installation: the declared pools and any with runs waiting or running; a tenant: the declared pools and those its plans name
    const pools: { pool: string; workers: number | null }[] = tenantId === undefined
      ? (await this.pools.states()).map((s) => ({ pool: s.pool, workers: s.workers }))
      : await Promise.all([...new Set([...this.declared, ...await this.poolRepo.ofTenant(tenantId)])].sort()
        .map(async (pool) => ({ pool, workers: await this.queue.workers(pool).catch(() => null) })));
    const take = tenantId === undefined ? LIST_LIMIT : SCAN_LIMIT;
    const fetched = await Promise.all(pools.map(async (p) => {
      const counts = await this.queue.counts(p.pool);
      const byState = await Promise.all(QUEUE_STATES.map((state) => this.queue.jobs(p.pool, state, 0, take - 1)));
      return { ...p, counts, byState };
    })).catch(unavailable);
    const runIds = fetched.flatMap((p) => p.byState.flat().map((j) => j.runId ?? ''));
    const runs = new Map((await this.repo.runs(runIds, tenantId)).map((r) => [r.id, r]));
    const now = this.now();
    return {
      scope: scope.kind,
      at: now.toISOString(),
      pools: fetched.map((p) => {
        const out = { pool: p.pool, workers: p.workers } as QueuePoolView;
        QUEUE_STATES.forEach((state, i) => {
          const facts = p.byState[i]!;
          const total = Number((p.counts as Record<string, number>)[state] ?? 0);
          if (tenantId === undefined) {
            out[state] = { count: total, exact: true, jobs: facts.map((f) => this.view(f, p.pool, state, runs.get(f.runId ?? ''), true, now)) };
          } else {
            const mine = facts.filter((f) => runs.has(f.runId ?? ''));
            out[state] = { count: mine.length, exact: total <= SCAN_LIMIT, jobs: mine.slice(0, LIST_LIMIT).map((f) => this.view(f, p.pool, state, runs.get(f.runId!), false, now)) };
          }
        });
        return out;
      }),
    };
  }

  /** Moves a failed job back to waiting: only while its run is still `queued` (a finished or running run is never run again by it). */
  async retry(scope: QueueScope, runId: string, by: QueueActionBy): Promise<QueueJobView> {
    const { run, job } = await this.failedJob(scope, runId);
    if (run.status !== 'queued') {
      throw new Conflict(run.status === 'finished'
        ? `run ${run.id} is finished (verdict ${run.verdict ?? 'none'}): its failed job is not retried, that would test plan ${run.planId} again under a finished run; start a new run instead`
        : `run ${run.id} is running on a worker: only the job of a queued run is retried`, { runStatus: run.status, verdict: run.verdict });
    }
    const ok = await this.queue.retryFailed(run.id, run.pool).catch(unavailable);
    if (!ok) throw new Conflict(`the job of run ${run.id} is no longer failed (retried or removed meanwhile)`);
    await this.record(run, job, 'queue.job-retried', by);
    const after = await this.queue.jobOfRun(run.id, run.pool).catch(() => undefined);
    return this.view(after ?? { ...job, state: 'waiting' }, run.pool, 'waiting', run, scope.kind === 'installation', this.now());
  }

  /** Removes a failed job (any run state: a still queued run gets a new job from the worker's maintenance pass). */
  async remove(scope: QueueScope, runId: string, by: QueueActionBy): Promise<void> {
    const { run, job } = await this.failedJob(scope, runId);
    const ok = await this.queue.removeFailed(run.id, run.pool).catch(unavailable);
    if (!ok) throw new Conflict(`the job of run ${run.id} is no longer failed (retried or removed meanwhile)`);
    await this.record(run, job, 'queue.job-removed', by);
  }

  /** The run (in scope: another tenant's run is 404) and its failed job (404 when it has none). */
  private async failedJob(scope: QueueScope, runId: string): Promise<{ run: QueueRunRow; job: QueueJobFacts }> {
    const [run] = await this.repo.runs([runId], scope.kind === 'tenant' ? scope.tenantId : undefined);
    if (!run) throw new NotFound(`run ${runId}`);
    const job = await this.queue.jobOfRun(run.id, run.pool).catch(unavailable);
    if (!job || job.state !== 'failed') throw new NotFound(`failed job of run ${run.id}`);
    return { run, job };
  }

  private async record(run: QueueRunRow, job: QueueJobFacts, action: 'queue.job-retried' | 'queue.job-removed', by: QueueActionBy): Promise<void> {
    // in the run's tenant's trail, also when the provider acted: the tenant sees who touched its run
    await this.audit.record({
      tenantId: run.tenantId, actor: by.actor, ...(by.ip && { ip: by.ip }), action, subject: { type: 'run', id: run.id },
      details: { planId: run.planId, pool: run.pool, runStatus: run.status, failedReason: cleanReason(job.failedReason ?? '') },
    });
  }

  private view(f: QueueJobFacts, pool: string, state: QueueViewState, run: QueueRunRow | undefined, withTenant: boolean, now: Date): QueueJobView {
    return {
      jobId: f.jobId,
      runId: run?.id ?? f.runId ?? null,
      pool, state,
      // the installation's view is the provider's: which plan a job tests is the tenant's data (seen only under a grant, inside the tenant)
      planId: withTenant ? null : run?.planId ?? null,
      planTitle: withTenant ? null : run?.planTitle ?? null,
      ...(withTenant && { tenant: run ? { id: run.tenantId, slug: run.tenantSlug, name: run.tenantName } : null }),
      runStatus: run?.status ?? null,
      verdict: run?.verdict ?? null,
      enqueuedAt: f.enqueuedAt.toISOString(),
      ageSeconds: Math.max(0, Math.round((now.getTime() - f.enqueuedAt.getTime()) / 1000)),
      startedAt: f.startedAt?.toISOString() ?? null,
      failedAt: state === 'failed' ? f.finishedAt?.toISOString() ?? null : null,
      failedReason: state === 'failed' ? cleanReason(f.failedReason ?? '') : null,
      attemptsMade: f.attemptsMade,
    };
  }
}
