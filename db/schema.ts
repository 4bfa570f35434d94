import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** jsonb: read as T, written as a JSON string (node-postgres would turn arrays into SQL arrays). */
export type Json<T> = ColumnType<T, string, string>;
/** jsonb with a database default. */
export type JsonDefault<T> = ColumnType<T, string | undefined, string>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface TenantsTable {
  id: Generated<string>;
  slug: string;
  name: string;
  created_at: Generated<Date>;
}

export interface PlansTable {
  tenant_id: string;
  id: string;
  title: string;
  origin: 'file' | 'api';
  source_file: string | null;
  version_hash: string;
  definition: Json<unknown>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PlanVersionsTable {
  tenant_id: string;
  plan_id: string;
  hash: string;
  definition: Json<unknown>;
  origin: 'file' | 'api';
  source_file: string | null;
  created_at: Timestamp;
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
  queued_at: Timestamp;
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
}

export interface DB {
  tenants: TenantsTable;
  plans: PlansTable;
  plan_versions: PlanVersionsTable;
  runs: RunsTable;
}

export type PlanRow = Selectable<PlansTable>;
export type RunRow = Selectable<RunsTable>;
export type NewRun = Insertable<RunsTable>;

export const DEFAULT_TENANT_ID = '00000000-0000-4000-8000-000000000001';
