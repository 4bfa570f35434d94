import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../services/config.js';
import { finding, type Finding } from '../services/findings.js';
import type { RestorePlan } from '../services/plans/plan.types.js';
import { decideVerdict, measureTargets } from '../services/runs/verdict.js';
import type { PlanRepository } from '../db/repositories/plan.repository.js';
import type { RunRepository } from '../db/repositories/run.repository.js';
import type { RunFinisher } from '../services/runs/run-finisher.js';
import type { PlanPolicyService } from '../services/plans/plan-policy.js';
import { effectiveLimits } from './sandbox/limits.js';
import { stat } from 'node:fs/promises';
import { lastGoodCounts, runChecks, skippedChecks, type CheckResult } from './checks/checks.js';
import { DumpInspectError, inspectDump, type DumpInfo } from './drivers/postgres/dump-format.js';
import { createPlainScanner, type PlainScan } from './drivers/postgres/plain-scan.js';
import { restorePostgres, sandboxQuery, type RestoreOutcome } from './drivers/postgres/postgres.driver.js';
import { isLocalEngine } from './sandbox/docker.js';
import { chooseImage, ensureImage, ImageError } from './sandbox/images.js';
import { provisionSandbox, waitForPostgres, type Sandbox, SandboxError } from './sandbox/sandbox.js';
import { digestBackup, resolveBackup, SourceError } from './sources/file.source.js';

export interface HandlerDeps {
  config: Config;
  docker: Docker;
  runs: RunRepository;
  plans: PlanRepository;
  finisher: RunFinisher;
  /** The operator's policy for the run's tenant: its backup roots, allowed images, limit bounds. */
  policy: PlanPolicyService;
  log: Logger;
  workerId: string;
  heartbeatMs?: number;
  /** Aborted when the worker shuts down: running tests end as `error` (INTERRUPTED) with their sandbox removed. */
  shutdown?: AbortSignal;
}

export type PhaseName = 'fetch' | 'provision' | 'restore' | 'verify' | 'teardown';
export interface Phase {
  name: PhaseName;
  startedAt: string;
  durationMs: number;
  status: 'ok' | 'failed' | 'skipped';
}

class Aborted extends Error {}

