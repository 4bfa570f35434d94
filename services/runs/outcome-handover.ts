import type { Kysely } from 'kysely';
import type { DB, Verdict } from '../../db/schema.js';
import type { RunResult } from '../../db/repositories/run.repository.js';
import { OutcomeRepository } from '../../db/repositories/outcome.repository.js';
import type { Attachment } from '../evidence/ledger.service.js';
import { finding } from '../findings.js';

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

/**
 * The worker's side of central signing: a worker holds no signing key, so it
 * hands the outcome of a test to the database; a process with the key
 * (OutcomeSigner in the API or scheduler role) ends the run and signs its record.
 */
export class OutcomeHandover {
  private readonly repo: OutcomeRepository;
  constructor(db: Kysely<DB>, private readonly clock: () => Date = () => new Date()) {
    this.repo = new OutcomeRepository(db);
  }

  /** The outcome of a run this worker holds. False if it no longer holds it. */
  claimed(runId: string, workerId: string, result: RunResult & { verdict: Verdict }, attachments: Attachment[] = []): Promise<boolean> {
    return this.repo.submit({ runId, workerId, status: 'running', heldBy: workerId, outcome: this.store('claimed', result, attachments) });
  }

  /** Ends a run nobody holds (cancelled before start; lost, with the sandboxes this worker's reaper removed). */
  unclaimed(runId: string, workerId: string, result: RunResult & { verdict: Verdict }, onlyStatus: 'queued' | 'running', opts: { reaped?: number } = {}): Promise<boolean> {
    return this.repo.submit({ runId, workerId, status: onlyStatus, outcome: { ...this.store('unclaimed', result, []), onlyStatus, ...(opts.reaped !== undefined && { reaped: opts.reaped }) } });
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
