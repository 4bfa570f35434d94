import type { PoolRepository } from '../../db/repositories/pool.repository.js';
import type { RunQueue } from '../../workers/queue.js';
import type { Clock } from '../clock.js';

export interface PoolState {
  pool: string;
  /** Live workers connected to the pool's queue (Redis); null when Redis did not answer. */
  workers: number | null;
  queued: number;
  running: number;
  oldestQueuedAgeSeconds: number;
}

/**
 * Worker pools as an operator sees them: the pools ERNSTFALL_POOLS declares
 * plus any with runs waiting, each with its live workers and its runs. A pool
 * whose plans or runs wait and that no worker serves is the problem to show.
 */
export class PoolService {
  constructor(private readonly repo: PoolRepository, private readonly queue: RunQueue, private readonly declared: string[], private readonly clock: Clock) {}

  async states(): Promise<PoolState[]> {
    const runs = await this.repo.activeRuns(this.clock());
    const pools = [...new Set([...this.declared, ...runs.map((r) => r.pool)])].sort();
    return Promise.all(pools.map(async (pool) => {
      const r = runs.find((x) => x.pool === pool);
      const workers = await this.queue.workers(pool).catch(() => null);
      return { pool, workers, queued: r?.queued ?? 0, running: r?.running ?? 0, oldestQueuedAgeSeconds: r?.oldestQueuedAgeSeconds ?? 0 };
    }));
  }

  /** Pools with work (runs queued, or plans naming them — of one tenant if given) and no live worker. */
  async unserved(tenantId?: string): Promise<PoolState[]> {
    const out: PoolState[] = [];
    for (const s of await this.states()) {
      if (s.workers !== 0) continue;
      const waits = tenantId ? false : s.queued > 0;
      if (waits || await this.repo.named(s.pool, tenantId)) out.push(s);
    }
    return out;
  }

  /** For a scheduler's /readyz: failing while a pool with work has no live worker (its tests would wait for ever). */
  readinessProbe(): { name: string; check: () => Promise<unknown> } {
    return {
      name: 'pools',
      check: async () => {
        const bad = await this.unserved();
        if (bad.length) throw new Error(bad.map((s) => `pool ${s.pool}: no live worker (${s.queued} queued)`).join('; '));
        return true;
      },
    };
  }
}
