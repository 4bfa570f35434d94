import type { Kysely } from 'kysely';
import type { DB, Verdict } from '../../db/schema.js';
import type { RunResult } from '../../db/repositories/run.repository.js';
import { OutcomeRepository } from '../../db/repositories/outcome.repository.js';
import type { Attachment } from '../evidence/ledger.service.js';
import { finding } from '../findings.js';
import type { Clock } from '../clock.js';

/** What a worker hands over, as stored in run_outcomes.outcome (JSON). */
export interface StoredOutcome {
  /** claimed: the worker held the run; unclaimed: a run nobody holds (cancelled before start, found lost). */
  mode: 'claimed' | 'unclaimed';
  onlyStatus?: 'queued' | 'running';
  /** A lost run: how many of its sandboxes the reporting worker's reaper removed. */
  reaped?: number;
  result: Omit<RunResult, 'finishedAt'> & { verdict: Verdict; finishedAt: string };
  files?: { name: string; base64: string; retain?: 'record' }[];
}

const VERDICTS: readonly string[] = ['passed', 'failed', 'error', 'cancelled'];
const RESULT_KEYS = ['phases', 'checks', 'findings', 'rto', 'rpo', 'backup', 'sandbox', 'restore'] as const;

export class OutcomeFormatError extends Error {}

/**
 * Reads a stored outcome as data from a less trusted process: only the known
 * fields, of the expected types, pass into the run and its signed record.
 */
export function parseStoredOutcome(raw: unknown): { mode: 'claimed' | 'unclaimed'; onlyStatus: 'queued' | 'running'; reaped?: number; result: RunResult & { verdict: Verdict }; attachments: Attachment[] } {
  const o = raw as Partial<StoredOutcome> | null;
  if (!o || typeof o !== 'object') throw new OutcomeFormatError('outcome is not an object');
  if (o.mode !== 'claimed' && o.mode !== 'unclaimed') throw new OutcomeFormatError(`unknown outcome mode ${String(o.mode)}`);
  const r = o.result;
  if (!r || typeof r !== 'object' || !VERDICTS.includes(r.verdict)) throw new OutcomeFormatError('outcome has no valid verdict');
  const finishedAt = new Date(r.finishedAt);
  if (Number.isNaN(finishedAt.getTime())) throw new OutcomeFormatError('outcome has no valid finishedAt');
  const result: RunResult & { verdict: Verdict } = { verdict: r.verdict, finishedAt };
  for (const k of RESULT_KEYS) {
    if (r[k] === undefined) continue;
    if (['phases', 'checks', 'findings'].includes(k) && !Array.isArray(r[k])) throw new OutcomeFormatError(`outcome ${k} is not a list`);
    result[k] = r[k] as never;
  }
  const attachments: Attachment[] = (Array.isArray(o.files) ? o.files : []).map((f) => {
    if (typeof f?.name !== 'string' || typeof f.base64 !== 'string') throw new OutcomeFormatError('outcome file without name or content');
    return { name: f.name, content: Buffer.from(f.base64, 'base64'), ...(f.retain === 'record' && { retain: 'record' as const }) };
  });
  const onlyStatus = o.onlyStatus === 'queued' ? 'queued' : 'running';
  return { mode: o.mode, onlyStatus, ...(typeof o.reaped === 'number' && { reaped: o.reaped }), result, attachments };
}

/** Network errors of a client whose server is not there (refused, reset, timed out, unreachable). */
const NETWORK_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'];

/**
 * Whether an error means ernstfall's own database could not be reached (down, restarting, connection
 * cut), as opposed to a query it refused: SQLSTATE class 08 (connection exception), 57P01–57P03
 * (shut down, starting up), node-postgres' own connection messages, or a network error from the
 * database's port (`dbPort`; a Docker engine on a unix socket has none, so its errors are not taken for the database's).
 */
export function isDatabaseUnavailable(err: unknown, dbPort?: number): boolean {
  const e = err as { code?: string; port?: number; message?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (/^08/.test(e.code) || ['57P01', '57P02', '57P03'].includes(e.code))) return true;
  if (/Connection terminated|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(e.message ?? '')) return true;
  return NETWORK_CODES.includes(e.code ?? '') && dbPort !== undefined && e.port === dbPort;
}

