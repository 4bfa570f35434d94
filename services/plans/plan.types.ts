/**
 * A restore plan after parsing and validation. The YAML/JSON spelling is the
 * contract (see restore-plans/README.md); durations are normalised to seconds
 * (short form) or kept as ISO 8601 strings where calendar arithmetic matters.
 */
export type ProtectionNeed = 'normal' | 'hoch' | 'sehr hoch';

export interface PlanSystem {
  /** The tenant's system object this plan tests (PUT /api/v1/systems/{id}); its name, process and protection need are copied in when the plan is stored. */
  id?: string;
  name: string;
  process?: string;
  protectionNeed?: ProtectionNeed;
}

export interface PlanTargets {
  /** Recovery time objective in seconds. */
  rtoSeconds: number;
  /** Recovery point objective (max backup age) in seconds. */
  rpoSeconds: number;
}

export interface PlanCadence {
  schedule?: string;
  timezone: string;
  /** ISO 8601 duration or short form as written, e.g. "P1D". */
  requiredEvery?: string;
  grace?: string;
}

export interface FileSource {
  type: 'file';
  /** A file, or a folder when `match` is given. */
  path: string;
  /** Glob on the file name (`*`, `?`, `[abc]`) inside `path`; only with a folder. */
  match?: string;
  select: 'newest';
  /** Seconds a file must be unchanged before it is picked (default from config). */
  settleSeconds?: number;
  /** Optional expected SHA-256 (hex) or size in bytes, checked before restoring. */
  sha256?: string;
  sizeBytes?: number;
  /** Time zone in which the dump header's local creation time is read. */
  timezone?: string;
}

/**
 * A restic repository (a local folder inside the tenant's roots). The
 * password comes from a file (inside the tenant's roots too), read by the
 * worker and handed to restic inside the sandbox as a file: never in the
 * plan, argv, logs, job payloads or evidence.
 */
export interface ResticSource {
  type: 'restic';
  repository: string;
  passwordFile: string;
  /** `latest` (of those matching tags/host/path) or a snapshot ID (8 to 64 hex digits). */
  snapshot: string;
  tags?: string[];
  host?: string;
  /** restic's --path filter: snapshots of this path. */
  path?: string;
  /** `restic check --read-data-subset`: `10%`, `1/5`, `500m`; without it the check reads the structure, not every pack. */
  readData?: string;
  settleSeconds?: number;
}

/** A borg repository (a local folder inside the tenant's roots); the passphrase as for restic. */
export interface BorgSource {
  type: 'borg';
  repository: string;
  passphraseFile: string;
  /** `newest` (of those matching `match`) or an archive name. */
  archive: string;
  /** Glob on archive names (`*`, `?`, `[abc]`), e.g. `share-*`. */
  match?: string;
  /** `borg check --verify-data`: read and verify every chunk (slow, thorough). */
  verifyData?: boolean;
  settleSeconds?: number;
}

/**
 * A PostgreSQL base backup (pg_basebackup, tar or plain format) and the WAL
 * archive it is replayed from (point-in-time recovery, restore.pitr). Both
 * lie inside the tenant's roots; decisions/020.
 */
export interface BaseBackupSource {
  type: 'basebackup';
  /** The base backup's folder, or (with `match`) the folder holding base backup folders. */
  path: string;
  /** Glob on the folder names inside `path`; the newest matching one is taken. */
  match?: string;
  /** The WAL archive folder (where archive_command copies the segments). */
  wal: string;
  settleSeconds?: number;
}

export type PlanSource = FileSource | ResticSource | BorgSource | BaseBackupSource;

/** Where the backup is on the worker's disk: the file or folder, or the repository folder (a base backup: its folder). */
export function sourceLocation(s: PlanSource): FileSource {
  if (s.type === 'file') return s;
  if (s.type === 'basebackup') return { type: 'file', path: s.path, select: 'newest', ...(s.match !== undefined && { match: s.match }), ...(s.settleSeconds !== undefined && { settleSeconds: s.settleSeconds }) };
  return { type: 'file', path: s.repository, select: 'newest', ...(s.settleSeconds !== undefined && { settleSeconds: s.settleSeconds }) };
}

export interface PostgresRestore {
  driver: 'postgres';
  database: string;
  /** An image of the operator's allowlist (ERNSTFALL_SANDBOX_IMAGES) instead of the driver's choice. */
  image?: string;
  /** Parallel jobs for pg_restore (custom and directory formats). */
  jobs?: number;
  /** PostgreSQL major to restore with (default: the smallest available major >= the dump's). */
  version?: number;
  /** Point-in-time recovery of a base backup (source type basebackup) up to this target. */
  pitr?: { target: PitrTarget };
}

