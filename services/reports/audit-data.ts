import type { Repositories } from '../../db/repositories/index.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import { parseEnvelope } from '../evidence/ledger-format.js';
import { verifyChain } from '../evidence/verify.js';
import { fingerprintOfKey } from '../evidence/signing-key.js';
import { planStatus } from '../runs/plan-status.js';
import { addDuration } from '../util/calendar.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { CONTROLS } from './controls.js';
import { periodDays } from './period.js';
import { exerciseFormatLabel } from './i18n.js';
import type { SystemService } from '../systems/system.service.js';
import { toAuditEntry } from '../audit/audit.service.js';
import type { AuditReportData, KindTally, Lang, MeasureData, PlanKindName, SystemRow, VerdictName } from './report.types.js';

interface RunPayload {
  run: {
    id: string; planId: string; verdict: VerdictName | null; queuedAt: string; startedAt: string | null; finishedAt: string | null;
    rto: { measuredSeconds: number | null; met: boolean | null } | null;
    rpo: { backupAgeSeconds: number | null; met: boolean | null } | null;
  };
}

/** What the report reads of a restart test's record (services/systems/restart-test.service.ts). */
interface RestartTestPayload {
  id: string; process: string; verdict: VerdictName; finishedAt: string;
  rto: { targetSeconds: number | null; measuredSeconds: number | null; met: boolean | null };
  tiers: { tier: number; state: string; seconds: number | null; runs: { system: { name: string } }[] }[];
  notTested: { systemName: string }[];
  findings: { code: string }[];
}

const t = (lang: Lang, de: string, en: string) => (lang === 'de' ? de : en);

/**
 * "Tested in time" over the period: at no moment of the period was the plan
 * overdue by the status rule (only a passed run resets the due clock). A
 * plan without a required interval needs one performed test in the period.
 */
export function testedInTime(plan: RestorePlan, createdAt: Date, passedStarts: Date[], performedInPeriod: number, from: Date, end: Date): boolean {
  const every = plan.cadence.requiredEvery;
  if (!every) return performedInPeriod > 0;
  const tz = plan.cadence.timezone;
  const anchors = [createdAt, ...passedStarts.filter((d) => d > createdAt && d < end)].sort((a, b) => a.getTime() - b.getTime());
  for (let i = 0; i < anchors.length; i++) {
    const due = addDuration(anchors[i]!, every, tz);
    const deadline = plan.cadence.grace ? addDuration(due, plan.cadence.grace, tz) : due;
    const next = anchors[i + 1] ?? end;
    // overdue from the deadline until the next passed test: does that stretch touch the period?
    if (deadline < next && deadline < end && next > from) return false;
  }
  return true;
}

/**
 * Everything the audit report shows, read from the verified ledger (not from
 * mutable tables where evidence exists). `period` is from (inclusive) to
 * (exclusive) as instants — for dates, reportPeriod() (local midnight to local
 * midnight in Europe/Berlin); `now` is the report's time ("generated at", the
 * end of a period not over yet) from the caller's clock.
 */
