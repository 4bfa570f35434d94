import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Kysely } from 'kysely';
import type { Config } from '../services/config.js';
import type { DB } from '../db/schema.js';
import { createRepositories } from '../db/repositories/index.js';
import { PlanPolicyService } from '../services/plans/plan-policy.js';
import { lostRunResult, OutcomeHandover } from '../services/runs/outcome-handover.js';
import { JOB_NAMES, queueNameForPool, type JobPayloads } from './jobs.js';
import type { RunQueue } from './queue.js';
import { databasePort, handleRestoreTest } from './engine/pipeline.js';
import { reapSandboxes, removeSandboxesOfRun } from './sandbox/reaper.js';
import type { Clock } from '../services/clock.js';

/** A counting semaphore: the sandboxes one worker runs at once, whichever pool's queue the job came from. */
export class Capacity {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  get inUse(): number {
    return this.used;
  }
  async acquire(): Promise<() => void> {
    if (this.used >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on directly
      else this.used--;
    };
  }
}

export interface WorkerDeps {
  config: Config;
  db: Kysely<DB>;
  redis: Redis;
  queue: RunQueue;
  docker: Docker;
  log: Logger;
  prefix?: string;
  /** Business time (services/clock.ts). */
  clock: Clock;
}

export interface RunningWorker {
  id: string;
  /** One BullMQ worker per pool this worker serves. */
  workers: Worker[];
  /** One maintenance pass: lost runs, orphaned jobs, orphaned sandboxes. */
  maintain(): Promise<void>;
  close(): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<RunningWorker> {
  const { config, docker } = deps;
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = deps.log.child({ workerId: id });
  // the worker's own wiring (it may run without the API's container): the repositories of its database
  const { runs, plans, tenants, baselines } = createRepositories(deps.db, deps.clock);
  const policy = new PlanPolicyService(tenants, config.policy);
  // no signing key here: outcomes go to a process that holds it (central signing, docs/security.md)
  const outcomes = new OutcomeHandover(deps.db, deps.clock, { dbPort: databasePort(config), log });
  // runs this process is working on (or handing over): never declared lost by its own maintenance pass
  const active = new Set<string>();

  async function maintain(): Promise<void> {
    // a run whose worker stopped sending heartbeats is over: it ends as `error`, never stays `running`
    // outcomes the database was not there for: handed over first, so those runs end with their own verdict
    if (outcomes.pendingRuns().length) {
      const flushed = await outcomes.flushPending();
      if (flushed) log.warn({ flushed }, 'outcomes kept while the database was unreachable were handed over');
    }
    const stale = await runs.stale(config.sandbox.staleSeconds, { pools: config.sandbox.pools });
    for (const r of stale) {
      if (r.worker_id === id && (active.has(r.id) || outcomes.pendingRuns().includes(r.id))) continue;
      const reaped = await removeSandboxesOfRun(docker, config.instance, r.id).catch(() => undefined);
      const reported = await outcomes.unclaimed(r.id, id, lostRunResult(r), 'running', { reaped });
      if (reported) log.warn({ runId: r.id, planId: r.plan_id }, 'run declared lost: worker stopped responding');
    }
    // a queued run whose job vanished from Redis (flushed, restored) is enqueued again
    for (const r of await runs.queuedOlderThan(new Date(deps.clock().getTime() - 30_000))) {
      if (!(await deps.queue.pending(r.id, r.pool))) {
        await deps.queue.enqueueRestoreTest({ runId: r.id, tenantId: r.tenant_id }, r.pool);
        log.warn({ runId: r.id }, 're-enqueued a queued run whose job was missing');
      }
    }
    await reapSandboxes(docker, config.instance, (ids) => runs.statuses(ids), log);
  }

  // a Docker engine or Redis that is down must not keep the process (and its API) from starting
  const shutdown = new AbortController();
  await maintain().catch((err: Error) => log.error({ err: err.message }, 'first maintenance pass failed; retrying periodically'));

  // one BullMQ worker per pool, all sharing this worker's capacity: at most `concurrency` sandboxes at once
  const capacity = new Capacity(config.sandbox.concurrency);
  const workers = config.sandbox.pools.map((pool) => {
    const w = new Worker<JobPayloads['restore-test']>(
      queueNameForPool(pool),
      async (job) => {
        if (job.name !== JOB_NAMES.restoreTest) throw new Error(`unknown job ${job.name}`);
        const release = await capacity.acquire();
        active.add(job.data.runId);
        try {
          await handleRestoreTest({ config, docker, runs, plans, baselines, policy, outcomes, log: log.child({ pool }), pool, workerId: id, heartbeatMs: config.sandbox.heartbeatMs, shutdown: shutdown.signal, clock: deps.clock }, job.data.runId);
        } finally {
          active.delete(job.data.runId);
          release();
        }
      },
      { connection: deps.redis, prefix: deps.prefix ?? config.redis.prefix, concurrency: config.sandbox.concurrency, lockDuration: 60_000, name: id },
    );
    w.on('failed', (job, err) => log.error({ jobId: job?.id, pool, err: err.message }, 'job failed'));
    w.on('error', (err) => log.error({ pool, err: err.message }, 'worker error'));
    return w;
  });

  const every = Math.max(1000, Math.floor((config.sandbox.staleSeconds * 1000) / 2));
  let maintaining = false;
  const timer = setInterval(() => {
    if (maintaining) return;
    maintaining = true;
    maintain().catch((err: Error) => log.warn({ err: err.message }, 'maintenance pass failed')).finally(() => { maintaining = false; });
  }, every);

  log.info({ concurrency: config.sandbox.concurrency, pools: config.sandbox.pools, instance: config.instance }, 'worker started');
  return {
    id,
    workers,
    maintain,
    async close() {
      clearInterval(timer);
      // running tests stop now (a container stop or systemd would kill them mid-restore anyway):
      // each removes its sandbox and ends as `error` (INTERRUPTED); then the worker closes
      shutdown.abort();
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
