import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** jsonb: read as T, written as a JSON string (node-postgres would turn arrays into SQL arrays). */
export type Json<T> = ColumnType<T, string, string>;
/** jsonb with a database default. */
export type JsonDefault<T> = ColumnType<T, string | undefined, string>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A business time: set from the application's clock on every insert (no database default; services/clock.ts). */
type BusinessTime = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface TenantsTable {
  id: Generated<string>;
  slug: string;
  name: string;
  created_at: BusinessTime;
  disabled_at: NullableTimestamp;
}

export interface PlansTable {
  tenant_id: string;
  id: string;
  title: string;
  origin: 'file' | 'api';
  source_file: string | null;
  version_hash: string;
  definition: Json<unknown>;
  created_at: BusinessTime;
  updated_at: BusinessTime;
}

export interface PlanVersionsTable {
  tenant_id: string;
  plan_id: string;
  hash: string;
  definition: Json<unknown>;
  origin: 'file' | 'api';
  source_file: string | null;
  created_at: BusinessTime;
}

export type RunStatus = 'queued' | 'running' | 'finished';
export type Verdict = 'passed' | 'failed' | 'error' | 'cancelled';

export interface RunsTable {
  id: string;
  tenant_id: string;
  plan_id: string;
  plan_version_hash: string;
  status: RunStatus;
  verdict: Verdict | null;
  trigger: string;
  triggered_by: string;
  slot: NullableTimestamp;
  queued_at: BusinessTime;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  heartbeat_at: NullableTimestamp;
  worker_id: string | null;
  attempts: Generated<number>;
  cancel_requested_at: NullableTimestamp;
  phases: JsonDefault<unknown[]>;
  checks: JsonDefault<unknown[]>;
  findings: JsonDefault<unknown[]>;
  rto: Json<unknown> | null;
  rpo: Json<unknown> | null;
  backup: Json<unknown> | null;
  sandbox: Json<unknown> | null;
  restore: Json<unknown> | null;
  /** ernstfall restored it; external: another tool tested and reported; manual: people, step by step (issue #12) */
  origin: ColumnType<RunOrigin, RunOrigin | undefined, never>;
  external_id: ColumnType<string | null, string | null | undefined, never>;
  /** The worker pool whose queue the run waits in (the plan's sandbox.pool when it was queued). */
  pool: ColumnType<string, string | undefined, never>;
}

export type RunOrigin = 'ernstfall' | 'external' | 'manual' | 'exercise';