export async function buildAuditData(
  sources: { repos: Pick<Repositories, 'tenants' | 'reports' | 'reviews'>; systems: Pick<SystemService, 'overview'> }, ledger: LedgerService, tenantId: string, period: { from: Date; to: Date; firstDay?: string; lastDay?: string }, lang: Lang, now: Date,
): Promise<AuditReportData> {
  const { repos } = sources;
  const tenant = { name: await repos.tenants.name(tenantId) };
  const records = await ledger.repo.list(tenantId);
  const verification = verifyChain(records, { trustedKeys: ledger.trusted(), checkpoints: ledger.checkpoints(tenantId), tenantId });
  const end = period.to < now ? period.to : now;

  const runsByPlan = new Map<string, RunPayload['run'][]>();
  const reviews: AuditReportData['deviations'] = [];
  const activity: NonNullable<AuditReportData['activity']> = [];
  const restartTests: NonNullable<AuditReportData['restartTests']> = [];
  for (const r of records) {
    if (r.kind === 'run') {
      const full = (parseEnvelope(r).payload as unknown as RunPayload).run;
      // keep only what the report uses: a year of runs must fit in little memory
      const run: RunPayload['run'] = {
        id: full.id, planId: full.planId, verdict: full.verdict, queuedAt: full.queuedAt, startedAt: full.startedAt, finishedAt: full.finishedAt,
        rto: full.rto ? { measuredSeconds: full.rto.measuredSeconds, met: full.rto.met } : null,
        rpo: full.rpo ? { backupAgeSeconds: full.rpo.backupAgeSeconds, met: full.rpo.met } : null,
      };
      const list = runsByPlan.get(run.planId) ?? [];
      list.push(run);
      runsByPlan.set(run.planId, list);
    } else if (r.kind === 'review') {
      const env = parseEnvelope(r);
      const p = env.payload as { runId: string; planId: string; decision: string; comment: string; reviewer: string };
      const at = env.createdAt;
      if (p.decision !== 'approved' && new Date(at) >= period.from && new Date(at) < period.to) {
        reviews.push({ runId: p.runId, planId: p.planId, decision: p.decision, comment: p.comment, reviewer: p.reviewer, at });
      }
    } else if (r.kind === 'restart-test' && r.createdAt >= period.from && r.createdAt < period.to) {
      const x = (parseEnvelope(r).payload as { restartTest: RestartTestPayload }).restartTest;
      restartTests.push({
        id: x.id, process: x.process, verdict: x.verdict, finishedAt: x.finishedAt, rto: x.rto,
        tiers: x.tiers.map((tr) => ({ tier: tr.tier, state: tr.state, seconds: tr.seconds, systems: [...new Set(tr.runs.map((run) => run.system.name))] })),
        notTested: x.notTested.map((n) => n.systemName), findings: x.findings.map((f) => f.code),
      });
    } else if (r.kind === 'audit' && r.createdAt >= period.from && r.createdAt < period.to) {
      const e = toAuditEntry(r);
      activity.push({ seq: e.seq, at: e.at, action: e.action, actor: e.actor?.name ?? '—', subject: e.subject ? `${e.subject.type} ${e.subject.id}` : null });
    }
  }

  const plans = await repos.reports.plans(tenantId);
  const inPeriod = (r: RunPayload['run']) => {
    const at = new Date(r.finishedAt ?? r.queuedAt);
    return at >= period.from && at < period.to;
  };
  const systems: SystemRow[] = [];
  const trend: AuditReportData['trend'] = [];
  let tested = 0;
  const all: RunPayload['run'][] = [];
  /** Per kind of test, and per control (the plans that name it): plans, runs and their verdicts in the period. */
  const tally = (): KindTally => ({ plans: 0, runs: 0, passed: 0, failed: 0, errors: 0 });
  const byKind: Record<PlanKindName, KindTally> = { restore: tally(), external: tally(), manual: tally(), exercise: tally() };
  const byControl = new Map<string, Record<PlanKindName, KindTally>>();
  for (const p of plans) {
    const def = p.definition as RestorePlan;
    const history = runsByPlan.get(p.id) ?? [];
    const runs = history.filter(inPeriod);
    all.push(...runs);
    const performed = runs.filter((r) => r.verdict === 'passed' || r.verdict === 'failed');
    const upToEnd = history.filter((r) => new Date(r.finishedAt ?? r.queuedAt) < end);
    const passedStarts = upToEnd.filter((r) => r.verdict === 'passed').map((r) => new Date(r.startedAt ?? r.queuedAt));
    if (testedInTime(def, p.created_at, passedStarts, performed.length, period.from, end)) tested++;
    const status = planStatus(def, p.created_at, upToEnd.map((r) => ({
      status: 'finished', verdict: r.verdict, queued_at: new Date(r.queuedAt), started_at: r.startedAt ? new Date(r.startedAt) : null, finished_at: r.finishedAt ? new Date(r.finishedAt) : null,
    })), end);
    const last = [...runs].reverse().find((r) => r.verdict === 'passed' || r.verdict === 'failed') ?? runs.at(-1);
    const kind = def.kind ?? 'restore';
    const kindLabel = kind === 'external' ? t(lang, `gemeldet von ${def.external?.tool ?? 'einem anderen Werkzeug'}`, `reported by ${def.external?.tool ?? 'another tool'}`)
      : kind === 'manual' ? t(lang, `manuell, ${def.steps?.length ?? 0} Schritte`, `manual, ${def.steps?.length ?? 0} steps`)
        : kind === 'exercise' ? t(lang, `Übung (${exerciseFormatLabel(def.exercise?.format, 'de')})`, `exercise (${exerciseFormatLabel(def.exercise?.format, 'en')})`)
        : t(lang, `Wiederherstellung in der Sandbox (${def.restore?.driver ?? '?'})`, `restored in a sandbox (${def.restore?.driver ?? '?'})`);
    const add = (t: KindTally) => {
      t.plans++;
      t.runs += runs.length;
      t.passed += runs.filter((r) => r.verdict === 'passed').length;
      t.failed += runs.filter((r) => r.verdict === 'failed').length;
      t.errors += runs.filter((r) => r.verdict === 'error').length;
    };
    add(byKind[kind]);
    for (const c of def.controls ?? []) {
      if (!byControl.has(c)) byControl.set(c, { restore: tally(), external: tally(), manual: tally(), exercise: tally() });
      add(byControl.get(c)![kind]);
    }
    systems.push({
      planId: p.id, title: p.title, system: def.system?.name ?? null, kind, kindLabel,
      rtoTargetSeconds: def.targets.rtoSeconds, rtoLastSeconds: last?.rto?.measuredSeconds ?? null,
      rpoTargetSeconds: def.targets.rpoSeconds, backupAgeLastSeconds: last?.rpo?.backupAgeSeconds ?? null,
      lastTestAt: last?.finishedAt ?? null, lastVerdict: last?.verdict ?? null, nextDueAt: status.nextDueAt?.toISOString() ?? null,
      status: status.status, runs: runs.length,
      passed: runs.filter((r) => r.verdict === 'passed').length, failed: runs.filter((r) => r.verdict === 'failed').length,
      errors: runs.filter((r) => r.verdict === 'error').length,
    });
    trend.push({
      planId: p.id, title: p.title, rtoTargetSeconds: def.targets.rtoSeconds,
      points: runs.filter((r) => r.rto?.measuredSeconds != null && r.verdict && r.finishedAt)
        .map((r) => ({ at: r.finishedAt!, seconds: r.rto!.measuredSeconds!, verdict: r.verdict! })),
    });
  }

  const count = (v: string) => all.filter((r) => r.verdict === v).length;
  const passed = count('passed');
  const failed = count('failed');
  const measures: MeasureData[] = (await repos.reviews.measuresByDueDate(tenantId))
    .map((m) => ({ id: m.id, planId: m.plan_id, runId: m.run_id, title: m.title, owner: m.owner, dueDate: m.due_date, status: m.status, closedByRunId: m.closed_by_run_id, closedAt: m.closed_at?.toISOString() ?? null }));
  const summary = {
    plans: plans.length, plansTestedInTime: tested, runs: all.length, performed: passed + failed, passed, failed,
    errors: count('error'), cancelled: count('cancelled'), passRate: passed + failed ? passed / (passed + failed) : null,
    rtoMeasured: all.filter((r) => r.rto?.met != null).length, rtoMet: all.filter((r) => r.rto?.met === true).length,
    rpoMeasured: all.filter((r) => r.rpo?.met != null).length, rpoMet: all.filter((r) => r.rpo?.met === true).length,
    overduePlans: systems.filter((s) => s.status === 'overdue').length,
    openMeasures: measures.filter((m) => m.status !== 'done').length,
    byKind,
  };
  const head = records.at(-1);
  const keyIds = [...new Set(records.map((r) => r.keyId))];
  const trustedKeys = ledger.trusted();
  return {
    lang, generatedAt: now.toISOString(), tenant: { name: tenant.name },
    period: { from: period.from.toISOString(), to: period.to.toISOString(), ...(period.firstDay && period.lastDay ? { firstDay: period.firstDay, lastDay: period.lastDay } : periodDays(period)) },
    summary,
    controls: CONTROLS.map((c) => ({ id: c.id, title: c.title[lang], evidence: c.what[lang], tests: byControl.get(c.id) ?? null })),
    systems, trend, deviations: reviews, measures, activity,
    restartOrder: (await sources.systems.overview(tenantId, { at: end })).map((x) => ({
      id: x.id, name: x.name, process: x.process, protectionNeed: x.protectionNeed, tier: x.tier, owner: x.owner, handbookRef: x.handbookRef,
      plans: x.plans, lastPassed: x.lastPassed, lacksRecentPass: x.lacksRecentPass,
    })),
    restartTests,
    ledger: {
      records: records.length, headSeq: head?.seq ?? 0, headHash: head?.hash ?? '', verified: verification.ok,
      firstBroken: verification.firstBroken ? { seq: verification.firstBroken.seq, reason: verification.firstBroken.reason } : null,
    },
    checkpoint: ledger.newestCheckpoint(tenantId),
    keys: keyIds.map((id) => ({ keyId: id, fingerprint: trustedKeys.has(id) ? fingerprintOfKey(trustedKeys.get(id)!) : t(lang, 'nicht vertrauenswürdig', 'not trusted') })),
  };
}