/** Runs one restore test for a claimed run and stores its verdict. Never leaves the sandbox behind. */
export async function handleRestoreTest(deps: HandlerDeps, runId: string): Promise<void> {
  const { runs, config, docker } = deps;
  const claimed = await runs.claim(runId, deps.workerId);
  if (!claimed) {
    const current = await runs.getById(runId);
    if (current?.status === 'queued' && current.cancel_requested_at) {
      await deps.finisher.finishUnclaimed(runId, { verdict: 'cancelled', findings: [] }, 'queued');
    }
    deps.log.info({ runId, status: current?.status }, 'run is not queued any more (cancelled or taken); nothing to do');
    return;
  }
  const run = claimed;
  const log = deps.log.child({ runId, planId: run.plan_id, tenantId: run.tenant_id });
  const plan = (await deps.plans.getVersion(run.tenant_id, run.plan_id, run.plan_version_hash)) as RestorePlan | undefined;
  if (!plan) {
    await deps.finisher.finishClaimed(runId, deps.workerId, { verdict: 'error', findings: [finding('INTERNAL_ERROR', 'plan version not found')] });
    return;
  }

  const policy = await deps.policy.forTenant(run.tenant_id);
  // the operator may have lowered a bound after the plan was stored: the lower one holds
  const limits = effectiveLimits(plan.sandbox, policy.max);
  const phases: Phase[] = [];
  const findings: Finding[] = limits.capped.length
    ? [finding('LIMIT_CAPPED', `the operator's upper bounds apply instead of the plan's: ${limits.capped.join(', ')}`)]
    : [];
  let checks: CheckResult[] = [];
  let backup: Record<string, unknown> | null = null;
  let sandboxInfo: Record<string, unknown> | null = null;
  let restoreInfo: Record<string, unknown> | null = null;
  let sandbox: Sandbox | undefined;
  let abortReason: 'cancelled' | 'timeout' | 'lost' | 'shutdown' | undefined;
  const abort = new AbortController();
  const stop = (reason: 'cancelled' | 'timeout' | 'lost' | 'shutdown') => {
    if (abortReason) return;
    abortReason = reason;
    abort.abort(reason);
    // killing the sandbox is the only way to stop a running pg_restore
    void sandbox?.destroy().catch(() => undefined);
  };
  const checkAbort = () => {
    if (abortReason) throw new Aborted(abortReason);
  };

  const heartbeat = setInterval(() => {
    runs.heartbeat(runId, deps.workerId, { phases }).then((hb) => {
      // undefined: the run is no longer ours (declared lost meanwhile); stop working on it
      if (!hb) stop('lost');
      else if (hb.cancelRequested) stop('cancelled');
    }).catch((err: Error) => log.warn({ err: err.message }, 'heartbeat failed'));
  }, deps.heartbeatMs ?? 5000);
  const timeout = setTimeout(() => stop('timeout'), limits.timeoutSeconds * 1000);
  const onShutdown = () => stop('shutdown');
  deps.shutdown?.addEventListener('abort', onShutdown);
  if (deps.shutdown?.aborted) stop('shutdown');

  async function phase<T>(name: PhaseName, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    const p: Phase = { name, startedAt: new Date(start).toISOString(), durationMs: 0, status: 'ok' };
    phases.push(p);
    log.info({ phase: name }, 'phase started');
    try {
      return await fn();
    } catch (err) {
      p.status = 'failed';
      throw err;
    } finally {
      p.durationMs = Date.now() - start;
    }
  }

  const testStart = new Date();
  let verifyEnd: number | null = null;
  let info: DumpInfo | undefined;
  let outcome: RestoreOutcome | undefined;
  let backupCreatedAt: Date | null = null;

  try {
    // ---- fetch: find the backup, read its header, hash it while streaming
    const fetched = await phase('fetch', async () => {
      const resolved = await resolveBackup(plan.source, policy.roots, config.sandbox.settleSeconds, new Date(), policy.tenant);
      const tz = plan.source.timezone ?? plan.cadence.timezone;
      info = await inspectDump(resolved.realPath, { timezone: tz });
      const scanner = info.format.startsWith('plain') ? createPlainScanner(info.format as 'plain' | 'plain-gzip' | 'plain-zstd') : undefined;
      // checked per chunk: a cancel or timeout stops hashing a large backup at once
      const digest = await digestBackup(resolved, async (c) => {
        checkAbort();
        if (scanner) await scanner.write(c);
      }, abort.signal);
      const scan: PlainScan | undefined = scanner ? await scanner.end() : undefined;
      checkAbort();
      backupCreatedAt = info.createdAt ?? null;
      if (backupCreatedAt && backupCreatedAt.getTime() > resolved.mtime.getTime() + 60_000) {
        findings.push(finding('BACKUP_TIME_FROM_FILE', `the dump header time lies after the file's modification time (time zone ${tz} wrong?); the file time is used`));
        backupCreatedAt = resolved.mtime;
      } else if (!backupCreatedAt) {
        findings.push(finding('BACKUP_TIME_FROM_FILE', 'the dump header has no creation time; the file modification time is used'));
        backupCreatedAt = resolved.mtime;
      }
      backup = {
        path: resolved.path, sizeBytes: digest.sizeBytes, sha256: digest.sha256, createdAt: backupCreatedAt.toISOString(),
        createdAtSource: info.createdAt && backupCreatedAt === info.createdAt ? 'header' : 'file',
        format: info.format, dumpVersion: info.dumpVersion ?? null, serverVersion: info.serverVersion ?? null,
        archiveVersion: info.archiveVersion ?? null, compression: info.compression ?? null,
      };
      if (plan.source.sizeBytes !== undefined && plan.source.sizeBytes !== digest.sizeBytes) {
        findings.push(finding('BACKUP_SIZE_MISMATCH', `backup has ${digest.sizeBytes} bytes, the plan expects ${plan.source.sizeBytes}`));
      }
      if (plan.source.sha256 && plan.source.sha256.toLowerCase() !== digest.sha256) {
        findings.push(finding('BACKUP_CHECKSUM_MISMATCH', `backup SHA-256 ${digest.sha256.slice(0, 16)}… differs from the expected ${plan.source.sha256.slice(0, 16)}…`));
      }
      const last = await runs.lastWithBackup(run.tenant_id, run.plan_id, runId);
      const lastSha = (last?.backup as { sha256?: string } | null)?.sha256;
      if (lastSha === digest.sha256) {
        findings.push(finding('BACKUP_NOT_NEW', `same backup as run ${last!.id} (SHA-256 ${digest.sha256.slice(0, 16)}…): no newer backup was written since`));
      }
      // the identity of the very file that was hashed (its open descriptor), not of whatever the name points at later
      const identity = digest.identity
        ? `${digest.identity.ino}:${digest.identity.size}:${digest.identity.mtimeMs}`
        : await stat(resolved.realPath).then((st) => `${st.ino}:${st.size}:${st.mtimeMs}`);
      return { resolved, digest, scan, identity };
    });
    if (findings.some((f) => f.severity === 'error' || f.severity === 'failure')) throw new Stop();

    // ---- provision: the matching image, an isolated container, a running server
    await phase('provision', async () => {
      const choice = chooseImage(info!.requiredMajor, config.sandbox.postgresMajors, config.sandbox.postgresImage, plan.restore.image, policy.allowedImages);
      // a pull or a Docker call that hangs must not outlive a cancel or the timeout
      const image = await raceAbort(ensureImage(docker, choice.image, config.sandbox.pull), abort.signal);
      checkAbort();
      const transfer = config.sandbox.transfer === 'auto' ? (isLocalEngine(config.docker.host) ? 'bind' : 'copy') : config.sandbox.transfer;
      sandboxInfo = {
        image: choice.image, imageId: image.id, repoDigests: image.repoDigests, postgresMajor: choice.major,
        network: 'none', capDrop: ['ALL'], capAdd: ['DAC_READ_SEARCH', 'SETUID', 'SETGID'], serverUser: 'postgres', noNewPrivileges: true,
        memoryBytes: limits.memoryBytes, cpus: limits.cpus, pids: limits.pids, timeoutSeconds: limits.timeoutSeconds, transfer, backupMount: 'read-only',
        ...(limits.capped.length && { cappedByOperator: limits.capped }),
      };
      sandbox = await raceAbort(provisionSandbox(docker, {
        image: choice.image, runId, planId: run.plan_id, tenantId: run.tenant_id, instance: config.instance,
        memoryBytes: limits.memoryBytes, cpus: limits.cpus, pids: limits.pids,
        backupPath: fetched.resolved.realPath, transfer,
      }, image.id, log), abort.signal);
      sandboxInfo.containerId = sandbox.id;
      if (abortReason) await sandbox.destroy().catch(() => undefined);
      checkAbort();
      await waitForPostgres(sandbox, 120_000, abort.signal);
      const need = fetched.digest.sizeBytes * config.sandbox.diskFactor;
      const free = await freeDiskBytes(sandbox);
      sandboxInfo.freeDiskBytes = free;
      if (free !== null && free < need) {
        findings.push(finding('DISK_SPACE_LOW', `only ${Math.round(free / 2 ** 20)} MiB free in the sandbox, ${Math.round(need / 2 ** 20)} MiB needed (${config.sandbox.diskFactor}× the backup)`));
        throw new Stop();
      }
    });
    checkAbort();

    // ---- restore
    outcome = await phase('restore', () => restorePostgres({
      sandbox: sandbox!, info: info!, database: plan.restore.database, jobs: plan.restore.jobs ?? Math.max(1, Math.ceil(limits.cpus * 2)),
      plainScan: fetched.scan,
    }));
    checkAbort();
    findings.push(...outcome.findings);
    // the evidence names the hashed file: if it was replaced or changed meanwhile, the restore proved something else
    const after = await stat(fetched.resolved.realPath).then((st) => `${st.ino}:${st.size}:${st.mtimeMs}`, () => 'gone');
    if (after !== fetched.identity) {
      findings.push(finding('BACKUP_CHANGED', 'the backup file was replaced or changed while it was being tested; the hashed and the restored data may differ'));
    }
    restoreInfo = { tool: outcome.tool ?? null, tables: outcome.tables ?? null, nonEmptyTables: outcome.nonEmptyTables ?? null, database: outcome.database ?? plan.restore.database };
    if (!outcome.restored) throw new Stop();

    // ---- verify
    const lastGood = lastGoodCounts((await runs.lastPassed(run.tenant_id, run.plan_id))?.checks);
    checks = await phase('verify', () => runChecks(plan.checks, sandboxQuery(sandbox!, outcome?.database ?? plan.restore.database), abort.signal, lastGood));
    checkAbort();
    verifyEnd = Date.now();
    // verified: a cancel arriving now (during teardown) must not turn a completed test into `cancelled`
    clearInterval(heartbeat);
    const failedChecks = checks.filter((c) => c.status === 'failed');
    const erroredChecks = checks.filter((c) => c.status === 'error');
    if (failedChecks.length) {
      findings.push(finding('CHECK_FAILED', `${failedChecks.length} of ${checks.length} check(s) failed: ${failedChecks.map((c) => c.name).join(', ')}`));
    }
    if (erroredChecks.length) {
      findings.push(finding('CHECK_ERROR', `${erroredChecks.length} of ${checks.length} check(s) could not be evaluated (query error): ${erroredChecks.map((c) => c.name).join(', ')}`));
    }
  } catch (err) {
    if (err instanceof Stop || err instanceof Aborted) {
      // recorded already, or handled below
    } else if (abortReason) {
      // an exec torn down by cancel/timeout throws; the abort reason is the truth
    } else if (err instanceof SourceError) {
      findings.push(finding(err.code, err.message));
    } else if (err instanceof DumpInspectError) {
      findings.push(finding(err.code, err.message));
    } else if (err instanceof ImageError) {
      findings.push(finding(err.code, err.message));
    } else if (err instanceof SandboxError) {
      findings.push(finding('SANDBOX_FAILED', err.message));
    } else {
      const e = err as Error & { code?: string };
      const dockerDown = e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES';
      findings.push(finding(dockerDown ? 'SANDBOX_FAILED' : 'INTERNAL_ERROR', dockerDown ? `Docker engine not reachable (${e.code})` : `unexpected error: ${e.message.slice(0, 200)}`));
      log.error({ err: e.message, stack: e.stack }, 'restore test failed unexpectedly');
    }
  } finally {
    clearTimeout(timeout);
    // ---- teardown, on every path
    await phase('teardown', async () => {
      if (!sandbox) return;
      await sandbox.destroy();
      // proof that the restored (personal) data is gone: the engine no longer knows the container
      const gone = await docker.getContainer(sandbox.id).inspect().then(() => false, (e: { statusCode?: number }) => e.statusCode === 404);
      if (sandboxInfo) sandboxInfo.teardown = { removedAt: new Date().toISOString(), verified: gone };
      if (!gone) throw new Error(`container ${sandbox.id} still exists after removal`);
    }).catch((err: Error) => {
      // the test itself was verified or not regardless; the leftover is flagged and the reaper retries
      findings.push(finding('SANDBOX_CLEANUP_FAILED', `sandbox could not be removed (the reaper retries): ${err.message.slice(0, 200)}`));
      log.error({ err: err.message }, 'sandbox teardown failed');
    });
    clearInterval(heartbeat);
  }

  deps.shutdown?.removeEventListener('abort', onShutdown);
  if (abortReason === 'shutdown') {
    findings.push(finding('INTERRUPTED', 'the worker was shut down during the test; the sandbox was removed and the test did not complete'));
  }
  if (abortReason === 'lost') {
    findings.push(finding('WORKER_LOST', 'this worker lost the run (no longer registered as its holder); the test did not complete'));
  }
  if (abortReason === 'timeout') {
    findings.push(finding('TIMEOUT', `the test did not finish within the sandbox timeout of ${limits.timeoutSeconds}s`));
  }
  if (plan.checks.length === 0 && verifyEnd !== null) {
    findings.push(finding('NO_CHECKS', 'the plan has no checks: only "restored without errors and not empty" was proven; add checks that prove the data'));
  }
  const phaseNames = phases.map((p) => p.name);
  for (const name of ['fetch', 'provision', 'restore', 'verify'] as const) {
    if (!phaseNames.includes(name)) phases.splice(phases.length - 1, 0, { name, startedAt: new Date().toISOString(), durationMs: 0, status: 'skipped' });
  }
  if (checks.length < plan.checks.length) {
    const reason = abortReason === 'cancelled' ? 'abgebrochen' : abortReason === 'timeout' ? 'Zeitlimit überschritten' : 'nicht ausgeführt: Wiederherstellung nicht erfolgreich';
    checks = [...checks, ...skippedChecks(plan.checks.slice(checks.length), reason)];
  }
  const measured = verifyEnd === null ? null : (verifyEnd - testStart.getTime()) / 1000;
  const created = backupCreatedAt as Date | null;
  const age = created ? Math.max(0, (testStart.getTime() - created.getTime()) / 1000) : null;
  const targets = measureTargets(plan.targets, measured, age);
  if (targets.rto.met === false) findings.push(finding('RTO_EXCEEDED', `restore took ${Math.round(measured!)}s, RTO is ${plan.targets.rtoSeconds}s`));
  if (targets.rpo.met === false) findings.push(finding('RPO_EXCEEDED', `backup is ${Math.round(age! / 3600)}h old, RPO is ${Math.round(plan.targets.rpoSeconds / 3600)}h`));
  const verdict = decideVerdict({ findings, checks, cancelled: abortReason === 'cancelled', restored: outcome?.restored === true && verifyEnd !== null });
  // the restore tool's own output is kept as a prunable attachment: it may quote personal data
  const attachments = outcome?.log ? [{ name: 'restore-tool.log', content: Buffer.from(outcome.log, 'utf8') }] : [];
  const stored = await deps.finisher.finishClaimed(runId, deps.workerId, {
    verdict, phases, checks, findings, rto: targets.rto, rpo: targets.rpo, backup, sandbox: sandboxInfo, restore: restoreInfo,
  }, attachments);
  log.info({ verdict, findings: findings.map((f) => f.code), stored: stored !== undefined }, 'restore test finished');
}

class Stop extends Error {}

/** Settles with the promise, or rejects as soon as the run is aborted (the reaper removes anything left behind). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Aborted(String(signal.reason)));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Aborted(String(signal.reason)));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e instanceof Error ? e : new Error(String(e))); },
    );
  });
}

async function freeDiskBytes(sandbox: Sandbox): Promise<number | null> {
  const r = await sandbox.exec(['df', '-Pk', '/var/lib/postgresql', '/tmp']);
  if (r.exitCode !== 0) return null;
  const avail = r.stdout.split('\n').slice(1).filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[3]) * 1024);
  return avail.length ? Math.min(...avail) : null;
}

