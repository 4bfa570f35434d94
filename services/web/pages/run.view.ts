import type { RunRow } from '../../../db/schema.js';
import { dateTime, formatSeconds, phaseLabel, verdictLabel, type Lang, type Strings } from '../i18n.js';

export const PHASES = ['queued', 'fetch', 'provision', 'restore', 'verify', 'services', 'teardown'] as const;

export interface PhaseView {
  name: string;
  label: string;
  state: 'done' | 'failed' | 'running' | 'pending' | 'skipped';
  stateText: string;
  startText: string;
  durationText: string;
}

interface StoredPhase { name: string; startedAt?: string; durationMs?: number; status?: string }

/**
 * The timeline of a run, for the page and for the live JSON alike (so that
 * both say exactly the same, in the reader's language). While a run is
 * running, its newest phase is the one in progress.
 */
export function phaseViews(run: RunRow, s: Strings, lang: Lang, now: Date): PhaseView[] {
  const stored = (run.phases as StoredPhase[]) ?? [];
  const last = stored.at(-1);
  // `services` only for runs of an application group (decisions/021)
  return PHASES.filter((name) => name !== 'services' || stored.some((x) => x.name === name)).map((name): PhaseView => {
    const label = phaseLabel(name, lang);
    if (name === 'queued') {
      const waited = run.started_at ? run.started_at.getTime() - run.queued_at.getTime() : run.status === 'queued' ? now.getTime() - run.queued_at.getTime() : null;
      const state = run.status === 'queued' ? 'running' : 'done';
      return { name, label, state, stateText: state === 'running' ? s.runStatus.queued! : s.phaseState[state]!, startText: dateTime(run.queued_at, lang), durationText: waited === null ? '' : formatSeconds(Math.max(0, waited) / 1000, lang) };
    }
    const p = stored.find((x) => x.name === name);
    if (!p) {
      const state = run.status === 'finished' ? 'skipped' : 'pending';
      return { name, label, state, stateText: s.phaseState[state]!, startText: '', durationText: '' };
    }
    const running = run.status === 'running' && p === last;
    const state = p.status === 'failed' ? 'failed' : p.status === 'skipped' ? 'skipped' : running ? 'running' : 'done';
    const ms = running && p.startedAt ? now.getTime() - new Date(p.startedAt).getTime() : p.durationMs ?? null;
    return { name, label, state, stateText: s.phaseState[state]!, startText: dateTime(p.startedAt ?? null, lang), durationText: ms === null ? '' : formatSeconds(Math.max(0, ms) / 1000, lang) };
  });
}

/** One sentence for the status region: state, current step, verdict. */
export function statusText(run: RunRow, phases: PhaseView[], s: Strings, lang: Lang): string {
  const state = s.runStatus[run.status] ?? run.status;
  if (run.status === 'finished') return `${state}: ${verdictLabel(run.verdict, lang)}`;
  const current = phases.find((p) => p.state === 'running');
  return current && current.name !== 'queued' ? `${state} – ${current.label}` : state;
}