/** Where WAL replay stops: a moment (ISO 8601 with offset, kept as written and as UTC), the archive's end, or before an LSN. */
export type PitrTarget =
  | { kind: 'time'; text: string; iso: string }
  | { kind: 'latest' }
  | { kind: 'beforeLsn'; lsn: string };

/** A file backup (a folder, or an archive: tar, tar.gz, tar.zst, tar.xz, tar.bz2, zip) restored into the sandbox and checked there. */
export interface FilesRestore {
  driver: 'files';
  /** An image of the operator's allowlist (ERNSTFALL_SANDBOX_IMAGES) instead of the driver's choice. */
  image?: string;
}

/** A mariadb-dump or mysqldump file (plain SQL, also .gz/.zst) restored into a MariaDB sandbox. */
export interface MariadbRestore {
  driver: 'mariadb';
  database: string;
  image?: string;
  /** MariaDB version to restore with, e.g. "10.11" (default: the smallest available at least the dump's). */
  version?: string;
}

export type PlanRestore = PostgresRestore | FilesRestore | MariadbRestore;

export interface PlanSandbox {
  network: 'none';
  /** Memory limit in bytes. */
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Whole-run timeout in seconds. */
  timeoutSeconds: number;
  /** Size of the sandbox's writable data area in bytes (the backup's copy plus what it restores into); default the operator's bound. */
  diskBytes?: number;
  /** The worker pool (a Docker engine, a server room) that runs it; absent: the default pool. */
  pool?: string;
}

export type ExpectOp = '==' | '!=' | '>=' | '<=' | '>' | '<';
export interface Expectation {
  op: ExpectOp;
  /** A number, or a string compared exactly (for == and !=). */
  value: number | string;
  /** As written in the plan, e.g. ">= 1000". */
  text: string;
}

export type PlanCheck =
  | { kind: 'sql'; name: string; sql: string; expect: Expectation }
  | {
      kind: 'tableRows';
      name: string;
      table: string;
      min: number;
      /** `maxDropVsLastGood` as a percent: fail when rows drop more than this vs. the last passed run. */
      maxDropPercent?: number;
    }
  | { kind: 'tableExists'; name: string; table: string }
  | {
      kind: 'canary';
      name: string;
      sql: string;
      /** Exactly one of the two; `equals` is never written anywhere but the plan store. */
      equals?: string;
      equalsSha256?: string;
    }
  /** Files driver: at least `min` regular files restored. */
  | { kind: 'files'; name: string; min: number }
  /** Files driver: at least `min` bytes in regular files. */
  | { kind: 'bytes'; name: string; min: number }
  /** Files driver: each path (relative to the restored tree's root) is there. */
  | { kind: 'exists'; name: string; paths: string[] }
  /**
   * Files driver: every file a `sha256sum` manifest lists is there with that hash. The manifest is
   * `file` inside the restored tree, or `beside` the backup in its folder on the host (`{name}` is the
   * backup's file or folder name); either way its paths are relative to the restored tree's root.
   */
  | { kind: 'manifest'; name: string; file: string; beside?: undefined }
  | { kind: 'manifest'; name: string; beside: string; file?: undefined }
  /** Files driver: `count` files of a known format, chosen at random, are what their name says (opened and read). */
  | { kind: 'sample'; name: string; count: number }
  /** Files driver: against the last passed run, the tree and each top-level folder lost at most this percentage of files and bytes. */
  | { kind: 'drift'; name: string; maxDropPercent: number };

/**
 * The built-in checks every database restore gets (freshness, sequences,
 * schema drift, volume drift). Each can be tuned or switched off with a
 * reason (`off`), which the run records.
 */
export interface BuiltinChecks {
  /**
   * The column whose newest value is the data's age (else detected), or a
   * query that returns that value (`sql`, one date/time); a named column or
   * query whose value is older than the RPO fails the test.
   */
  freshness?: { table?: string; column?: string; sql?: string; off?: string };
  sequences?: { off?: string };
  schema?: { off?: string };
  /** Fail when a table (files: the tree, a top-level folder) lost more than this percentage of its rows (files, bytes) since the last passed run (default 50). */
  volume?: { maxDropPercent?: number; off?: string };
  /** Files: ransom notes, ransomware extensions, files that look encrypted or are not what their name says. */
  ransomware?: { notes?: string[]; extensions?: string[]; encryptedMin?: number; off?: string };
  /** Files: fail when this share of the files (percent, default 20) carries an extension the last passed run did not have. */
  renames?: { maxSharePercent?: number; off?: string };
}

/**
 * A plan. `kind` absent: ernstfall restores the backup in a sandbox (source, restore and sandbox
 * are set: see SandboxPlan). `kind: external`: another tool tests, ernstfall records its results
 * (no source, restore or sandbox; `external` says how results arrive).
 */
