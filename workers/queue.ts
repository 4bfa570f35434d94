import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_NAMES, jobIdForRun, queueNameForPool, type JobPayloads } from './jobs.js';
import { DEFAULT_POOL } from '../services/sandbox-policy.js';

export function redisConnection(url: string): Redis {
  // BullMQ workers need maxRetriesPerRequest null (blocking commands).
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/**
 * For producers (the API enqueuing, maintenance looking up jobs): fail fast
 * while Redis is down instead of queueing commands forever, so requests and
 * maintenance passes do not hang.
 */
export function producerConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 3000, commandTimeout: 5000 });
}

/** BullMQ waits for a connection forever; callers (API requests, maintenance) must not. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`queue not reachable: ${what} took over ${ms} ms (is Redis up?)`)), ms);
      timer.unref();
    }),
  ]);
}

const QUEUE_TIMEOUT_MS = 5000;

/**
 * One BullMQ queue per worker pool: a run waits in its pool's queue until a
 * worker of that pool takes it. Queues are made on first use.
 */
export class RunQueue {
  private readonly queues = new Map<string, Queue>();
  constructor(private readonly connection: ConnectionOptions, private readonly prefix = 'ernstfall') {}

  /** The queue of a pool (the default pool's keeps the queue name of before pools). */
  forPool(pool: string = DEFAULT_POOL): Queue {
    let q = this.queues.get(pool);
    if (!q) {
      q = new Queue(queueNameForPool(pool), { connection: this.connection, prefix: this.prefix });
      // Redis errors are reported by the connection's owner; an unhandled 'error' event would crash the process
      q.on('error', () => undefined);
      this.queues.set(pool, q);
    }
    return q;
  }

  /** The default pool's queue. */
  get queue(): Queue {
    return this.forPool(DEFAULT_POOL);
  }

