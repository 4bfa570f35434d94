import type { Finding } from '../../services/findings.js';
import type { SandboxPlan } from '../../services/plans/plan.types.js';
import type { Config } from '../../services/config.js';
import type { TenantPlanPolicy } from '../../services/plans/plan.parser.js';
import type { CheckRunner, LastGood, QueryFn } from '../checks/checks.js';
import type { BuiltinResult } from '../checks/builtin.js';
import type { Sandbox, SandboxInput, SandboxRecipe } from '../sandbox/sandbox.js';

export type { SandboxInput, SandboxRecipe };
import type { ResolvedBackup } from '../sources/file.source.js';

/** What a driver learned from the backup on the worker, before anything runs in a sandbox. */
export interface Inspection {
  /** The backup's own creation time (e.g. a dump header), or null when it has none. */
  createdAt: Date | null;
  /** Facts for the evidence's `backup` (format, versions, compression): short scalars only. */
  facts: Record<string, string | number | null>;
  /** What the driver noticed about the backup before restoring it (e.g. an ambiguous creation time). */
  findings?: Finding[];
  /** Sees every chunk while the backup is hashed and copied, e.g. to scan a plain SQL dump. */
  scan?: (chunk: Buffer) => Promise<void>;
  /** Called once after the last chunk. */
  endScan?: () => Promise<void>;
}

/** The image a sandbox runs, and what the evidence says about the choice. */
export interface ImageChoice {
  image: string;
  facts: Record<string, string | number | null>;
}

export interface RestoreResult {
  findings: Finding[];
  /** The data is there (the tool finished and nothing proves otherwise). */
  restored: boolean;
  /** Facts for the evidence's `restore` (tool, exit code, counts): no row data. */
  facts: Record<string, unknown>;
  /** The tool's own output, kept as a prunable attachment (it may quote personal data). */
  log?: string;
  /** A repository's chosen snapshot or archive: its own creation time (the RPO's), and what identifies it (short scalars). */
  backup?: { createdAt: Date; source: 'snapshot' | 'archive' | 'wal' | 'file'; facts: Record<string, string | number | null> };
}

/**
 * The restored database as an application group's services reach it on the
 * run's internal network (decisions/021). The host is the database's alias
 * on that network; the password is made for this run and is a secret: never
 * in logs, evidence, job payloads or argv.
 */
export interface DbEndpoint {
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface BuiltinInput {
  /** The profile of the baseline run (the last passed one, or one a person accepted), if any. */
  baseline?: unknown;
  /** The backup's own creation time; the test's start when it is not known. */
  backupCreatedAt: Date;
}

export interface BuiltinOutcome {
  /** Names and numbers only; absent when nothing was read (every check off). */
  profile?: unknown;
  results: BuiltinResult[];
  findings: Finding[];
}

export interface DriverContext<I extends Inspection = Inspection> {
  plan: SandboxPlan;
  config: Config;
  policy: TenantPlanPolicy;
  inspection: I;
  /** CPUs the sandbox may use, after the operator's bounds. */
  cpus: number;
  signal: AbortSignal;
}

/**
 * How one kind of backup comes back. A driver inspects the backup on the
 * worker, chooses its image, says how its sandbox starts, restores inside
 * it, and offers what the checks query. Everything it reads from a backup or
 * a tool is data: it goes through argv, files put into the sandbox, or stdin,
 * never into shell or SQL text.
 */
export interface RestoreDriver<I extends Inspection = Inspection> {
  readonly name: string;
  inspect(backup: ResolvedBackup, plan: SandboxPlan): Promise<I>;
  /**
   * Read-only folders the sandbox gets beside the backup (a WAL archive), found inside the
   * tenant's roots like the backup itself; the engine mounts or copies them as it does the backup.
   */
  inputs?(plan: SandboxPlan, inspection: I, where: { roots: string[]; settleSeconds: number; now: Date; tenant: string }): Promise<SandboxInput[]>;
  chooseImage(ctx: Omit<DriverContext<I>, 'signal' | 'cpus'>): ImageChoice;
  sandbox(ctx: Omit<DriverContext<I>, 'signal'>): SandboxRecipe;
  /** Resolves when the sandbox's service is ready; rejects with the service's own last words. */
  ready(sandbox: Sandbox, ctx: DriverContext<I>): Promise<void>;
  restore(sandbox: Sandbox, ctx: DriverContext<I>): Promise<RestoreResult>;
  /** Databases: one value from the restored database, for the SQL checks and the plan's freshness query. */
  query?(sandbox: Sandbox, ctx: DriverContext<I>, restored: RestoreResult): QueryFn;
  /** Answers the plan's checks after a restore (the kinds this driver knows; the plan parser refuses others). */
  checks(sandbox: Sandbox, ctx: DriverContext<I>, restored: RestoreResult, history: { lastGood: LastGood; lastProfile?: unknown }): CheckRunner;
  /**
   * The checks every restore of this kind gets with nothing in the plan
   * (databases: freshness, sequences, schema and volume drift; files:
   * freshness, volume drift, ransomware indicators, mass renames), against
   * the baseline's profile. The profile returned is stored with the run
   * (names and numbers only) and is the next run's baseline.
   */
  builtins?(sandbox: Sandbox, ctx: DriverContext<I>, restored: RestoreResult, input: BuiltinInput): Promise<BuiltinOutcome>;
  /**
   * Databases that serve application groups: after the restore, a read-only
   * login for the run's services. The sandbox was started listening on the
   * run's network when the plan has `services` (the driver's `sandbox` sees them).
   */
  endpoint?(sandbox: Sandbox, ctx: DriverContext<I>, restored: RestoreResult): Promise<DbEndpoint>;
  /**
   * File trees that serve application groups: the services see the sandbox's
   * data read-only at the same paths (`volumesFrom`), `${files.path}` names
   * the restored tree's root.
   */
  treeAccess?(sandbox: Sandbox, ctx: DriverContext<I>, restored: RestoreResult): Promise<TreeAccess>;
}

/** What an application group of a file restore gets (decisions/021, files). */
export interface TreeAccess {
  /** The restored tree's root inside the sandbox, and so inside each service. */
  path: string;
  /** The container whose mounts the services get, read-only. */
  volumesFrom: string;
  /** uid:gid the services run as when the plan names none: the owner of the restored tree. */
  defaultUser: string;
}
