/**
 * What the report renderers get: plain data, already gathered from the
 * evidence ledger and verified. Renderers do no I/O besides writing the
 * document; all times are ISO 8601 UTC strings and are shown in Europe/Berlin.
 */
export type Lang = 'de' | 'en';
export type VerdictName = 'passed' | 'failed' | 'error' | 'cancelled';

export interface PhaseData { name: string; startedAt: string; durationMs: number; status: string }
export interface CheckData { name: string; kind: string; status: string; expected: string; actual: string | null; message: string }
export interface FindingData { code: string; severity: string; message: string }

export interface RecordRef {
  seq: number;
  hash: string;
  prevHash: string;
  signature: string; // base64
  keyId: string;
  createdAt: string;
  retainUntil: string; // YYYY-MM-DD
}

export interface CheckpointRef { seq: number; hash: string; at: string; keyId: string }

export interface ReviewData {
  decision: 'approved' | 'approved-with-deviations' | 'rejected';
  comment: string;
  reviewer: string;
  at: string;
  recordHash: string;
}

export interface MeasureData {
  id: string;
  planId: string;
  runId: string;
  title: string;
  owner: string;
  dueDate: string; // YYYY-MM-DD
  status: 'open' | 'in-progress' | 'done';
  closedByRunId: string | null;
  closedAt: string | null;
}

export interface PlanInfo {
  id: string;
  title: string;
  version: string;
  system?: { name: string; process?: string; protectionNeed?: string };
  targets: { rtoSeconds: number; rpoSeconds: number };
  controls: string[];
}

export interface RunProtocolData {
  lang: Lang;
  generatedAt: string;
  tenant: { name: string };
  plan: PlanInfo;
  run: {
    id: string;
    verdict: VerdictName | null;
    trigger: string;
    triggeredBy: string;
    queuedAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    phases: PhaseData[];
    rto: { targetSeconds: number; measuredSeconds: number | null; met: boolean | null } | null;
    rpo: { targetSeconds: number; backupAgeSeconds: number | null; met: boolean | null } | null;
    checks: CheckData[];
    findings: FindingData[];
    backup: { path: string; sizeBytes?: number; sha256?: string; createdAt: string; format?: string; dumpVersion?: string | null; snapshotId?: string; archive?: string } | null;
    sandbox: {
      image?: string; imageId?: string; network?: string; capDrop?: string[]; capAdd?: string[];
      memoryBytes?: number; cpus?: number; pids?: number; transfer?: string; containerId?: string;
      teardown?: { removedAt: string; verified: boolean } | null;
    } | null;
    /** The built-in checks (freshness, sequences, schema, volume) and which run they compared with; a manual test's completion. */
    restore?: { builtin?: BuiltinData[]; baselineRunId?: string | null; baselineSource?: string | null; completedBy?: string; note?: string } | null;
    /** Who tested: ernstfall in a sandbox, another tool, people step by step (manual), an exercise. */
    origin?: 'ernstfall' | 'external' | 'manual' | 'exercise';
  };
  record: RecordRef | null;
  reviews: ReviewData[];
  measures: MeasureData[];
  checkpoint: CheckpointRef | null;
  /** keyId and SHA-256 fingerprint of each public key that signed something shown. */
  keys: { keyId: string; fingerprint: string }[];
  /** The files hashed into the run's record (a manual test's evidence, a tool's output). */
  attachments: { name: string; sha256: string; sizeBytes: number }[];
}

export interface RestartRow {
  id: string; name: string; process: string | null; protectionNeed: string | null; tier: number; owner: string | null; handbookRef: string | null;
  plans: { id: string; title: string; kind: string }[];
  lastPassed: { runId: string; planId: string; origin: string; at: string } | null;
  lacksRecentPass: boolean;
}

/** A restart test that ended in the period, from its ledger record (docs/systems.md#restart-tests). */
export interface RestartTestRow {
  id: string; process: string; verdict: VerdictName; finishedAt: string;
  rto: { targetSeconds: number | null; measuredSeconds: number | null; met: boolean | null };
  tiers: { tier: number; state: string; seconds: number | null; systems: string[] }[];
  notTested: string[];
  findings: string[];
}

export type PlanKindName = 'restore' | 'external' | 'manual' | 'exercise';
/** Plans of a kind and their runs in the period, by verdict. */
export interface KindTally { plans: number; runs: number; passed: number; failed: number; errors: number }

export interface SystemRow {
  planId: string;
  title: string;
  system: string | null;
  /** How the plan is tested: restored by ernstfall (`restore`), reported by another tool (`external`), carried out by people (`manual`), rehearsed (`exercise`). */
  kind: 'restore' | 'external' | 'manual' | 'exercise';
  /** The kind in words, for the report's language (with the tool's name or the number of steps). */
  kindLabel: string;
  rtoTargetSeconds: number;
  rtoLastSeconds: number | null;
  rpoTargetSeconds: number;
  backupAgeLastSeconds: number | null;
  lastTestAt: string | null;
  lastVerdict: VerdictName | null;
  nextDueAt: string | null;
  status: string; // failing | overdue | never-tested | due-soon | ok | paused
  runs: number;
  passed: number;
  failed: number;
  errors: number;
}

export interface AuditReportData {
  lang: Lang;
  generatedAt: string;
  tenant: { name: string };
  /**
   * `from` (inclusive) and `to` (exclusive) as UTC instants: local midnight
   * to local midnight in Europe/Berlin; `firstDay`/`lastDay` the calendar
   * days they cover, both inclusive (YYYY-MM-DD), as the report shows them.
   */
  period: { from: string; to: string; firstDay?: string; lastDay?: string };
  summary: {
    plans: number;
    /** plans with a passed or failed run in every required interval of the period (or, without cadence, at least one) */
    plansTestedInTime: number;
    runs: number;
    /** passed + failed: tests that were really performed */
    performed: number;
    passed: number;
    failed: number;
    errors: number;
    cancelled: number;
    /** passed / performed, null if nothing performed */
    passRate: number | null;
    rtoMeasured: number;
    rtoMet: number;
    rpoMeasured: number;
    rpoMet: number;
    overduePlans: number;
    openMeasures: number;
    /** The same counted per kind of test: restored by ernstfall, reported by a tool, carried out by people, exercises. */
    byKind?: Record<PlanKindName, KindTally>;
  };
  /** One row per control of services/reports/controls.ts, with where the evidence is and, when plans name it, their tests in the period by kind. */
  controls: { id: string; title: string; evidence: string; tests?: Record<PlanKindName, KindTally> | null }[];
  systems: SystemRow[];
  /** The tenant's systems by restart tier (at the period's end): their plans, newest passed test of any kind, tier-1 systems lacking one. */
  restartOrder?: RestartRow[];
  /** Restart tests that ended in the period, oldest first (ledger records of kind `restart-test`). */
  restartTests?: RestartTestRow[];
  trend: { planId: string; title: string; rtoTargetSeconds: number; points: { at: string; seconds: number; verdict: VerdictName }[] }[];
  deviations: { runId: string; planId: string; decision: string; comment: string; reviewer: string; at: string }[];
  measures: MeasureData[];
  /** The audit trail of the period (ledger records of kind `audit`), oldest first. */
  activity?: { seq: number; at: string; action: string; actor: string; subject: string | null }[];
  ledger: { records: number; headSeq: number; headHash: string; verified: boolean; firstBroken: { seq: number; reason: string } | null };
  checkpoint: CheckpointRef | null;
  keys: { keyId: string; fingerprint: string }[];
}

export interface BuiltinData {
  name: string;
  status: string;
  actual: string;
  message: string;
}