  async enqueueRestoreTest(payload: JobPayloads['restore-test'], pool: string = DEFAULT_POOL): Promise<void> {
    await bounded(this.forPool(pool).add(JOB_NAMES.restoreTest, payload, {
      jobId: jobIdForRun(payload.runId),
      // the run itself is never retried blindly: a lost worker ends the run as `error`
      attempts: 1,
      removeOnComplete: { age: 24 * 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    }), QUEUE_TIMEOUT_MS, 'enqueue');
  }

  /** Live workers of a pool (connected to its queue in Redis). */
  workers(pool: string): Promise<number> {
    return bounded(this.forPool(pool).getWorkersCount(), QUEUE_TIMEOUT_MS, 'worker count');
  }

  /** Waiting, active and failed jobs of a pool's queue. */
  counts(pool: string): Promise<{ waiting: number; active: number; failed: number; delayed: number }> {
    return bounded(this.forPool(pool).getJobCounts('waiting', 'active', 'failed', 'delayed'), QUEUE_TIMEOUT_MS, 'job counts') as never;
  }

  /** Removes a job that has not started; false when it is running or gone. */
  async removeQueued(runId: string, pool: string = DEFAULT_POOL): Promise<boolean> {
    const job = await bounded(this.forPool(pool).getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup').catch(() => undefined);
    if (!job) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  /** Whether a job for the run is still waiting or active (a failed or completed one does not count). */
  async pending(runId: string, pool: string = DEFAULT_POOL): Promise<boolean> {
    const job = await bounded(this.forPool(pool).getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup');
    if (!job) return false;
    const state = await job.getState();
    if (state === 'failed' || state === 'completed' || state === 'unknown') {
      // a job that ended while its run is still queued would block the id: clear it so the run can be enqueued again
      await job.remove().catch(() => undefined);
      return false;
    }
    return true;
  }

  /**
   * Jobs of a pool's queue in one state, as plain facts (no payload beyond
   * runId/tenantId: that is all a job holds). Waiting and active oldest first,
   * failed newest first; `start`/`end` as in BullMQ (inclusive).
   */
  async jobs(pool: string, state: 'waiting' | 'active' | 'failed', start: number, end: number): Promise<QueueJobFacts[]> {
    const list = await bounded(this.forPool(pool).getJobs([state], start, end, state !== 'failed'), QUEUE_TIMEOUT_MS, 'job list');
    return list.filter((j) => j !== undefined && j !== null).map((j) => jobFacts(j as never, state));
  }

  /** The run's job in a pool's queue and its state; undefined when there is none. */
  async jobOfRun(runId: string, pool: string = DEFAULT_POOL): Promise<QueueJobFacts | undefined> {
    const job = await bounded(this.forPool(pool).getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup');
    if (!job) return undefined;
    const state = await bounded(job.getState(), QUEUE_TIMEOUT_MS, 'job state');
    return jobFacts(job as never, state as QueueJobState);
  }

  /**
   * Moves the run's failed job back to waiting (same job id, attempts reset).
   * False when there is no failed job (gone, or in another state meanwhile).
   */
  async retryFailed(runId: string, pool: string = DEFAULT_POOL): Promise<boolean> {
    const job = await bounded(this.forPool(pool).getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup');
    if (!job || (await bounded(job.getState(), QUEUE_TIMEOUT_MS, 'job state')) !== 'failed') return false;
    try {
      // BullMQ checks the state again inside Redis: a job no longer failed is refused there
      await bounded(job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }), QUEUE_TIMEOUT_MS, 'job retry');
      return true;
    } catch (err) {
      if (/queue not reachable/.test((err as Error).message)) throw err;
      return false;
    }
  }

  /** Removes the run's failed job; false when there is no failed job. */
  async removeFailed(runId: string, pool: string = DEFAULT_POOL): Promise<boolean> {
    const job = await bounded(this.forPool(pool).getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup');
    if (!job || (await bounded(job.getState(), QUEUE_TIMEOUT_MS, 'job state')) !== 'failed') return false;
    try {
      await bounded(job.remove(), QUEUE_TIMEOUT_MS, 'job remove');
      return true;
    } catch (err) {
      if (/queue not reachable/.test((err as Error).message)) throw err;
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => bounded(q.close(), QUEUE_TIMEOUT_MS, 'close').catch(() => undefined)));
  }

  /** Removes every pool's jobs (tests and benchmarks clean up their prefix). */
  async obliterate(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.obliterate({ force: true }).catch(() => undefined)));
  }
}

/** The job states the queue view shows. */
export type QueueJobState = 'waiting' | 'active' | 'failed' | 'completed' | 'delayed' | 'prioritized' | 'waiting-children' | 'unknown';

/** What the queue knows of one job. */
export interface QueueJobFacts {
  jobId: string;
  /** From the payload; undefined for a job of another shape. */
  runId?: string;
  tenantId?: string;
  state: QueueJobState;
  enqueuedAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** The error the job failed with, as BullMQ stored it (untrimmed). */
  failedReason?: string;
  attemptsMade: number;
}

function jobFacts(j: { id?: string; data?: unknown; timestamp: number; processedOn?: number; finishedOn?: number; failedReason?: string; attemptsMade?: number }, state: QueueJobState): QueueJobFacts {
  const data = (j.data ?? {}) as { runId?: unknown; tenantId?: unknown };
  return {
    jobId: String(j.id ?? ''),
    ...(typeof data.runId === 'string' && { runId: data.runId }),
    ...(typeof data.tenantId === 'string' && { tenantId: data.tenantId }),
    state,
    enqueuedAt: new Date(j.timestamp),
    ...(j.processedOn && { startedAt: new Date(j.processedOn) }),
    ...(j.finishedOn && { finishedAt: new Date(j.finishedOn) }),
    ...(state === 'failed' && j.failedReason !== undefined && { failedReason: String(j.failedReason) }),
    attemptsMade: j.attemptsMade ?? 0,
  };
}
