import { createHash, randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { DB, RunRow } from '../../db/schema.js';
import type { RunRepository } from '../../db/repositories/run.repository.js';
import type { Repositories } from '../../db/repositories/index.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { finding, type Finding } from '../findings.js';
import type { ManualStep, RestorePlan } from '../plans/plan.types.js';
import type { RunFinisher } from '../runs/run-finisher.js';
import { decideVerdict, measureTargets } from '../runs/verdict.js';

export type StepResult = 'ok' | 'deviation' | 'not-done';

/**
 * A step as the run keeps it: a check of kind `step`, so the run page, the
 * protocol and the reports show the procedure like any run's checks.
 * Status: ok → passed, deviation → failed, not done (or never answered) →
 * skipped, which keeps the run from passing.
 */
export interface StepCheck {
  name: string;
  kind: 'step';
  status: 'passed' | 'failed' | 'skipped';
  expected: string;
  actual: string | null;
  message: string;
  step: {
    index: number; result: StepResult | null; at: string | null; by: string | null; restoresService: boolean; evidenceRequired: boolean;
    /** What was handed in for this step; the contents are hashed into the run's record at completion. */
    attachments?: UploadRef[];
  };
}

/** An attachment as the run names it: the name in the record, its hash and size. */
export interface UploadRef { name: string; sha256: string; sizeBytes: number; mediaType: string }

/** A file from a page's form (multipart), as the app hands it to the page. */
export interface UploadedFile { filename: string; mimetype: string; content: Buffer }

/** Limits of what people hand in: per file, and per run in all. */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
export const MAX_RUN_UPLOAD_BYTES = 50 * 1024 * 1024;
const MAX_UPLOADS_PER_RUN = 100;
/** Shown inline nowhere: every attachment is a download; these types are kept as sent, anything else is application/octet-stream. */
const KNOWN_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/csv', 'application/json', 'application/zip']);

/** A file name as the record keeps it: letters, digits, ".", "-", "_"; everything else "_"; never hidden, never empty. */
export function uploadName(raw: string): string {
  const base = raw.split(/[\\/]/).pop() ?? '';
  const clean = base.normalize('NFC').replace(/[^\p{L}\p{N}._-]+/gu, '_').replace(/^[._]+/, '').slice(-80);
  return clean || 'datei';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UNIQUE_VIOLATION = '23505';
const WORDS: Record<StepResult, string> = { ok: 'erledigt', deviation: 'Abweichung', 'not-done': 'nicht erledigt' };

function blankSteps(steps: ManualStep[]): StepCheck[] {
  const restoring = steps.findIndex((s) => s.restoresService);
  const rto = restoring === -1 ? steps.length - 1 : restoring;
  return steps.map((s, index) => ({
    name: `${index + 1}. ${s.title}`, kind: 'step', status: 'skipped', expected: s.expected ?? 'erledigt', actual: null, message: 'noch nicht bearbeitet',
    step: { index, result: null, at: null, by: null, restoresService: index === rto, evidenceRequired: s.evidenceRequired === true },
  }));
}

/**
 * A test people carry out (a manual test, an exercise) begins as a running
 * run of its origin, stamped by the business clock; one at a time per plan
 * (the database's unique active-run index), else 409 naming the one in
 * progress.
 */
export async function startPeopleRun(
  runs: RunRepository,
  r: { tenantId: string; planId: string; versionHash: string; by: string; origin: 'manual' | 'exercise'; at: Date; checks: unknown[]; restore?: unknown },
): Promise<RunRow> {
  const id = randomUUID();
  try {
    await runs.insert({
      id, tenant_id: r.tenantId, plan_id: r.planId, plan_version_hash: r.versionHash, status: 'running',
      trigger: 'manual', triggered_by: r.by, origin: r.origin, queued_at: r.at, started_at: r.at,
      checks: JSON.stringify(r.checks) as never, phases: '[]' as never, findings: '[]' as never,
      ...(r.restore !== undefined && { restore: JSON.stringify(r.restore) as never }),
    });
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
      const active = await runs.activeForPlan(r.tenantId, r.planId);
      throw new Conflict(`plan ${r.planId} already has ${r.origin === 'exercise' ? 'an exercise' : 'a test'} in progress`, { activeRunId: active?.id ?? null });
    }
    throw err;
  }
  return (await runs.get(r.tenantId, id))!;
}

/**
 * Restore tests people carry out by a written procedure (kind: manual): a
 * person starts the run, records each step's result with a note (the
 * server's clock stamps it), and completes it. The measured RTO runs from the
 * start to the step that restores the service. The verdict follows the same
 * rules as every run: a deviation fails it, a step not done keeps it from
 * passing (error: not tested completely). A second person signs it off with
 * the existing four-eyes review.
 */
export class ManualRunService {
  private readonly plans: Repositories['plans'];
  private readonly runs: Repositories['runs'];
  private readonly uploads: Repositories['uploads'];
  constructor(
    private readonly db: Kysely<DB>, repos: Pick<Repositories, 'plans' | 'runs' | 'uploads'>, private readonly finisher: RunFinisher, private readonly clock: () => Date,
  ) {
    this.plans = repos.plans;
    this.runs = repos.runs;
    this.uploads = repos.uploads;
  }

  async start(tenantId: string, planId: string, by: string): Promise<RunRow> {
    const plan = await this.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    const def = plan.definition as RestorePlan;
    if (def.kind !== 'manual' || !def.steps?.length) throw new Conflict(`plan ${planId} is not a manual test (kind: manual with steps)`);
    return startPeopleRun(this.runs, { tenantId, planId, versionHash: plan.version_hash, by, origin: 'manual', at: this.clock(), checks: blankSteps(def.steps) });
  }

  /** 404 before anything else (parameter and body validation included) for a run this tenant does not have. */
  async mustExist(tenantId: string, runId: string): Promise<void> {
    if (!(UUID.test(runId) && (await this.runs.get(tenantId, runId)))) throw new NotFound(`run ${runId}`);
  }

  private async running(tenantId: string, runId: string): Promise<RunRow> {
    const run = UUID.test(runId) ? await this.runs.get(tenantId, runId) : undefined;
    if (!run) throw new NotFound(`run ${runId}`);
    if (run.origin !== 'manual') throw new Conflict(`run ${runId} is not a manual test`);
    if (run.status !== 'running') throw new Conflict(`run ${runId} is already finished (${run.verdict})`);
    return run;
  }

  /** Records one step's result; a step may be recorded again while the run is open (the newest counts, the time is the newest). */
  async recordStep(tenantId: string, runId: string, index: number, input: { result: StepResult; note?: string }, by: string): Promise<RunRow> {
    await this.running(tenantId, runId);
    const note = (input.note ?? '').trim().slice(0, 2000);
    if (input.result === 'deviation' && !note) throw new Invalid('invalid step', [{ path: 'note', message: 'a deviation needs a note: what happened' }]);
    await this.db.transaction().execute(async (trx) => {
      // read-modify-write of the steps under the run's lock: a file handed in at the same time is not lost
      const steps = (await this.lockRunning(trx, tenantId, runId)).checks as StepCheck[];
      const s = steps[index];
      if (!s) throw new Invalid('invalid step', [{ path: 'index', message: `the test has steps 0 to ${steps.length - 1}` }]);
      steps[index] = {
        ...s,
        status: input.result === 'ok' ? 'passed' : input.result === 'deviation' ? 'failed' : 'skipped',
        actual: WORDS[input.result],
        message: note || WORDS[input.result],
        step: { ...s.step, result: input.result, at: this.clock().toISOString(), by },
      };
      await this.runs.setChecks(tenantId, runId, steps, trx);
    });
    return (await this.runs.get(tenantId, runId))!;
  }

  /** The run's row, locked, if it is this tenant's open manual test; Conflict once it is finished. */
  private async lockRunning(trx: Transaction<DB>, tenantId: string, runId: string): Promise<RunRow> {
    const run = await this.runs.getForUpdate(tenantId, runId, trx);
    if (!run) throw new NotFound(`run ${runId}`);
    if (run.status !== 'running') throw new Conflict(`run ${runId} was finished meanwhile`);
    return run;
  }

  /**
   * Hands in a file for a step (a screenshot, a log): kept with the open run,
   * hashed into its signed record at completion. The name is made safe and
   * unique within the run (`step-02-screenshot.png`).
   */
  async attach(tenantId: string, runId: string, index: number, file: { name: string; mediaType?: string; content: Buffer }, by: string): Promise<UploadRef> {
    const run = await this.running(tenantId, runId);
    const steps = run.checks as StepCheck[];
    const s = steps[index];
    if (!s) throw new Invalid('invalid attachment', [{ path: 'index', message: `the test has steps 0 to ${steps.length - 1}` }]);
    if (file.content.length === 0) throw new Invalid('invalid attachment', [{ path: 'file', message: 'the file is empty' }]);
    if (file.content.length > MAX_UPLOAD_BYTES) throw new Invalid('invalid attachment', [{ path: 'file', message: `a file is at most ${MAX_UPLOAD_BYTES / 2 ** 20} MiB` }]);
    const mediaType = KNOWN_TYPES.has((file.mediaType ?? '').toLowerCase()) ? file.mediaType!.toLowerCase() : 'application/octet-stream';
    const sha256 = createHash('sha256').update(file.content).digest('hex');
    return this.db.transaction().execute(async (trx) => {
      // one upload at a time per run, and none after the test was completed: the totals, the names and the record stay exact
      await this.lockRunning(trx, tenantId, run.id);
      const have = await this.uploads.existing(tenantId, run.id, trx);
      if (have.length >= MAX_UPLOADS_PER_RUN) throw new Invalid('invalid attachment', [{ path: 'file', message: `a test keeps at most ${MAX_UPLOADS_PER_RUN} attachments` }]);
      const total = have.reduce((n, u) => n + u.size_bytes, 0) + file.content.length;
      if (total > MAX_RUN_UPLOAD_BYTES) throw new Invalid('invalid attachment', [{ path: 'file', message: `a test's attachments are at most ${MAX_RUN_UPLOAD_BYTES / 2 ** 20} MiB together` }]);
      const stem = `step-${String(index + 1).padStart(2, '0')}-${uploadName(file.name)}`;
      const taken = new Set(have.map((u) => u.name));
      let name = stem;
      for (let n = 2; taken.has(name); n++) name = stem.replace(/(\.[^.]*)?$/, (ext) => `-${n}${ext}`);
      await this.uploads.insert({
        id: randomUUID(), tenantId, runId: run.id, stepIndex: index, name, mediaType, sha256, content: file.content, uploadedBy: by, uploadedAt: this.clock(),
      }, trx);
      const ref: UploadRef = { name, sha256, sizeBytes: file.content.length, mediaType };
      const current = (await this.runs.checks(tenantId, run.id, trx)) as StepCheck[];
      const step = current[index]!;
      step.step.attachments = [...(step.step.attachments ?? []), ref];
      await this.runs.setChecks(tenantId, run.id, current, trx);
      return ref;
    });
  }

  /** An attachment's content: from the open run, or from the finished run's record (null once its retention pruned it). */
  async attachment(tenantId: string, runId: string, name: string): Promise<{ name: string; mediaType: string; sha256: string; content: Buffer | null }> {
    const run = UUID.test(runId) ? await this.runs.get(tenantId, runId) : undefined;
    if (!run) throw new NotFound(`run ${runId}`);
    const up = await this.uploads.byName(tenantId, run.id, name);
    if (up?.content) return { name: up.name, mediaType: up.media_type, sha256: up.sha256, content: up.content };
    const kept = await this.uploads.inRecord(tenantId, run.id, name);
    if (!kept) throw new NotFound(`attachment ${name}`);
    return { name: kept.name, mediaType: up?.media_type ?? 'application/octet-stream', sha256: kept.sha256, content: kept.content };
  }

  /** Ends the test: verdict, measured RTO (start → the service-restoring step), the signed record. */
  async complete(tenantId: string, runId: string, input: { note?: string }, by: string): Promise<RunRow> {
    const run = await this.running(tenantId, runId);
    const seen = JSON.stringify(run.checks);
    const plan = await this.plans.getVersion(tenantId, run.plan_id, run.plan_version_hash) as RestorePlan | undefined;
    if (!plan) throw new NotFound(`plan ${run.plan_id}`);
    const steps = run.checks as StepCheck[];
    const findings: Finding[] = [];
    const deviations = steps.filter((s) => s.step.result === 'deviation');
    const open = steps.filter((s) => s.step.result !== 'ok' && s.step.result !== 'deviation');
    for (const s of deviations) findings.push(finding('MANUAL_DEVIATION', `${s.name}: ${s.message}`.slice(0, 300)));
    const unproven = steps.filter((s) => s.step.evidenceRequired && s.step.result === 'ok' && !s.step.attachments?.length);
    if (unproven.length) findings.push(finding('MANUAL_EVIDENCE_MISSING', `${unproven.length} step(s) need an attachment as evidence and have none: ${unproven.slice(0, 3).map((s) => s.name).join('; ')}${unproven.length > 3 ? ' …' : ''}`));
    if (open.length) findings.push(finding('MANUAL_STEPS_NOT_DONE', `${open.length} of ${steps.length} step(s) not done: ${open.slice(0, 3).map((s) => s.name).join('; ')}${open.length > 3 ? ' …' : ''}`));
    for (const s of steps) if (s.step.result === null) s.message = 'nicht bearbeitet';
    const restoring = steps.find((s) => s.step.restoresService);
    const measured = restoring?.step.result === 'ok' && restoring.step.at && run.started_at
      ? (Date.parse(restoring.step.at) - run.started_at.getTime()) / 1000 : null;
    const targets = measureTargets(plan.targets, measured, null);
    if (targets.rto.met === false) findings.push(finding('RTO_EXCEEDED', `the service was back after ${Math.round(measured!)}s, RTO is ${plan.targets.rtoSeconds}s`));
    // every step has its result; open ones already made MANUAL_STEPS_NOT_DONE, so the verdict rules see them as checks too
    const verdict = decideVerdict({ findings, checks: steps.map((s) => ({ status: s.status })), restored: restoring?.step.result === 'ok' });
    const finishedAt = this.clock();
    const uploads = await this.uploads.withContent(tenantId, run.id);
    const ids = uploads.map((u) => u.id);
    const row = await this.finisher.finishUnclaimed(run.id, {
      verdict, findings, checks: steps, ...targets, finishedAt,
      restore: { procedure: plan.title, completedBy: by, ...(input.note?.trim() && { note: input.note.trim().slice(0, 2000) }), steps: steps.length, done: steps.length - open.length },
    }, 'running', {
      attachments: uploads.map((u) => ({ name: u.name, content: u.content!, retain: 'record' as const })),
      // a step or a file recorded while this was decided: nothing is signed without it (the person completes again)
      before: async (trx, current) => {
        const now = await this.uploads.idsWithContent(tenantId, run.id, trx);
        if (JSON.stringify(current.checks) !== seen || now.length !== ids.length || now.some((u) => !ids.includes(u.id))) {
          throw new Conflict(`run ${runId} changed while it was being completed (a step or a file was recorded); complete it again`);
        }
      },
      // the contents are the record's attachments now; the upload rows keep their names and hashes
      also: async (trx) => {
        if (ids.length) await this.uploads.dropContent(tenantId, ids, trx);
        return undefined;
      },
    });
    if (!row) throw new Conflict(`run ${runId} was finished meanwhile`);
    return row;
  }
}