export interface HandoverOptions {
  /** How long a hand-over is retried while the database is unreachable; then it is kept for `flushPending`. Default 5 minutes. */
  retryForMs?: number;
  /** First pause between attempts; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** The database's port, to tell its network errors from other clients' (isDatabaseUnavailable). */
  dbPort?: number;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * The worker's side of central signing: a worker holds no signing key, so it
 * hands the outcome of a test to the database; a process with the key
 * (OutcomeSigner in the API or scheduler role) ends the run and signs its record.
 *
 * The database may be away at that moment (restarting, failing over): a
 * hand-over is retried with backoff for a bounded time; an outcome that still
 * could not be handed over is kept in memory and handed over by the next
 * `flushPending` (the worker's maintenance pass), so the run ends with its
 * own verdict once the database is back, never stays `running`.
 */
export class OutcomeHandover {
  private readonly repo: OutcomeRepository;
  private readonly pending = new Map<string, { workerId: string; outcome: StoredOutcome }>();
  private readonly opts: Required<Omit<HandoverOptions, 'dbPort' | 'log'>> & Pick<HandoverOptions, 'dbPort' | 'log'>;
  constructor(db: Kysely<DB>, private readonly clock: Clock, opts: HandoverOptions = {}) {
    this.repo = new OutcomeRepository(db);
    this.opts = { retryForMs: 300_000, backoffMs: 250, maxBackoffMs: 5000, ...opts };
  }

  /** The outcome of a run this worker holds. False if it no longer holds it. Rejects only after retrying for `retryForMs` (the outcome is then kept as pending). */
  async claimed(runId: string, workerId: string, result: RunResult & { verdict: Verdict }, attachments: Attachment[] = []): Promise<boolean> {
    const outcome = this.store('claimed', result, attachments);
    try {
      return await this.retrying(runId, () => this.repo.submit({ runId, workerId, status: 'running', heldBy: workerId, outcome }));
    } catch (err) {
      if (isDatabaseUnavailable(err, this.opts.dbPort)) this.pending.set(runId, { workerId, outcome });
      throw err;
    }
  }

  /** Ends a run nobody holds (cancelled before start; lost, with the sandboxes this worker's reaper removed). */
  unclaimed(runId: string, workerId: string, result: RunResult & { verdict: Verdict }, onlyStatus: 'queued' | 'running', opts: { reaped?: number } = {}): Promise<boolean> {
    return this.retrying(runId, () => this.repo.submit({ runId, workerId, status: onlyStatus, outcome: { ...this.store('unclaimed', result, []), onlyStatus, ...(opts.reaped !== undefined && { reaped: opts.reaped }) } }));
  }

  /** Runs whose outcome waits in memory for the database. */
  pendingRuns(): string[] {
    return [...this.pending.keys()];
  }

  /** One more attempt for every kept outcome; returns how many were handed over (or found moved on). */
  async flushPending(): Promise<number> {
    let done = 0;
    for (const [runId, p] of this.pending) {
      try {
        await this.repo.submit({ runId, workerId: p.workerId, status: 'running', heldBy: p.workerId, outcome: p.outcome });
        this.pending.delete(runId);
        done++;
      } catch (err) {
        if (!isDatabaseUnavailable(err, this.opts.dbPort)) {
          this.pending.delete(runId);
          this.opts.log?.error({ runId, err: (err as Error).message }, 'a kept outcome could not be handed over; dropped');
        }
      }
    }
    return done;
  }

  private async retrying<T>(runId: string, attempt: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let wait = this.opts.backoffMs;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (!isDatabaseUnavailable(err, this.opts.dbPort) || performance.now() - started + wait > this.opts.retryForMs) throw err;
        this.opts.log?.warn({ runId, attempt: n, retryInMs: wait, err: (err as Error).message }, 'the database is unreachable: handing the outcome over again after a pause');
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, this.opts.maxBackoffMs);
      }
    }
  }

  private store(mode: StoredOutcome['mode'], result: RunResult & { verdict: Verdict }, attachments: Attachment[]): StoredOutcome {
    return {
      mode,
      result: { ...result, finishedAt: (result.finishedAt ?? this.clock()).toISOString() },
      ...(attachments.length && { files: attachments.map((a) => ({ name: a.name, base64: a.content.toString('base64'), ...(a.retain && { retain: a.retain }) })) }),
    };
  }
}

/** A run whose worker stopped sending heartbeats is over: `error`, WORKER_LOST, the findings it had so far kept. */
export function lostRunResult(r: { worker_id: string | null; findings: unknown }): RunResult & { verdict: Verdict } {
  return {
    verdict: 'error',
    findings: [...((r.findings as unknown[]) ?? []), finding('WORKER_LOST', `the worker running this test (${r.worker_id ?? 'unknown'}) stopped responding; the test did not complete`)],
  };
}
