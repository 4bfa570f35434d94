/**
 * Every failure mode has a named finding. The severity decides the verdict:
 * `error`  -> the test could not verify (verdict `error`, counts as not tested),
 * `failure`-> the test ran and proved something wrong (verdict `failed`),
 * `warning`/`info` -> recorded, verdict unaffected.
 */
export type FindingSeverity = 'error' | 'failure' | 'warning' | 'info';

export const FINDINGS = {
  SOURCE_NOT_FOUND: 'error',
  SOURCE_REFUSED: 'error',
  SOURCE_UNSETTLED: 'error',
  /** a FIFO, device, socket or a link leading out where a backup was expected: never opened */
  SOURCE_NOT_REGULAR: 'error',
  BACKUP_SIZE_MISMATCH: 'failure',
  BACKUP_CHECKSUM_MISMATCH: 'failure',
  BACKUP_NOT_NEW: 'warning',
  BACKUP_CHANGED: 'error',
  BACKUP_TIME_FROM_FILE: 'info',
  /** the header's zone-less time fits two zones; the file time decided, both are recorded */
  BACKUP_TIME_AMBIGUOUS: 'info',
  ARCHIVE_UNREADABLE: 'failure',
  ARCHIVE_TRUNCATED: 'failure',
  /** members of an archive name places outside its tree (absolute, ".."): refused by the tool, never written there */
  ARCHIVE_PATHS_REFUSED: 'failure',
  /** device nodes (or sockets) in an archive, e.g. a container's /dev: an unprivileged sandbox cannot create them; counted, the rest restored */
  SPECIAL_FILES_SKIPPED: 'info',
  /** entries of a restored file tree that cannot be read */
  FILES_UNREADABLE: 'failure',
  /** restic/borg: the repository does not open with the password (passphrase) file's secret: nobody could restore it with it */
  REPOSITORY_KEY_REJECTED: 'failure',
  /** restic/borg: no repository at the path, or its configuration cannot be read */
  REPOSITORY_UNREADABLE: 'failure',
  /** restic check / borg check (or the restore) found damage: missing or corrupt packs, segments, indexes */
  REPOSITORY_DAMAGED: 'failure',
  /** the snapshot or archive the plan asks for is not in the repository */
  SNAPSHOT_NOT_FOUND: 'failure',
  /** files: a file named like a ransom note of a known family */
  RANSOM_NOTE_FOUND: 'failure',
  /** files: files with an extension ransomware appends */
  RANSOM_EXTENSION_FOUND: 'failure',
  /** files: files of a known format that look encrypted (near-random, or an encryption header instead of their signature) */
  ENCRYPTED_FILES_SUSPECTED: 'failure',
  /** files: a few files are not what their name says (below the plan's threshold for "encrypted") */
  FILE_TYPE_MISMATCH: 'warning',
  /** files: a large share of the files carries an extension the last passed run did not have */
  MASS_RENAME: 'failure',
  VERSION_UNSUPPORTED: 'error',
  IMAGE_MISSING: 'error',
  /** the plan names an image the operator does not (or no longer) allow */
  IMAGE_NOT_ALLOWED: 'error',
  /** the plan asks for more than the operator's upper bound: the bound was used */
  LIMIT_CAPPED: 'info',
  DISK_SPACE_LOW: 'error',
  SANDBOX_FAILED: 'error',
  SANDBOX_CLEANUP_FAILED: 'warning',
  /** infrastructure, not the backup's fault: the sandbox ran out of memory (the kernel's OOM killer) */
  SANDBOX_OOM: 'error',
  /** infrastructure: the sandbox's data area (or the Docker host's disk) is full */
  SANDBOX_DISK_FULL: 'error',
  /** infrastructure: the Docker engine could not be reached or went away during the test */
  ENGINE_UNAVAILABLE: 'error',
  /** infrastructure: ernstfall's own database could not be reached during the test */
  DATABASE_UNAVAILABLE: 'error',
  NO_CHECKS: 'warning',
  DUMP_UNSUPPORTED: 'error',
  EXTENSION_MISSING: 'error',
  ROLES_CREATED: 'info',
  RESTORE_ERROR: 'failure',
  /** point-in-time recovery (decisions/020): a WAL segment is missing between the base backup and the archive's newest segment */
  PITR_WAL_GAP: 'failure',
  /** the target lies before the base backup's consistent point: this base backup cannot show that moment */
  PITR_TARGET_BEFORE_BASE: 'error',
  /** replay reached the archive's end before the target: the archive does not reach the moment asked for */
  PITR_TARGET_AFTER_WAL: 'failure',
  /** the archive's timeline history does not continue the base backup's timeline */
  PITR_TIMELINE_MISMATCH: 'failure',
  /** WAL archive files changed within the settle time were left out of the replay */
  PITR_WAL_UNSETTLED: 'info',
  EXIT_CODE_LIED: 'failure',
  EMPTY_RESTORE: 'failure',
  CHECK_FAILED: 'failure',
  /** built-in checks (every database restore, nothing in the plan needed) */
  DATA_STALE: 'failure',
  DATA_STALE_SUSPECTED: 'warning',
  DATA_FRESHNESS_UNKNOWN: 'info',
  SEQUENCE_BEHIND: 'failure',
  SCHEMA_DRIFT: 'failure',
  SCHEMA_ADDED: 'info',
  VOLUME_DROP: 'failure',
  /** the built-in checks could not run (the plan's own checks still decide) */
  BUILTIN_CHECKS_FAILED: 'warning',
  CHECK_ERROR: 'failure',
  /** results another tool reported (plans with kind: external) */
  EXTERNAL_PASSED: 'info',
  EXTERNAL_FAILED: 'failure',
  EXTERNAL_ERROR: 'error',
  /** the tool's message could not be read (format, fields, no verdict): never a pass */
  EXTERNAL_UNREADABLE: 'error',
  /** the message is about another job than the plan's (Veeam JobName) */
  EXTERNAL_UNMAPPED: 'error',
  /** manual tests (kind: manual): a step went otherwise than written */
  MANUAL_DEVIATION: 'failure',
  /** a manual test was completed with steps not done: not tested completely */
  MANUAL_STEPS_NOT_DONE: 'error',
  /** a step that needs evidence (evidenceRequired) was marked done without an attachment: not proven */
  MANUAL_EVIDENCE_MISSING: 'error',
  /** an exercise brought up a finding: it became a measure with an owner and a due date */
  EXERCISE_FINDING: 'failure',
  /** an exercise completed without one observation: not documented */
  EXERCISE_NOT_DOCUMENTED: 'error',
  /** a role the exercise plan names had no participant */
  EXERCISE_ROLE_MISSING: 'warning',
  /** application groups (decisions/021): a service's probe never succeeded by its deadline, or answered wrong */
  SERVICE_UNHEALTHY: 'failure',
  /** application groups: a service's container exited */
  SERVICE_EXITED: 'failure',
  /** restart tests (decisions/024): a tier's system did not come back; the tiers after it are not started */
  TIER_FAILED: 'failure',
  /** restart tests: a tier's restore could not be verified (its run ended error or was cancelled) */
  TIER_NOT_VERIFIED: 'error',
  /** restart tests: systems of the process without a plan with services; named, not in the measured time */
  SYSTEMS_NOT_TESTED: 'warning',
  /** restart tests: a tier's run could not be started (e.g. the plan already had an active run) */
  RESTART_RUN_NOT_STARTED: 'error',
  RTO_EXCEEDED: 'failure',
  RPO_EXCEEDED: 'failure',
  TIMEOUT: 'error',
  WORKER_LOST: 'error',
  INTERRUPTED: 'error',
  INTERNAL_ERROR: 'error',
} as const satisfies Record<string, FindingSeverity>;

export type FindingCode = keyof typeof FINDINGS;

export interface Finding {
  code: FindingCode;
  severity: FindingSeverity;
  message: string;
}

export function finding(code: FindingCode, message: string): Finding {
  return { code, severity: FINDINGS[code], message };
}
