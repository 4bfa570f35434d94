import type { Verdict } from '../../db/schema.js';
import type { ReportRepository } from '../../db/repositories/report.repository.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { addDuration, zonedToUtc } from '../util/calendar.js';
import { nextSlot } from '../scheduling/slots.js';
import { planStatus, type PlanStatus } from '../runs/plan-status.js';

/**
 * The test programme (Testprogramm): every planned test of a tenant in a
 * period — scheduled slots, due dates of the required cadence, and what was
 * actually done — for every kind of plan (restored by ernstfall, reported by
 * another tool, carried out by people, exercises). The year view (page, PDF,
 * CSV) and the iCalendar feed both read it.
 *
 * Due dates follow the plan status rule: a due date is the start of the last
 * passed test (or the plan's creation) plus `requiredEvery`. Past due dates
 * come from the passed tests that met them (done, or late when the test came
 * after the due date and its grace); after the last passed test the next due
 * date is planned (or overdue once it and its grace have passed). For a plan
 * without a running schedule (manual tests, exercises, tools that report)
 * later ones are projected as if each test passed on its due date; a
 * scheduled plan's slots stand for them.
 */
export type PlanKind = 'restore' | 'external' | 'manual' | 'exercise';
export type OccurrenceType = 'scheduled' | 'due' | 'run';
export type OccurrenceState = 'planned' | 'done' | 'late' | 'overdue' | Verdict;

export interface Occurrence {
  at: Date;
  type: OccurrenceType;
  state: OccurrenceState;
  /** A projected due date (after the next one): assumes each test passes on its due date. */
  projected?: boolean;
  runId?: string;
}

export interface ProgrammePlan {
  planId: string;
  title: string;
  kind: PlanKind;
  system: string | null;
  schedule: string | null;
  requiredEvery: string | null;
  timezone: string;
  paused: boolean;
  status: PlanStatus;
  occurrences: Occurrence[];
}

export interface PlanInput {
  id: string;
  title: string;
  definition: RestorePlan;
  createdAt: Date;
  lastSlot: Date | null;
  paused: boolean;
}
export interface RunInput { id: string; planId: string; verdict: Verdict | null; startedAt: Date | null; queuedAt: Date; finishedAt: Date | null }

/** At most this many occurrences of one kind per plan (a nightly schedule over a year is 365). */
export const MAX_PER_PLAN = 400;

/** Scheduled slots in (max(from, now), to]: past slots are the runs themselves. */
function scheduled(def: RestorePlan, p: PlanInput, from: Date, to: Date, now: Date, cap: number): Occurrence[] {
  const schedule = def.cadence.schedule;
  if (!schedule || p.paused) return [];
  const out: Occurrence[] = [];
  let after = new Date(Math.max(from.getTime() - 1, now.getTime(), p.lastSlot?.getTime() ?? 0));
  while (out.length < cap) {
    const next = nextSlot(schedule, def.cadence.timezone, after);
    if (!next || next > to) break;
    out.push({ at: next, type: 'scheduled', state: 'planned' });
    after = next;
  }
  return out;
}

/** Due dates of the required cadence that fall into [from, to]. */
function dues(def: RestorePlan, p: PlanInput, passed: RunInput[], from: Date, to: Date, now: Date, cap: number): Occurrence[] {
  const every = def.cadence.requiredEvery;
  if (!every) return [];
  const tz = def.cadence.timezone;
  const grace = (d: Date) => (def.cadence.grace ? addDuration(d, def.cadence.grace, tz) : d);
  const out: Occurrence[] = [];
  const push = (o: Occurrence) => { if (o.at >= from && o.at <= to && out.length < cap) out.push(o); };
  let clock = p.createdAt;
  for (const r of passed) {
    const start = r.startedAt ?? r.queuedAt;
    const due = addDuration(clock, every, tz);
    push({ at: due, type: 'due', state: start <= grace(due) ? 'done' : 'late', runId: r.id });
    clock = start;
  }
  let due = addDuration(clock, every, tz);
  push({ at: due, type: 'due', state: now > grace(due) ? 'overdue' : 'planned' });
  // a running schedule keeps the cadence by itself: its slots are in the programme, later due dates would only repeat them
  if (def.cadence.schedule && !p.paused) return out;
  // projected: as if each test passed on its due date; an overdue one is projected from today
  let base = due < now ? now : due;
  for (let i = 0; i < cap && base <= to; i++) {
    due = addDuration(base, every, tz);
    if (due > to) break;
    push({ at: due, type: 'due', state: 'planned', projected: true });
    base = due;
  }
  return out;
}

