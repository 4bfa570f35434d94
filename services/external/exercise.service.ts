import { randomUUID } from 'node:crypto';
import type { RunRow } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { finding, type Finding } from '../findings.js';
import type { RestorePlan } from '../plans/plan.types.js';
import type { RunFinisher } from '../runs/run-finisher.js';
import { decideVerdict, measureTargets } from '../runs/verdict.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import { createMeasure, validDate } from '../evidence/review.service.js';
import { startPeopleRun } from './manual.service.js';

export type ObservationKind = 'note' | 'finding' | 'service-restored';
export const OBSERVATION_KINDS: ObservationKind[] = ['note', 'finding', 'service-restored'];

export interface Participant { name: string; role?: string }
export interface MeasureInput { title: string; owner: string; dueDate: string }

/**
 * An observation as the run keeps it: a check of kind `observation`, so the
 * run page, the protocol and the reports show an exercise's timeline like any
 * run's checks. A finding is `failed` and names the measure it becomes.
 */
export interface ObservationCheck {
  name: string;
  kind: 'observation';
  status: 'passed' | 'failed';
  expected: string;
  actual: string;
  message: string;
  observation: { index: number; kind: ObservationKind; at: string; by: string; measure?: MeasureInput };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_OBSERVATIONS = 500;
const WORDS: Record<ObservationKind, string> = { note: 'Beobachtung', finding: 'Feststellung', 'service-restored': 'Dienst wieder verfügbar' };

/**
 * Emergency and recovery exercises (kind: exercise; BSI 200-4's
 * Planbesprechung, Begehung, Stabsübung, Vollübung): people start one with its
 * participants and their roles, record what they observe as it happens (the
 * server's clock stamps it), and complete it. Every finding becomes a
 * follow-up measure with an owner and a due date, recorded with the run in one
 * transaction and closed, as every measure, by a later passed exercise or
 * test of the plan. The verdict follows the rules of every run: a finding
 * fails it, no observation at all is not a documented exercise (error).
 */
export class ExerciseService {
  private readonly plans: Repositories['plans'];
  private readonly runs: Repositories['runs'];
  private readonly reviews: Repositories['reviews'];
  constructor(
    repos: Pick<Repositories, 'plans' | 'runs' | 'reviews'>, private readonly finisher: RunFinisher, private readonly ledger: LedgerService, private readonly clock: () => Date,
  ) {
    this.plans = repos.plans;
    this.runs = repos.runs;
    this.reviews = repos.reviews;
  }

  async start(tenantId: string, planId: string, input: { participants: Participant[] }, by: string): Promise<RunRow> {
    const plan = await this.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    const def = plan.definition as RestorePlan;
    if (def.kind !== 'exercise' || !def.exercise) throw new Conflict(`plan ${planId} is not an exercise (kind: exercise)`);
    const participants = input.participants.map((p) => ({ name: p.name.trim(), ...(p.role?.trim() && { role: p.role.trim() }) }));
    const problems = participants.flatMap((p, i) => (p.name ? [] : [{ path: `participants[${i}].name`, message: 'a name' }]));
    if (participants.length === 0) problems.push({ path: 'participants', message: 'at least one participant: who takes part, in which role' });
    if (problems.length) throw new Invalid('invalid exercise', problems);
    return startPeopleRun(this.runs, { tenantId, planId, versionHash: plan.version_hash, by, origin: 'exercise', at: this.clock(), checks: [], restore: { exercise: def.exercise, participants } });
  }

  /** Whether the run is one of this tenant's exercises (404 for a run the tenant does not have). */
  async isExercise(tenantId: string, runId: string): Promise<boolean> {
    const run = UUID.test(runId) ? await this.runs.get(tenantId, runId) : undefined;
    if (!run) throw new NotFound(`run ${runId}`);
    return run.origin === 'exercise';
  }

  private async running(tenantId: string, runId: string): Promise<RunRow> {
    const run = UUID.test(runId) ? await this.runs.get(tenantId, runId) : undefined;
    if (!run) throw new NotFound(`run ${runId}`);
    if (run.origin !== 'exercise') throw new Conflict(`run ${runId} is not an exercise`);
    if (run.status !== 'running') throw new Conflict(`run ${runId} is already finished (${run.verdict})`);
    return run;
  }