export interface IngestTokensTable {
  id: string;
  tenant_id: string;
  plan_id: string;
  name: string;
  token_hash: string;
  created_by: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface RunUploadsTable {
  id: string;
  tenant_id: string;
  run_id: string;
  /** The manual test's step it belongs to; null for an exercise's minutes. */
  step_index: number | null;
  name: string;
  media_type: string;
  sha256: string;
  size_bytes: number;
  /** Null once the run is completed: the content is then a ledger attachment. */
  content: Buffer | null;
  uploaded_by: string;
  uploaded_at: Date;
}

export interface SystemsTable {
  tenant_id: string;
  id: string;
  name: string;
  process: string | null;
  protection_need: 'normal' | 'hoch' | 'sehr hoch' | null;
  /** Restart priority: 1 first. */
  tier: number;
  owner: string | null;
  /** Where the emergency manual (Notfallhandbuch) describes its restart: a section or a document. */
  handbook_ref: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  retired_at: Date | null;
}

/** A business process's restart target (docs/systems.md): systems name it by `name`. */
export interface ProcessesTable {
  tenant_id: string;
  name: string;
  /** The process's RTO: the time until it works again after a total loss; null: not set. */
  rto_seconds: number | null;
  updated_by: string;
  updated_at: Date;
}

/** One restart test of a process (services/systems/restart-test.service.ts): its tiers, runs and outcome. */
export interface RestartTestsTable {
  id: string;
  tenant_id: string;
  process: string;
  status: 'running' | 'finished';
  verdict: Verdict | null;
  /** The process's RTO when the test started (null: none set). */
  rto_seconds: number | null;
  /** Index into `tiers` of the tier that runs now (tiers.length once all have run). */
  current_tier: number;
  tiers: unknown;
  /** Systems of the process without a plan that can be restarted automatically. */
  not_tested: unknown;
  findings: unknown;
  result: unknown;
  cancel_requested_at: Date | null;
  triggered_by: string;
  started_at: Date;
  finished_at: Date | null;
}

/** A worker's outcome of a test, waiting for a process that holds the signing key (central signing, issue #13). */
export interface RunOutcomesTable {
  run_id: string;
  tenant_id: string;
  worker_id: string;
  /** Null once signed: the run row and its ledger record carry it then. */
  outcome: Json<unknown> | null;
  submitted_at: Timestamp;
  signed_at: NullableTimestamp;
}

export interface DB {
  tenants: TenantsTable;
  plans: PlansTable;
  plan_versions: PlanVersionsTable;
  runs: RunsTable;
  signing_keys: SigningKeysTable;
  ledger_records: LedgerRecordsTable;
  ledger_chains: LedgerChainsTable;
  ledger_attachments: LedgerAttachmentsTable;
  api_tokens: ApiTokensTable;
  reviews: ReviewsTable;
  measures: MeasuresTable;
  plan_schedules: PlanSchedulesTable;
  scheduler_heartbeats: SchedulerHeartbeatsTable;
  alerts: AlertsTable;
  notifications: NotificationsTable;
  calendar_feeds: CalendarFeedsTable;
  plan_baselines: PlanBaselinesTable;
  users: UsersTable;
  sessions: SessionsTable;
  provider_grants: ProviderGrantsTable;
  ingest_tokens: IngestTokensTable;
  run_uploads: RunUploadsTable;
  systems: SystemsTable;
  run_outcomes: RunOutcomesTable;
  processes: ProcessesTable;
  restart_tests: RestartTestsTable;
}

export type PlanRow = Selectable<PlansTable>;
export type RunRow = Selectable<RunsTable>;
export type NewRun = Insertable<RunsTable>;

export const DEFAULT_TENANT_ID = '00000000-0000-4000-8000-000000000001';

export interface SigningKeysTable {
  key_id: string;
  public_key_pem: string;
  fingerprint: string;
  created_at: Generated<Date>;
}

/** One row per tenant chain of this database: the ledger id its records and checkpoints name (never changed). */
export interface LedgerChainsTable {
  tenant_id: string;
  ledger_id: string;
  created_at: Generated<Date>;
}

export interface LedgerRecordsTable {
  tenant_id: string;
  seq: number;
  kind: string;
  subject_id: string;
  canonical: string;
  hash: string;
  signature: string;
  key_id: string;
  created_at: Date;
  retain_until: ColumnType<string, string, never>;
}

export interface LedgerAttachmentsTable {
  tenant_id: string;
  record_hash: string;
  name: string;
  sha256: string;
  size_bytes: number;
  content: Buffer | null;
  retain_until: ColumnType<string, string, never>;
  pruned_at: Date | null;
}

/** A role inside a tenant. */
export type Role = 'admin' | 'operator' | 'reviewer' | 'auditor';
/** Any role of a user: the service provider's admins stand outside every tenant. */
export type UserRole = Role | 'provider-admin';

export interface ApiTokensTable {
  id: string;
  tenant_id: string;
  name: string;
  role: Role;
  token_hash: string;
  created_by: string;
  created_at: BusinessTime;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  user_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export type ReviewDecision = 'approved' | 'approved-with-deviations' | 'rejected';

export interface ReviewsTable {
  id: string;
  tenant_id: string;
  run_id: string;
  decision: ReviewDecision;
  comment: string;
  reviewer: string;
  record_hash: string;
  created_at: BusinessTime;
}

export type MeasureStatus = 'open' | 'in-progress' | 'done';

export interface MeasuresTable {
  id: string;
  tenant_id: string;
  plan_id: string;
  run_id: string;
  review_id: string | null;
  title: string;
  owner: string;
  due_date: ColumnType<string, string, string>;
  status: MeasureStatus;
  closed_by_run_id: string | null;
  closed_at: Date | null;
  created_by: string;
  created_at: BusinessTime;
  updated_at: BusinessTime;
}

export interface PlanSchedulesTable {
  tenant_id: string;
  plan_id: string;
  /** The newest slot handled (run, or passed by while paused or busy); slots up to it never run again. */
  last_slot: NullableTimestamp;
  last_missed_slot: NullableTimestamp;
  last_missed_reason: string | null;
  paused_at: NullableTimestamp;
  paused_reason: string | null;
  paused_by: string | null;
  updated_at: BusinessTime;
}

export interface SchedulerHeartbeatsTable {
  /** hostname-pid of the scheduler process */
  id: string;
  is_leader: boolean;
  started_at: Timestamp;
  last_tick_at: Timestamp;
  last_leader_tick_at: NullableTimestamp;
}

export type PlanScheduleRow = Selectable<PlanSchedulesTable>;

export type AlertKind = 'overdue' | 'failing';

export interface AlertsTable {
  id: Generated<string>;
  tenant_id: string;
  plan_id: string;
  kind: AlertKind;
  since: Timestamp;
  opened_at: Timestamp;
  run_id: string | null;
  escalation_level: Generated<number>;
  acknowledged_at: NullableTimestamp;
  acknowledged_by: string | null;
  acknowledged_reason: string | null;
  snoozed_until: NullableTimestamp;
  snoozed_by: string | null;
  snoozed_reason: string | null;
  resolved_at: NullableTimestamp;
  resolved_by_run: string | null;
}

export type NotificationStatus = 'pending' | 'sending' | 'sent' | 'failed';

export interface NotificationsTable {
  id: Generated<string>;
  tenant_id: string;
  plan_id: string | null;
  alert_id: string | null;
  run_id: string | null;
  event: string;
  dedupe_key: string;
  recipient: string;
  message: Json<unknown>;
  status: ColumnType<NotificationStatus, NotificationStatus | undefined, NotificationStatus>;
  attempts: Generated<number>;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  locked_until: NullableTimestamp;
  last_error: string | null;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  sent_at: NullableTimestamp;
}

export interface CalendarFeedsTable {
  id: Generated<string>;
  tenant_id: string;
  name: string;
  token_hash: string;
  lang: ColumnType<'de' | 'en', 'de' | 'en' | undefined, 'de' | 'en'>;
  created_by: string;
  created_at: BusinessTime;
  revoked_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
}

export interface RecoveryCode {
  /** SHA-256 hex of the code (codes are long random strings: no slow hash needed) */
  hash: string;
  usedAt: string | null;
}

export interface UsersTable {
  id: Generated<string>;
  tenant_id: string | null;
  email: string;
  name: string;
  role: UserRole;
  password_hash: string | null;
  totp_secret_enc: string | null;
  /** a new secret being set up from a signed-in session; replaces totp_secret_enc only when confirmed */
  totp_pending_enc: string | null;
  totp_enabled_at: NullableTimestamp;
  totp_last_step: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  recovery_codes: JsonDefault<RecoveryCode[]>;
  failed_logins: Generated<number>;
  locked_until: NullableTimestamp;
  sessions_valid_after: BusinessTime;
  oidc_issuer: string | null;
  oidc_subject: string | null;
  invite_token_hash: string | null;
  invite_expires_at: NullableTimestamp;
  created_at: BusinessTime;
  created_by: string;
  disabled_at: NullableTimestamp;
  last_login_at: NullableTimestamp;
}

export type SessionStage = 'password' | 'enrol' | 'full';

export interface SessionsTable {
  id: Generated<string>;
  token_hash: string;
  user_id: string;
  acting_tenant_id: string | null;
  stage: SessionStage;
  method: 'password' | 'oidc';
  csrf_token: string;
  created_at: BusinessTime;
  last_seen_at: BusinessTime;
  expires_at: Timestamp;
  revoked_at: NullableTimestamp;
  ip: string | null;
  user_agent: string | null;
}

export interface ProviderGrantsTable {
  id: Generated<string>;
  tenant_id: string;
  role: Role;
  reason: string;
  granted_by: string;
  granted_at: BusinessTime;
  expires_at: Timestamp;
  revoked_at: NullableTimestamp;
}

/** An accepted baseline of the built-in drift checks (issue #10): the run whose profile counts from now on. */
export interface PlanBaselinesTable {
  id: string;
  tenant_id: string;
  plan_id: string;
  run_id: string;
  accepted_by: string;
  reason: string;
  accepted_at: Date;
}