export function planKind(def: RestorePlan): PlanKind {
  return def.kind ?? 'restore';
}

/** One plan's programme in [from, to]: its runs there, its scheduled slots ahead, its due dates. */
export function planProgramme(p: PlanInput, runs: RunInput[], from: Date, to: Date, now: Date, cap = MAX_PER_PLAN): ProgrammePlan {
  const def = p.definition;
  const mine = runs.filter((r) => r.planId === p.id);
  const passed = mine.filter((r) => r.verdict === 'passed').sort((a, b) => (a.startedAt ?? a.queuedAt).getTime() - (b.startedAt ?? b.queuedAt).getTime());
  const done: Occurrence[] = mine
    .filter((r) => r.finishedAt && r.finishedAt >= from && r.finishedAt <= to && r.verdict)
    .map((r) => ({ at: r.startedAt ?? r.queuedAt, type: 'run' as const, state: r.verdict!, runId: r.id }));
  const occurrences = [...done.slice(0, cap), ...scheduled(def, p, from, to, now, cap), ...dues(def, p, passed, from, to, now, cap)]
    .sort((a, b) => a.at.getTime() - b.at.getTime() || a.type.localeCompare(b.type));
  // as it stood at the period's end (a past year), or today
  const asOf = now < to ? now : to;
  const status = planStatus(def, p.createdAt, mine.filter((r) => !r.finishedAt || r.finishedAt <= asOf)
    .map((r) => ({ status: 'finished', verdict: r.verdict, queued_at: r.queuedAt, started_at: r.startedAt, finished_at: r.finishedAt })), asOf).status;
  return {
    planId: p.id, title: p.title, kind: planKind(def), system: def.system?.name ?? null, schedule: def.cadence.schedule ?? null,
    requiredEvery: def.cadence.requiredEvery ?? null, timezone: def.cadence.timezone, paused: p.paused, status, occurrences,
  };
}

/** The year of an instant in Europe/Berlin (the programme's default year). */
export const berlinYear = (at: Date) => Number(new Intl.DateTimeFormat('en', { timeZone: 'Europe/Berlin', year: 'numeric' }).format(at));

/** The calendar year in Europe/Berlin: [1 Jan 00:00, 31 Dec 24:00). */
export function yearBounds(year: number): { from: Date; to: Date } {
  return { from: zonedToUtc(year, 1, 1, 0, 0, 0, 'Europe/Berlin'), to: new Date(zonedToUtc(year + 1, 1, 1, 0, 0, 0, 'Europe/Berlin').getTime() - 1) };
}

/** Every plan of the tenant and the runs the programme needs, read in two queries. */
export async function loadProgramme(reports: ReportRepository, tenantId: string, from: Date, to: Date, now: Date, cap = MAX_PER_PLAN): Promise<ProgrammePlan[]> {
  const plans = await reports.programmePlans(tenantId);
  const [inPeriod, passedBefore, decisive] = await reports.programmeRuns(tenantId, from, to, now < to ? now : to);
  const seen = new Set<string>();
  const runs = [...passedBefore, ...decisive, ...inPeriod].filter((r) => !seen.has(r.id) && seen.add(r.id))
    .sort((a, b) => a.queued_at.getTime() - b.queued_at.getTime());
  const input: RunInput[] = runs.map((r) => ({ id: r.id, planId: r.plan_id, verdict: r.verdict, startedAt: r.started_at, queuedAt: r.queued_at, finishedAt: r.finished_at }));
  return plans.map((p) => planProgramme({
    id: p.id, title: p.title, definition: p.definition as RestorePlan, createdAt: p.created_at, lastSlot: p.last_slot ?? null, paused: p.paused_at !== null && p.paused_at !== undefined,
  }, input, from, to, now, cap));
}
