import type { Logger } from 'pino';
import { OutcomeListener } from '../../db/repositories/outcome-listener.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { RunFinisher } from './run-finisher.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import { lostRunResult } from './outcome-handover.js';

export interface OutcomeSignerOptions {
  /** LISTEN needs a connection of its own (not the pool). */
  databaseUrl: string;
  /** Fallback poll when a notification is missed (connection lost); default 2000 ms. */
  pollMs?: number;
  /**
   * A running run without heartbeats for this long, and with no outcome handed over, is ended
   * here as lost (WORKER_LOST): no worker is left to notice. Workers themselves do it after
   * ERNSTFALL_STALE_SECONDS; this is well beyond that (3× + 60 s), so a live worker reports first (with its reaper's count).
   */
  orphanSeconds: number;
  /** The ledger, for pruning raw tool output past its retention (once per pruneMs). */
  ledger?: LedgerService;
  pruneMs?: number;
}

/**
 * The signing side of central signing: in every process that holds the key
 * (API and scheduler roles). It wakes on a worker's NOTIFY (or its poll), and
 * ends each handed-over run through the RunFinisher, which signs its record
 * and writes the checkpoint. Several signers may run: each outcome is taken
 * under a row lock, once.
 */
export class OutcomeSigner {
  private readonly outcomes: Repositories['outcomes'];
  private readonly runs: Repositories['runs'];
  private listener: OutcomeListener | null = null;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<number> | null = null;
  private again = false;
  private stopped = false;
  private lastOrphanCheck = -Infinity;
  private lastPrune = -Infinity;

  constructor(repos: Pick<Repositories, 'outcomes' | 'runs'>, private readonly finisher: RunFinisher, private readonly log: Logger, private readonly opts: OutcomeSignerOptions) {
    this.outcomes = repos.outcomes;
    this.runs = repos.runs;
  }

  /** Starts listening and polling; a second call while started does nothing. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.stopped = false;
    await this.listen();
    this.timer = setInterval(() => this.kick(), this.opts.pollMs ?? 2000);
    this.kick();
  }

  /** Signs what is waiting (the outcomes of tests a closing worker just stopped), then stops. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.draining?.catch(() => undefined);
    if (!this.stopped) await this.drain();
    this.stopped = true;
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => undefined);
  }

  /** Signs what is waiting now; resolves with how many runs it ended. Overlapping calls share one pass (and one more after it). */
  kick(): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = this.drain().finally(() => {
      this.draining = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.kick();
      }
    });
    return this.draining;
  }

  private async drain(): Promise<number> {
    let ended = 0;
    try {
      for (;;) {
        const ids = await this.outcomes.unsigned(100);
        for (const id of ids) {
          const row = await this.finisher.finishOutcome(id).catch((err: Error) => {
            this.log.error({ runId: id, err: err.message }, 'signing a handed-over outcome failed; retrying on the next pass');
            return null;
          });
          if (row === null) return ended; // the database is failing: wait for the next pass instead of spinning
          if (row) ended++;
        }
        if (ids.length < 100) break;
      }
      await this.housekeeping();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outcome signer pass failed');
    }
    return ended;
  }

  private async housekeeping(): Promise<void> {
    const now = performance.now();
    if (now - this.lastOrphanCheck >= 10_000) {
      this.lastOrphanCheck = now;
      for (const r of await this.runs.stale(this.opts.orphanSeconds)) {
        const row = await this.finisher.finishUnclaimed(r.id, lostRunResult(r), 'running');
        if (row) this.log.warn({ runId: r.id, planId: r.plan_id, workerId: r.worker_id }, 'run declared lost: its worker stopped responding and no worker reported it');
      }
    }
    if (this.opts.ledger && now - this.lastPrune >= (this.opts.pruneMs ?? 600_000)) {
      this.lastPrune = now;
      // raw tool output past its retention: content pruned, hash stays in the record
      const pruned = await this.opts.ledger.pruneAttachments();
      if (pruned) this.log.info({ pruned }, 'evidence attachments pruned after their retention');
    }
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    let listener: OutcomeListener;
    try {
      listener = await OutcomeListener.open(this.opts.databaseUrl, () => void this.kick(), (err, failed) => {
        // the poll keeps signing meanwhile; reconnect after a pause
        this.log.warn({ err: err.message }, 'outcome signer lost its LISTEN connection; reconnecting');
        if (this.listener === failed) this.listener = null;
        failed.end().catch(() => undefined);
        setTimeout(() => void this.listen().catch(() => undefined), 2000).unref();
      });
    } catch (err) {
      if (this.stopped) return;
      this.log.warn({ err: (err as Error).message }, 'outcome signer could not LISTEN; polling only until it can');
      setTimeout(() => void this.listen().catch(() => undefined), 5000).unref();
      return;
    }
    // stopped (or started again) while connecting: this connection is not needed
    if (this.stopped || this.listener) {
      await listener.end().catch(() => undefined);
      return;
    }
    this.listener = listener;
  }


  /** For /metrics and readiness: outcomes waiting for a signer. */
  backlog() {
    return this.outcomes.backlog();
  }
}
