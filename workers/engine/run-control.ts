import type { Logger } from 'pino';
import type { RunRepository, RunResult } from '../../db/repositories/run.repository.js';
import type { StopReason } from './run-outcome.js';

export class Aborted extends Error {
  constructor(readonly reason: StopReason) {
    super(`run stopped: ${reason}`);
    this.name = 'Aborted';
  }
}

const WHY: Record<StopReason, string> = {
  cancelled: 'cancelled by a person',
  timeout: 'the sandbox timeout ran out',
  lost: 'this worker no longer holds the run',
  shutdown: 'the worker was shut down',
  disk: 'the sandbox\'s data area was full',
};

export interface RunControlDeps {
  runs: RunRepository;
  runId: string;
  workerId: string;
  heartbeatMs: number;
  timeoutSeconds: number;
  shutdown?: AbortSignal;
  log: Logger;
  /** What each heartbeat stores, so the API shows the run as it is. */
  progress: () => RunResult;
  /** Asked on every heartbeat while a sandbox exists (e.g. its data area's size); a reason stops the run. */
  watch?: () => Promise<StopReason | undefined>;
  /** Runs once on the first stop: killing the sandbox is the only way to stop a running restore tool. */
  onStop: () => void;
}

/**
 * Heartbeats, cancel, timeout, shutdown and watchdogs of one run, as one
 * AbortSignal. Heartbeats go on until `close()`, through teardown, so a slow
 * teardown never looks like a lost worker; once the run is `settle()`d (its
 * verdict no longer depends on the sandbox) a stop request changes nothing.
 */
export class RunControl {
  readonly abort = new AbortController();
  stopped?: StopReason;
  private settled = false;
  private heartbeat?: NodeJS.Timeout;
  private timeout?: NodeJS.Timeout;
  private beating = false;
  private watching = false;
  private readonly onShutdown = () => this.stop('shutdown');

  constructor(private readonly d: RunControlDeps) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.beat(), this.d.heartbeatMs);
    this.timeout = setTimeout(() => this.stop('timeout'), this.d.timeoutSeconds * 1000);
    this.d.shutdown?.addEventListener('abort', this.onShutdown);
    if (this.d.shutdown?.aborted) this.stop('shutdown');
  }

  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const hb = await this.d.runs.heartbeat(this.d.runId, this.d.workerId, this.d.progress());
      // undefined: the run is no longer ours (declared lost meanwhile); stop working on it
      if (!hb) this.stop('lost');
      else if (hb.cancelRequested) this.stop('cancelled');
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    } finally {
      this.beating = false;
    }
    // the watchdog runs beside the heartbeat, never in its way: a slow look into a throttled sandbox must not delay it
    if (this.d.watch && !this.watching) {
      this.watching = true;
      this.d.watch().then((why) => { if (why) this.stop(why); }, () => undefined).finally(() => { this.watching = false; });
    }
  }

  stop(reason: StopReason): void {
    if (this.stopped || this.settled) return;
    this.stopped = reason;
    this.d.log.info({ reason }, 'run stopping');
    this.abort.abort(new Aborted(reason));
    this.d.onStop();
  }

  /** Throws when the run was stopped. */
  check(): void {
    if (this.stopped) throw new Aborted(this.stopped);
  }

  /** For the phase recorder: why the phase in progress ended early, if it did. */
  why = (): string | undefined => (this.stopped ? WHY[this.stopped] : undefined);

  /** From here on the outcome is decided; stop requests are ignored (heartbeats go on). */
  settle(): void {
    this.settled = true;
    clearTimeout(this.timeout);
  }

  close(): void {
    this.settle();
    clearInterval(this.heartbeat);
    this.d.shutdown?.removeEventListener('abort', this.onShutdown);
  }
}

/** Settles with the promise, or rejects as soon as the signal aborts (the reaper removes anything left behind). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e instanceof Error ? e : new Error(String(e))); },
    );
  });
}
