import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_NAMES, QUEUE_NAME, jobIdForRun, type JobPayloads } from './jobs.js';

export function redisConnection(url: string): Redis {
  // BullMQ workers need maxRetriesPerRequest null (blocking commands).
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

export class RunQueue {
  readonly queue: Queue;
  constructor(connection: ConnectionOptions, prefix = 'ernstfall') {
    this.queue = new Queue(QUEUE_NAME, { connection, prefix });
  }

  async enqueueRestoreTest(payload: JobPayloads['restore-test']): Promise<void> {
    await this.queue.add(JOB_NAMES.restoreTest, payload, {
      jobId: jobIdForRun(payload.runId),
      // the run itself is never retried blindly: a lost worker ends the run as `error`
      attempts: 1,
      removeOnComplete: { age: 24 * 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** Removes a job that has not started; false when it is running or gone. */
  async removeQueued(runId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobIdForRun(runId));
    if (!job) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  async has(runId: string): Promise<boolean> {
    return (await this.queue.getJob(jobIdForRun(runId))) !== undefined;
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