export interface RestorePlan {
  id: string;
  title: string;
  kind?: 'external' | 'manual' | 'exercise';
  system?: PlanSystem;
  targets: PlanTargets;
  cadence: PlanCadence;
  source?: PlanSource;
  restore?: PlanRestore;
  sandbox?: PlanSandbox;
  checks: PlanCheck[];
  controls: string[];
  notify?: PlanNotify;
  builtin?: BuiltinChecks;
  external?: ExternalSpec;
  /** kind: manual — what the people restoring do, in order. */
  steps?: ManualStep[];
  /** kind: exercise — the scenario people rehearse (tabletop, walk-through, simulation, full exercise). */
  exercise?: ExerciseSpec;
  /** An application group: containers started next to the restored database and probed (decisions/021). */
  services?: PlanService[];
}

/** How ernstfall asks a service whether it works, from inside the run's internal network. */
export type ServiceProbeCheck =
  | { kind: 'http'; port: number; path: string; status: number; body?: string }
  | { kind: 'tcp'; port: number }
  /** argv run in the service's own container, as its user; exit code 0 is healthy. */
  | { kind: 'command'; command: string[] };

export type ServiceProbe = ServiceProbeCheck & {
  /** Seconds from the service's start by which the probe must have succeeded. */
  deadlineSeconds: number;
};

/**
 * One application container of a group. `env` values may name the restored
 * database's endpoint (`${db.host}`, `${db.port}`, `${db.user}`,
 * `${db.password}`, `${db.name}`); the worker fills them in per run.
 */
export interface PlanService {
  name: string;
  /** An image of the operator's allowlist (ERNSTFALL_SANDBOX_IMAGES). */
  image: string;
  env?: Record<string, string>;
  /** Replaces the image's command (argv; its entrypoint stays). */
  command?: string[];
  /** Services started, and healthy, before this one starts. */
  dependsOn?: string[];
  /** uid[:gid] the container runs as, never 0; default 65534:65534 (nobody). */
  user?: string;
  probe?: ServiceProbe;
}

export const EXERCISE_FORMATS = ['tabletop', 'walkthrough', 'simulation', 'full'] as const;
export type ExerciseFormat = typeof EXERCISE_FORMATS[number];

/** An emergency or recovery exercise (Notfallübung): what is rehearsed, how, and which roles take part. */
export interface ExerciseSpec {
  scenario: string;
  /** tabletop (Planbesprechung/Planspiel), walkthrough (Begehung), simulation (Stabsübung), full (Vollübung). */
  format: ExerciseFormat;
  /** The roles the exercise needs (Krisenstab, IT-Leitung, Fachamt …): each participant names one. */
  roles?: string[];
}

/** One step of a manual restore test (Wiederanlaufplan): done by a person, recorded with time, result and note. */
export interface ManualStep {
  title: string;
  instructions?: string;
  /** What the person should see when the step worked. */
  expected?: string;
  /** The step needs an attachment (screenshot, log) as evidence. */
  evidenceRequired?: boolean;
  /** The measured RTO ends when this step is done (exactly one step; default the last). */
  restoresService?: boolean;
}

/** A plan ernstfall restores itself. */
export type SandboxPlan = RestorePlan & { kind?: undefined; source: PlanSource; restore: PlanRestore; sandbox: PlanSandbox };

export function isSandboxPlan(plan: RestorePlan): plan is SandboxPlan {
  return plan.kind === undefined && plan.source !== undefined && plan.restore !== undefined && plan.sandbox !== undefined;
}

/** The tools whose own words ernstfall reads (besides its plain JSON result). */
export const EXTERNAL_FORMATS = ['veeam-syslog', 'restic-check', 'borg-check', 'aws-restore-validation'] as const;
export type ExternalFormat = typeof EXTERNAL_FORMATS[number];

/** How an external plan's results arrive and are recognised. */
export interface ExternalSpec {
  /** The tool, as shown (e.g. "Veeam SureBackup"). */
  tool: string;
  /** Veeam: the JobName of the SureBackup job whose events belong to this plan. */
  veeamJob?: string;
}

/**
 * Who is told what. Recipients as written: `mail:addr` or `webhook:name`.
 * The all-clear goes to everyone who was notified about the problem.
 */
export interface PlanNotify {
  /** failed and error runs */
  failure: string[];
  /** the plan became overdue (opens an alert) */
  overdue: string[];
  /** a test is due soon; default: the overdue recipients */
  dueSoon?: string[];
  /** while an alert is open and nobody acknowledged it: `after` counted from when the problem began */
  escalate: { after: string; to: string[] }[];
  /** daily summary of the plans that list the recipient here */
  digest: string[];
  /** language of this plan's notifications; default ERNSTFALL_NOTIFY_LANG */
  language?: 'de' | 'en';
}

/** One problem found in a plan: where, and what. `line` is 1-based, when known. */
export interface PlanIssue {
  path: string;
  line?: number;
  message: string;
}
