/** The typed job catalogue: names and payloads in one place. */
export const QUEUE_NAME = 'restore-tests';

/** The queue of a worker pool: the default pool keeps the name of before pools (jobs in Redis survive the upgrade). */
export function queueNameForPool(pool: string): string {
  return pool === 'default' ? QUEUE_NAME : `${QUEUE_NAME}-pool-${pool}`;
}

export const JOB_NAMES = { restoreTest: 'restore-test' } as const;

export interface JobPayloads {
  /** Only ids: the plan, its secrets and the backup path stay in the database. */
  'restore-test': { runId: string; tenantId: string };
}

export type JobName = keyof JobPayloads;

/** Deterministic id so a double enqueue is a no-op while the job is in Redis (BullMQ refuses ':' in ids). */
export function jobIdForRun(runId: string): string {
  return `run-${runId}`;
}
