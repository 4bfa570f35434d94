import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_NAMES, QUEUE_NAME, jobIdForRun, type JobPayloads } from './jobs.js';

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

export class RunQueue {
  readonly queue: Queue;
  constructor(connection: ConnectionOptions, prefix = 'ernstfall') {
    this.queue = new Queue(QUEUE_NAME, { connection, prefix });
    // Redis errors are reported by the connection's owner; an unhandled 'error' event would crash the process
    this.queue.on('error', () => undefined);
  }

  async enqueueRestoreTest(payload: JobPayloads['restore-test']): Promise<void> {
    await bounded(this.queue.add(JOB_NAMES.restoreTest, payload, {
      jobId: jobIdForRun(payload.runId),
      // the run itself is never retried blindly: a lost worker ends the run as `error`
      attempts: 1,
      removeOnComplete: { age: 24 * 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    }), QUEUE_TIMEOUT_MS, 'enqueue');
  }

  /** Removes a job that has not started; false when it is running or gone. */
  async removeQueued(runId: string): Promise<boolean> {
    const job = await bounded(this.queue.getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup').catch(() => undefined);
    if (!job) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  /** Whether a job for the run is still waiting or active (a failed or completed one does not count). */
  async pending(runId: string): Promise<boolean> {
    const job = await bounded(this.queue.getJob(jobIdForRun(runId)), QUEUE_TIMEOUT_MS, 'job lookup');
    if (!job) return false;
    const state = await job.getState();
    if (state === 'failed' || state === 'completed' || state === 'unknown') {
      // a job that ended while its run is still queued would block the id: clear it so the run can be enqueued again
      await job.remove().catch(() => undefined);
      return false;
    }
    return true;
  }

  close(): Promise<void> {
    return bounded(this.queue.close(), QUEUE_TIMEOUT_MS, 'close').catch(() => undefined);
  }
}
