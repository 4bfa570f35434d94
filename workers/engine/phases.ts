/**
 * A run's timeline. A phase is `running` from its start until it ends, then
 * `ok`, `failed`, `interrupted` (cancel, timeout, shutdown, a lost worker) or
 * `skipped` (never reached). The list is what heartbeats store, so the API
 * shows the truth while a run is in progress.
 */
export const PHASE_NAMES = ['fetch', 'provision', 'restore', 'verify', 'services', 'teardown'] as const;
/** Phases only some runs have (`services`: plans with an application group); absent from a run's timeline unless it reached them. */
const OPTIONAL_PHASES: readonly PhaseName[] = ['services'];
export type PhaseName = (typeof PHASE_NAMES)[number];
export type PhaseStatus = 'running' | 'ok' | 'failed' | 'interrupted' | 'skipped';

export interface Phase {
  name: PhaseName;
  startedAt: string;
  durationMs: number;
  status: PhaseStatus;
  /** Why it did not end `ok`, or who ended it (e.g. the reaper after a lost worker). */
  note?: string;
  /** `services`: each service's start and probe time (ms), in start order. */
  steps?: { name: string; startedAt?: string; startMs?: number; probeMs?: number; status: string }[];
}

export class PhaseRecorder {
  readonly list: Phase[] = [];
  /** `now`: the business clock, for when a phase started; how long it took is measured on the monotonic clock. */
  constructor(private readonly now: () => number, private readonly mono: () => number = () => performance.now()) {}

  /** Runs `fn` as the phase `name`; a throw marks it `failed`, or `interrupted` when `interrupted()` says so. */
  async run<T>(name: PhaseName, fn: () => Promise<T>, interrupted: () => string | undefined): Promise<T> {
    const start = this.mono();
    const p: Phase = { name, startedAt: new Date(this.now()).toISOString(), durationMs: 0, status: 'running' };
    this.list.push(p);
    try {
      const out = await fn();
      p.status = 'ok';
      return out;
    } catch (err) {
      const why = interrupted();
      p.status = why ? 'interrupted' : 'failed';
      if (why) p.note = why;
      throw err;
    } finally {
      p.durationMs = Math.round(this.mono() - start);
    }
  }

  /** Every phase that never started, as `skipped`, in pipeline order. */
  complete(at: Date): Phase[] {
    return completePhases(this.list, at);
  }
}

/** The full timeline: phases that ran as they are, the others `skipped` (a `running` one left behind is `interrupted`). */
export function completePhases(stored: Phase[], at: Date, interruptedNote?: string): Phase[] {
  const byName = new Map(stored.map((p) => [p.name, p]));
  return PHASE_NAMES.filter((name) => byName.has(name) || !OPTIONAL_PHASES.includes(name)).map((name) => {
    const p = byName.get(name);
    if (!p) return { name, startedAt: at.toISOString(), durationMs: 0, status: 'skipped' as const };
    if (p.status !== 'running') return p;
    // stored by a heartbeat while it ran, and nobody ended it: it stopped somewhere in between
    const ran = Math.max(0, at.getTime() - new Date(p.startedAt).getTime());
    return { ...p, status: 'interrupted' as const, durationMs: ran, ...(interruptedNote && { note: interruptedNote }) };
  });
}