  /** Records what was observed, stamped with the server's time; a finding names the measure it becomes. */
  async observe(tenantId: string, runId: string, input: { kind: ObservationKind; text: string; measure?: MeasureInput }, by: string): Promise<RunRow> {
    const run = await this.running(tenantId, runId);
    const text = input.text.trim().slice(0, 2000);
    const problems: { path: string; message: string }[] = [];
    if (!text) problems.push({ path: 'text', message: 'what was observed' });
    const m = input.measure && { title: input.measure.title.trim(), owner: input.measure.owner.trim(), dueDate: input.measure.dueDate.trim() };
    if (input.kind === 'finding') {
      if (!m) problems.push({ path: 'measure', message: 'a finding becomes a measure: {title, owner, dueDate}' });
      else {
        if (!m.title) problems.push({ path: 'measure.title', message: 'what is to be done' });
        if (!m.owner) problems.push({ path: 'measure.owner', message: 'who does it' });
        if (!validDate(m.dueDate)) problems.push({ path: 'measure.dueDate', message: 'a date YYYY-MM-DD' });
      }
    } else if (m) problems.push({ path: 'measure', message: 'only a finding becomes a measure' });
    if (problems.length) throw new Invalid('invalid observation', problems);
    const list = run.checks as ObservationCheck[];
    if (list.length >= MAX_OBSERVATIONS) throw new Invalid('invalid observation', [{ path: 'text', message: `an exercise keeps at most ${MAX_OBSERVATIONS} observations` }]);
    const at = this.clock().toISOString();
    const index = list.length;
    list.push({
      name: `${index + 1}. ${text.split('\n')[0]!.slice(0, 80)}`, kind: 'observation', status: input.kind === 'finding' ? 'failed' : 'passed',
      expected: '', actual: WORDS[input.kind], message: text,
      observation: { index, kind: input.kind, at, by, ...(m && input.kind === 'finding' && { measure: m }) },
    });
    // two people writing at once: the second one's list must contain the first one's entry
    const updated = await this.runs.setChecksIfUnchanged(tenantId, run.id, list, index);
    if (!updated) throw new Conflict(`run ${runId} changed meanwhile (finished, or another observation was recorded); reload and record it again`);
    return (await this.runs.get(tenantId, run.id))!;
  }

  /** Ends the exercise: verdict, measured RTO (start → the first "service restored"), the signed record and the measures. */
  async complete(tenantId: string, runId: string, input: { note?: string }, by: string): Promise<RunRow> {
    const run = await this.running(tenantId, runId);
    const seen = JSON.stringify(run.checks);
    const plan = await this.plans.getVersion(tenantId, run.plan_id, run.plan_version_hash) as RestorePlan | undefined;
    if (!plan) throw new NotFound(`plan ${run.plan_id}`);
    const list = run.checks as ObservationCheck[];
    const facts = run.restore as { exercise: RestorePlan['exercise']; participants: Participant[] };
    const findings: Finding[] = [];
    const found = list.filter((o) => o.observation.kind === 'finding');
    for (const o of found) {
      const m = o.observation.measure!;
      findings.push(finding('EXERCISE_FINDING', `${o.name}: ${o.message} → ${m.title} (${m.owner}, ${m.dueDate})`.slice(0, 400)));
    }
    if (list.length === 0) findings.push(finding('EXERCISE_NOT_DOCUMENTED', 'the exercise was completed without a single observation: nothing shows what happened'));
    const filled = new Set(facts.participants.map((p) => p.role?.toLowerCase()).filter(Boolean));
    const missing = (plan.exercise?.roles ?? []).filter((r) => !filled.has(r.toLowerCase()));
    if (missing.length) findings.push(finding('EXERCISE_ROLE_MISSING', `no participant in the role(s) the plan names: ${missing.join(', ')}`));
    const back = list.find((o) => o.observation.kind === 'service-restored');
    const measured = back && run.started_at ? (Date.parse(back.observation.at) - run.started_at.getTime()) / 1000 : null;
    const targets = measureTargets(plan.targets, measured, null);
    if (targets.rto.met === false) findings.push(finding('RTO_EXCEEDED', `the service was back after ${Math.round(measured!)}s in the exercise, RTO is ${plan.targets.rtoSeconds}s`));
    const verdict = decideVerdict({ findings, checks: list.map((o) => ({ status: o.status })), restored: true });
    const finishedAt = this.clock();
    const measureIds: string[] = [];
    const row = await this.finisher.finishUnclaimed(run.id, {
      verdict, findings, checks: list, ...targets, finishedAt,
      restore: { ...facts, completedBy: by, observations: list.length, ...(input.note?.trim() && { note: input.note.trim().slice(0, 2000) }) },
    }, 'running', {
      // an observation recorded while this was decided (a finding among them) is never dropped: complete again
      before: async (_trx, current) => {
        if (JSON.stringify(current.checks) !== seen) throw new Conflict(`run ${runId} changed while it was being completed (an observation was recorded); complete it again`);
      },
      also: async (trx) => {
        let last: LedgerRecord | undefined;
        for (const o of found) {
          const m = o.observation.measure!;
          const id = randomUUID();
          measureIds.push(id);
          last = await createMeasure(this.ledger, this.reviews, trx, { id, tenantId, planId: run.plan_id, runId: run.id, reviewId: null, title: m.title, owner: m.owner, dueDate: m.dueDate, by: o.observation.by, now: finishedAt });
        }
        return last;
      },
    });
    if (!row) throw new Conflict(`run ${runId} was finished meanwhile`);
    return row;
  }
}
