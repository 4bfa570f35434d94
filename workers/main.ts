import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Kysely } from 'kysely';
import type { Config } from '../services/config.js';
import type { DB } from '../db/schema.js';
import { PlanRepository } from '../db/repositories/plan.repository.js';
import { RunRepository } from '../db/repositories/run.repository.js';
import { TenantRepository } from '../db/repositories/tenant.repository.js';
import { BaselineRepository } from '../db/repositories/baseline.repository.js';
import { PlanPolicyService } from '../services/plans/plan-policy.js';
import { lostRunResult, OutcomeHandover } from '../services/runs/outcome-handover.js';
import { JOB_NAMES, QUEUE_NAME, type JobPayloads } from './jobs.js';
import type { RunQueue } from './queue.js';
import { handleRestoreTest } from './engine/pipeline.js';
import { reapSandboxes, removeSandboxesOfRun } from './sandbox/reaper.js';

export interface WorkerDeps {
  config: Config;
  db: Kysely<DB>;
  redis: Redis;
  queue: RunQueue;
  docker: Docker;
  log: Logger;
  prefix?: string;
}

export interface RunningWorker {
  id: string;
  worker: Worker;
  /** One maintenance pass: lost runs, orphaned jobs, orphaned sandboxes. */
  maintain(): Promise<void>;
  close(): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<RunningWorker> {
  const { config, docker } = deps;
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = deps.log.child({ workerId: id });
  const runs = new RunRepository(deps.db);
  const plans = new PlanRepository(deps.db);
  const policy = new PlanPolicyService(new TenantRepository(deps.db), config.policy);
  const baselines = new BaselineRepository(deps.db);
  // no signing key here: outcomes go to a process that holds it (central signing, docs/security.md)
  const outcomes = new OutcomeHandover(deps.db);

  async function maintain(): Promise<void> {
    // a run whose worker stopped sending heartbeats is over: it ends as `error`, never stays `running`
    const stale = await runs.stale(config.sandbox.staleSeconds);
    for (const r of stale) {
      const reaped = await removeSandboxesOfRun(docker, config.instance, r.id).catch(() => undefined);
      const reported = await outcomes.unclaimed(r.id, id, lostRunResult(r), 'running', { reaped });
      if (reported) log.warn({ runId: r.id, planId: r.plan_id }, 'run declared lost: worker stopped responding');
    }
    // a queued run whose job vanished from Redis (flushed, restored) is enqueued again
    for (const r of await runs.queuedOlderThan(new Date(Date.now() - 30_000))) {
      if (!(await deps.queue.pending(r.id))) {
        await deps.queue.enqueueRestoreTest({ runId: r.id, tenantId: r.tenant_id });
        log.warn({ runId: r.id }, 're-enqueued a queued run whose job was missing');
      }
    }
    await reapSandboxes(docker, config.instance, (ids) => runs.statuses(ids), log);
  }

  // a Docker engine or Redis that is down must not keep the process (and its API) from starting
  const shutdown = new AbortController();
  await maintain().catch((err: Error) => log.error({ err: err.message }, 'first maintenance pass failed; retrying periodically'));

  const worker = new Worker<JobPayloads['restore-test']>(
    QUEUE_NAME,
    async (job) => {
      if (job.name !== JOB_NAMES.restoreTest) throw new Error(`unknown job ${job.name}`);
      await handleRestoreTest({ config, docker, runs, plans, baselines, policy, outcomes, log, workerId: id, heartbeatMs: config.sandbox.heartbeatMs, shutdown: shutdown.signal }, job.data.runId);
    },
    { connection: deps.redis, prefix: deps.prefix ?? config.redis.prefix, concurrency: config.sandbox.concurrency, lockDuration: 60_000 },
  );
  worker.on('failed', (job, err) => log.error({ jobId: job?.id, err: err.message }, 'job failed'));
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));

  const every = Math.max(1000, Math.floor((config.sandbox.staleSeconds * 1000) / 2));
  let maintaining = false;
  const timer = setInterval(() => {
    if (maintaining) return;
    maintaining = true;
    maintain().catch((err: Error) => log.warn({ err: err.message }, 'maintenance pass failed')).finally(() => { maintaining = false; });
  }, every);

  log.info({ concurrency: config.sandbox.concurrency, instance: config.instance }, 'worker started');
  return {
    id,
    worker,
    maintain,
    async close() {
      clearInterval(timer);
      // running tests stop now (a container stop or systemd would kill them mid-restore anyway):
      // each removes its sandbox and ends as `error` (INTERRUPTED); then the worker closes
      shutdown.abort();
      await worker.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { main } = await import('../services/main.js');
  await main(['worker']);
}
