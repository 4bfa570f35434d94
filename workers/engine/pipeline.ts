import { stat } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Clock } from '../../services/clock.js';
import type { Config } from '../../services/config.js';
import { finding, type Finding } from '../../services/findings.js';
import { isSandboxPlan, type RestorePlan, type SandboxPlan } from '../../services/plans/plan.types.js';
import type { TenantPlanPolicy } from '../../services/plans/plan.parser.js';
import type { PlanPolicyService } from '../../services/plans/plan-policy.js';
import { isDatabaseUnavailable, type OutcomeHandover } from '../../services/runs/outcome-handover.js';
import type { PlanRepository } from '../../db/repositories/plan.repository.js';
import type { RunRepository } from '../../db/repositories/run.repository.js';
import type { BaselineRepository } from '../../db/repositories/baseline.repository.js';
import { chooseBaseline } from '../../services/runs/baseline.service.js';
import { lastGoodCounts, runChecks } from '../checks/checks.js';
import type { DriverContext, Inspection, RestoreDriver, RestoreResult } from '../drivers/driver.js';
import { driverFor } from '../drivers/registry.js';
import { DumpInspectError } from '../drivers/postgres/dump-format.js';
import { ensureImage, ImageError } from '../sandbox/images.js';
import { effectiveLimits, type EffectiveLimits } from '../sandbox/limits.js';
import { createSandbox, SandboxError, type Sandbox, type SandboxInput } from '../sandbox/sandbox.js';
import { digestFiles } from '../sources/wal.source.js';
import { digestBackup, resolveBackup, SourceError, type BackupDigest, type ResolvedBackup } from '../sources/file.source.js';
import { sourceLocation } from '../../services/plans/plan.types.js';
import { PhaseRecorder, type Phase } from './phases.js';
import { Aborted, raceAbort, RunControl } from './run-control.js';
import { concludeRun, newOutcome, type RunOutcome } from './run-outcome.js';
import { demote, infrastructureCause, isEngineUnavailable } from './infrastructure.js';
import { createRunNetwork, networkExists, removeRunNetwork, type RunNetwork } from '../sandbox/network.js';
import { DB_ALIAS } from '../../services/plans/plan-services.js';
import { dbValues, ServiceGroup, type GroupAccess } from './services.js';

export interface EngineDeps {
  config: Config;
  docker: Docker;
  runs: RunRepository;
  plans: PlanRepository;
  /** Accepted baselines of the built-in drift checks. */
  baselines: BaselineRepository;
  /** Where the outcome goes: a process holding the signing key ends the run and signs its record (the worker holds no key). */
  outcomes: OutcomeHandover;
  /** The operator's policy for the run's tenant: its backup roots, allowed images, limit bounds. */
  policy: PlanPolicyService;
  log: Logger;
  workerId: string;
  heartbeatMs?: number;
  /** Aborted when the worker shuts down: running tests end as `error` (INTERRUPTED) with their sandbox removed. */
  shutdown?: AbortSignal;
  /** The worker pool whose queue the job came from; recorded with the sandbox. */
  pool?: string;
  /** Business time (services/clock.ts): when the test and its phases started and ended, the backup's age. */
  clock: Clock;
}

/**
 * Which Docker engine ran the sandbox, for the record: the worker's DOCKER_HOST (`local`: the default
 * socket) and the engine's own name and id (asked once per engine; two engines on one host may share both).
 */
const engines = new WeakMap<Docker, Promise<{ host: string; name: string; id: string }>>();
function engineOf(docker: Docker, host: string | undefined): Promise<{ host: string; name: string; id: string }> {
  let e = engines.get(docker);
  if (!e) {
    e = docker.info().then((i: { ID?: string; Name?: string }) => ({ host: host ?? 'local', name: String(i.Name ?? ''), id: String(i.ID ?? '') }));
    e.catch(() => engines.delete(docker));
    engines.set(docker, e);
  }
  return e;
}

/** Everything the phases of one run share. */
interface Run {
  id: string;
  tenantId: string;
  planId: string;
  plan: SandboxPlan;
  driver: RestoreDriver<Inspection>;
  policy: TenantPlanPolicy;
  limits: EffectiveLimits;
  ctl: RunControl;
  o: RunOutcome;
  log: Logger;
  sandbox?: Sandbox;
  /** An application group's run (decisions/021): its internal network, its services and their log tails. */
  network?: RunNetwork;
  group?: ServiceGroup;
  serviceLogs?: { name: string; content: string }[];
}

interface Fetched {
  backup: ResolvedBackup;
  inspection: Inspection;
  /** Hashed while fetching; undefined when the copy into the sandbox hashes it (the backup is read once). */
  digest?: BackupDigest;
  identity: string;
  /** Read-only folders beside the backup (a WAL archive), from the driver. */
  inputs: SandboxInput[];
}

/** A phase found what ends the run; its findings are recorded already. */
class Stop extends Error {}
const blocking = (fs: Finding[]) => fs.some((f) => f.severity === 'error' || f.severity === 'failure');

/**
 * One restore test, top to bottom: claim the run, then fetch -> provision ->
 * restore -> verify -> teardown, each a function that adds its part to one
 * RunOutcome; `concludeRun` decides the verdict, and the outcome is handed
 * over to a process with the signing key, which stores it with its record. Never leaves a sandbox behind.
 */
export async function handleRestoreTest(deps: EngineDeps, runId: string): Promise<void> {
  const claimed = await deps.runs.claim(runId, deps.workerId, deps.clock());
  if (!claimed) {
    const current = await deps.runs.getById(runId);
    if (current?.status === 'queued' && current.cancel_requested_at) {
      await deps.outcomes.unclaimed(runId, deps.workerId, { verdict: 'cancelled', findings: [] }, 'queued');
    }
    deps.log.info({ runId, status: current?.status }, 'run is not queued any more (cancelled or taken); nothing to do');
    return;
  }
  const log = deps.log.child({ runId, planId: claimed.plan_id, tenantId: claimed.tenant_id });
  const version = (await deps.plans.getVersion(claimed.tenant_id, claimed.plan_id, claimed.plan_version_hash)) as RestorePlan | undefined;
  // an external plan is never queued (its results come from another tool); a run of one here is a bug, not a test
  const plan = version && isSandboxPlan(version) ? version : undefined;
  const driver = plan && driverFor(plan.restore.driver);
  if (!plan || !driver) {
    const why = plan ? `no restore driver "${plan.restore.driver}" in this worker` : version ? `plan ${version.id} is ${version.kind ?? 'not restorable'}: ernstfall does not restore it` : 'plan version not found';
    await deps.outcomes.claimed(runId, deps.workerId, { verdict: 'error', findings: [finding('INTERNAL_ERROR', why)] });
    return;
  }
  const policy = await deps.policy.forTenant(claimed.tenant_id);
  // the operator may have lowered a bound after the plan was stored: the lower one holds
  const limits = effectiveLimits(plan.sandbox, policy.max);
  const o = newOutcome(deps.clock().getTime());
  const phases = new PhaseRecorder(() => deps.clock().getTime());
  o.phases = phases.list;
  if (limits.capped.length) o.findings.push(finding('LIMIT_CAPPED', `the operator's upper bounds apply instead of the plan's: ${limits.capped.join(', ')}`));

  const run: Run = { id: runId, tenantId: claimed.tenant_id, planId: claimed.plan_id, plan, driver, policy, limits, o, log } as Run;
  run.ctl = new RunControl({
    runs: deps.runs, runId, workerId: deps.workerId, heartbeatMs: deps.heartbeatMs ?? deps.config.sandbox.heartbeatMs,
    timeoutSeconds: limits.timeoutSeconds, shutdown: deps.shutdown, log,
    progress: () => ({ phases: o.phases, findings: o.findings }),
    watch: async () => {
      const used = run.sandbox ? await run.sandbox.dataUsage() : null;
      return used !== null && used > limits.diskBytes ? 'disk' : undefined;
    },
    onStop: () => {
      void run.group?.destroy().catch(() => undefined);
      void run.sandbox?.destroy().catch(() => undefined);
    },
  });
  run.ctl.start();

  try {
    const fetched = await phases.run('fetch', () => fetch(deps, run), run.ctl.why);
    if (blocking(o.findings)) throw new Stop();
    const ctx = await phases.run('provision', () => provision(deps, run, fetched), run.ctl.why);
    const restored = await phases.run('restore', () => restore(deps, run, ctx, fetched), run.ctl.why);
    await phases.run('verify', () => verify(deps, run, ctx, restored), run.ctl.why);
    if (plan.services?.length) await phases.run('services', () => services(deps, run, ctx, restored, phases.list.at(-1)!), run.ctl.why);
    // verified: a cancel arriving now (during teardown) must not turn a completed test into `cancelled`
    run.ctl.settle();
  } catch (err) {
    await recordFailure(deps, run, err);
  }
  run.ctl.settle();
  await phases.run('teardown', () => teardown(deps, run), () => undefined).catch((err: Error) => {
    // the test itself was verified or not regardless; the leftover is flagged and the reaper retries
    o.findings.push(finding('SANDBOX_CLEANUP_FAILED', `sandbox could not be removed (the reaper retries): ${err.message.slice(0, 200)}`));
    log.error({ err: err.message }, 'sandbox teardown failed');
  });
  o.stopped = run.ctl.stopped;

  const end = concludeRun(o, plan, deps.clock(), { timeoutSeconds: limits.timeoutSeconds });
  // the restore tool's own output is kept as a prunable attachment: it may quote personal data
  const attachments = [
    ...(o.toolLog ? [{ name: 'restore-tool.log', content: Buffer.from(o.toolLog, 'utf8') }] : []),
    // an application group's services' last log lines, the run's password redacted (decisions/021)
    ...(run.serviceLogs ?? []).map((l) => ({ name: l.name, content: Buffer.from(l.content, 'utf8') })),
  ];
  let stored: boolean;
  try {
    // retried with backoff while the database is away; heartbeats go on meanwhile (the run is still being handed over)
    stored = await deps.outcomes.claimed(runId, deps.workerId, {
      verdict: end.verdict, phases: end.phases, checks: end.checks, findings: end.findings, rto: end.rto, rpo: end.rpo,
      backup: o.backup, sandbox: o.sandbox, restore: o.restore,
    }, attachments);
  } finally {
    // never beat on for a run whose hand-over failed: that would keep it `running` for ever
    run.ctl.close();
  }
  log.info({ verdict: end.verdict, findings: end.findings.map((f) => f.code), handedOver: stored }, 'restore test finished; outcome handed over for signing');
}

// ---- fetch: find the backup, let the driver read its header, hash it while streaming
async function fetch(deps: EngineDeps, run: Run): Promise<Fetched> {
  const { plan, o, ctl } = run;
  const backup = await resolveBackup(sourceLocation(plan.source), run.policy.roots, deps.config.sandbox.settleSeconds, deps.clock(), run.policy.tenant);
  const inspection = await run.driver.inspect(backup, plan);
  const inputs = (await run.driver.inputs?.(plan, inspection, { roots: run.policy.roots, settleSeconds: deps.config.sandbox.settleSeconds, now: deps.clock(), tenant: run.policy.tenant })) ?? [];
  // read once: a backup copied into the sandbox is hashed on its way in, unless the driver must see every byte first
  // (a plain dump's scan) or it is mounted in place (then the hash must come before, and its identity is compared after)
  const hashLater = deps.config.sandbox.transfer !== 'bind' && !inspection.scan && !(plan.source.type === 'file' && (plan.source.sha256 || plan.source.sizeBytes !== undefined));
  let digest: (BackupDigest & { identity?: { ino: number; size: number; mtimeMs: number } }) | undefined;
  if (!hashLater) {
    // checked per chunk: a cancel or timeout stops hashing a large backup at once
    digest = await digestBackup(backup, async (c) => {
      ctl.check();
      await inspection.scan?.(c);
    }, ctl.signal);
    await inspection.endScan?.();
  }
  ctl.check();
  o.findings.push(...(inspection.findings ?? []));
  let createdAt = inspection.createdAt;
  const src = plan.source.type === 'file' ? plan.source : undefined;
  if (createdAt && createdAt.getTime() > backup.mtime.getTime() + 60_000) {
    o.findings.push(finding('BACKUP_TIME_FROM_FILE', `the backup's own creation time lies after the file's modification time (time zone ${src?.timezone ?? plan.cadence.timezone} wrong?); the file time is used`));
    createdAt = backup.mtime;
  } else if (!createdAt && !src) {
    // a repository: the chosen snapshot's own time replaces this once the driver has read it
    createdAt = backup.mtime;
  } else if (!createdAt) {
    o.findings.push(finding('BACKUP_TIME_FROM_FILE', 'the backup has no creation time of its own; the file modification time is used'));
    createdAt = backup.mtime;
  }
  o.backupCreatedAt = createdAt;
  o.backup = { path: backup.path, createdAt: createdAt.toISOString(), createdAtSource: createdAt === inspection.createdAt ? 'header' : 'file', ...inspection.facts };
  if (digest) await judgeDigest(deps, run, digest);
  // the identity of the very file that was hashed (its open descriptor), not of whatever the name points at later
  const identity = digest?.identity
    ? `${digest.identity.ino}:${digest.identity.size}:${digest.identity.mtimeMs}`
    : await stat(backup.realPath).then((st) => `${st.ino}:${st.size}:${st.mtimeMs}`);
  return { backup, inspection, digest, identity, inputs };
}

/** The backup's hash and size into the record, and what they say: not the expected size or hash, the same backup as last time. */
async function judgeDigest(deps: EngineDeps, run: Run, digest: BackupDigest): Promise<void> {
  const { o, plan } = run;
  const src = plan.source.type === 'file' ? plan.source : undefined;
  o.backup = { path: o.backup?.path, sizeBytes: digest.sizeBytes, sha256: digest.sha256, ...o.backup };
  if (src?.sizeBytes !== undefined && src.sizeBytes !== digest.sizeBytes) {
    o.findings.push(finding('BACKUP_SIZE_MISMATCH', `backup has ${digest.sizeBytes} bytes, the plan expects ${src.sizeBytes}`));
  }
  if (src?.sha256 && src.sha256.toLowerCase() !== digest.sha256) {
    o.findings.push(finding('BACKUP_CHECKSUM_MISMATCH', `backup SHA-256 ${digest.sha256.slice(0, 16)}… differs from the expected ${src.sha256.slice(0, 16)}…`));
  }
  const last = await deps.runs.lastWithBackup(run.tenantId, run.planId, run.id);
  if ((last?.backup as { sha256?: string } | null)?.sha256 === digest.sha256) {
    o.findings.push(finding('BACKUP_NOT_NEW', `same backup as run ${last!.id} (SHA-256 ${digest.sha256.slice(0, 16)}…): no newer backup was written since`));
  }
}

// ---- provision: the driver's image, an isolated sandbox with the backup in it, a running service
async function provision(deps: EngineDeps, run: Run, f: Fetched): Promise<DriverContext<Inspection>> {
  const { config, docker } = deps;
  const { o, ctl, limits } = run;
  const base = { plan: run.plan, config, policy: run.policy, inspection: f.inspection };
  const choice = run.driver.chooseImage(base);
  // a pull or a Docker call that hangs must not outlive a cancel or the timeout
  const image = await raceAbort(ensureImage(docker, choice.image, config.sandbox.pull), ctl.signal);
  const recipe = run.driver.sandbox({ ...base, cpus: limits.cpus });
  // a backup the sandbox's tool must write to (a borg repository) is always a copy: a bind mount is the original
  const transfer = config.sandbox.transfer === 'auto' || recipe.backupOwner ? 'copy' : config.sandbox.transfer;
  const engine = await raceAbort(engineOf(docker, config.docker.host), ctl.signal);
  o.sandbox = {
    pool: deps.pool ?? 'default', engine,
    image: choice.image, imageId: image.id, repoDigests: image.repoDigests, ...choice.facts,
    network: run.plan.services?.length ? 'internal' : 'none', user: recipe.user, capDrop: ['ALL'], capAdd: [], noNewPrivileges: true, readOnlyRootfs: true,
    memoryBytes: limits.memoryBytes, cpus: limits.cpus, pids: limits.pids, timeoutSeconds: limits.timeoutSeconds, dataAreaBytes: limits.diskBytes,
    transfer, backupMount: recipe.backupOwner ? 'copy-writable-by-sandbox-user' : 'read-only',
    ...(limits.capped.length && { cappedByOperator: limits.capped }),
  };
  if (run.plan.services?.length) {
    // an application group: one internal network for the run (no route out), which the sandbox joins as `db`
    run.network = await raceAbort(createRunNetwork(docker, { instance: config.instance, runId: run.id, planId: run.planId, tenantId: run.tenantId }), ctl.signal);
    o.sandbox.networkId = run.network.id;
  }
  const creating = createSandbox(docker, {
    image: choice.image, runId: run.id, planId: run.planId, tenantId: run.tenantId, instance: config.instance,
    memoryBytes: limits.memoryBytes, cpus: limits.cpus, pids: limits.pids, recipe, transfer,
    backupPath: f.backup.realPath, backupIsDirectory: f.backup.isDirectory, inputs: f.inputs,
    ...(run.network && { network: { name: run.network.name, alias: DB_ALIAS } }),
  }, image.id, run.log);
  // a stop while Docker creates the container: the container it creates after all is removed at once
  creating.then((sb) => { if (ctl.stopped && run.sandbox !== sb) void sb.destroy().catch(() => undefined); }, () => undefined);
  run.sandbox = await raceAbort(creating, ctl.signal);
  o.sandbox.containerId = run.sandbox.id;
  if (ctl.stopped) await run.sandbox.destroy().catch(() => undefined);
  ctl.check();
  if (transfer === 'copy') {
    // what is restored is what was hashed: the copy is hashed again on its way in
    // raced as well: a container removed by a stop mid-upload may leave the engine's answer pending for ever
    const copied = await raceAbort(run.sandbox.copyBackup(f.backup, ctl.signal), ctl.signal);
    if (!f.digest) {
      // read once: the copy's hash is the backup's; the file copied must be the one fetch found and read the header of
      const copiedIdentity = copied.identity ? `${copied.identity.ino}:${copied.identity.size}:${copied.identity.mtimeMs}` : undefined;
      if (copiedIdentity && copiedIdentity !== f.identity) {
        o.findings.push(finding('BACKUP_CHANGED', 'the backup file was replaced or changed between finding it and copying it into the sandbox; its header and its content may differ'));
        throw new Stop();
      }
      f.digest = copied;
      await judgeDigest(deps, run, copied);
      if (blocking(o.findings)) throw new Stop();
    } else if (copied.sha256 !== f.digest.sha256 || copied.sizeBytes !== f.digest.sizeBytes) {
      o.findings.push(finding('BACKUP_CHANGED', `the backup changed between hashing (SHA-256 ${f.digest.sha256.slice(0, 16)}…) and copying it into the sandbox (${copied.sha256.slice(0, 16)}…)`));
      throw new Stop();
    }
  }
  for (const input of f.inputs) {
    // hashed like the backup: copied (and hashed on the way) or, mounted in place, hashed here
    const d = transfer === 'copy' ? await raceAbort(run.sandbox.copyInput(input, ctl.signal), ctl.signal) : await digestFiles(input.backup.realPath, input.files ?? [], ctl.signal);
    o.backup = { ...o.backup, [input.name]: { path: input.backup.path, files: input.files?.length ?? null, sizeBytes: d.sizeBytes, sha256: d.sha256 } };
  }
  await raceAbort(run.sandbox.start(), ctl.signal);
  const ctx: DriverContext<Inspection> = { ...base, cpus: limits.cpus, signal: ctl.signal };
  await raceAbort(run.driver.ready(run.sandbox, ctx), ctl.signal);
  const need = (f.digest?.sizeBytes ?? 0) * config.sandbox.diskFactor;
  const free = await raceAbort(freeDiskBytes(run.sandbox), ctl.signal);
  o.sandbox.freeDiskBytes = free;
  if (free !== null && free < need) {
    o.findings.push(finding('DISK_SPACE_LOW', `only ${Math.round(free / 2 ** 20)} MiB free for the sandbox's data area, ${Math.round(need / 2 ** 20)} MiB needed (${config.sandbox.diskFactor}× the backup)`));
    throw new Stop();
  }
  return ctx;
}

// ---- restore: the driver's tools inside the sandbox
async function restore(deps: EngineDeps, run: Run, ctx: DriverContext<Inspection>, f: Fetched): Promise<RestoreResult> {
  const { o } = run;
  // the sandbox is destroyed on a stop, which ends the tool; the race makes sure nothing waits on a lost answer
  const r = await raceAbort(run.driver.restore(run.sandbox!, ctx), run.ctl.signal);
  run.ctl.check();
  o.toolLog = r.log;
  o.restore = r.facts;
  if (r.backup) {
    // a repository's chosen snapshot or archive: its own time is the backup's age (RPO)
    o.backupCreatedAt = r.backup.createdAt;
    o.backup = { ...o.backup, ...r.backup.facts, createdAt: r.backup.createdAt.toISOString(), createdAtSource: r.backup.source };
  }
  if (!r.restored || blocking(r.findings)) {
    const cause = await infrastructureCause(deps.docker, run.sandbox, r.log ?? '');
    o.findings.push(...(cause ? [cause, ...demote(r.findings, cause)] : r.findings));
    if (cause) throw new Stop();
  } else {
    o.findings.push(...r.findings);
  }
  // a bind-mounted backup is read in place: if it was replaced or changed meanwhile, the restore proved something else
  if (run.o.sandbox?.transfer === 'bind') {
    const after = await stat(f.backup.realPath).then((st) => `${st.ino}:${st.size}:${st.mtimeMs}`, () => 'gone');
    if (after !== f.identity) o.findings.push(finding('BACKUP_CHANGED', 'the backup file was replaced or changed while it was being tested; the hashed and the restored data may differ'));
  }
  if (!r.restored) throw new Stop();
  return r;
}

// ---- verify: the plan's checks against what the driver offers
async function verify(deps: EngineDeps, run: Run, ctx: DriverContext<Inspection>, r: RestoreResult): Promise<void> {
  const { o, plan } = run;
  const lastPassed = await deps.runs.lastPassed(run.tenantId, run.planId);
  const lastGood = lastGoodCounts(lastPassed?.checks);
  // the built-in checks and the plan's read the same read-only restore independently: side by side,
  // a test waits for the longer of the two, not their sum (the sandbox idles while a query's answer travels)
  const checksStarted = performance.now();
  const [b, checks] = await Promise.all([
    builtinChecks(deps, run, ctx, r, lastPassed),
    runChecks(plan.checks, run.driver.checks(run.sandbox!, ctx, r, { lastGood, lastProfile: (lastPassed?.restore as { profile?: unknown } | null)?.profile }), run.ctl.signal).then((c) => ({ c, ms: Math.round(performance.now() - checksStarted) })),
  ]);
  o.restore = { ...o.restore, ...b.restore, checksMs: checks.ms };
  o.findings.push(...b.findings);
  o.checks = checks.c;
  run.ctl.check();
  const failed = o.checks.filter((c) => c.status === 'failed');
  const errored = o.checks.filter((c) => c.status === 'error');
  if (errored.length) {
    // a check that could not run because the sandbox died is the machine's fault, not the data's
    const cause = await infrastructureCause(deps.docker, run.sandbox, '');
    if (cause) {
      o.findings.push(cause);
      throw new Stop();
    }
  }
  o.restored = true;
  o.verifyEnd = performance.now();
  if (failed.length) o.findings.push(finding('CHECK_FAILED', `${failed.length} of ${o.checks.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`));
  if (errored.length) o.findings.push(finding('CHECK_ERROR', `${errored.length} of ${o.checks.length} check(s) could not be evaluated (query error): ${errored.map((c) => c.name).join(', ')}`));
}

/**
 * The built-in checks: what every database restore is asked, with nothing in
 * the plan (freshness, sequences, schema and volume drift against the
 * baseline). Returns what the run records; a failure to run them is a
 * warning, never a pass or a crash of the test.
 */
async function builtinChecks(deps: EngineDeps, run: Run, ctx: DriverContext<Inspection>, r: RestoreResult, lastPassed: Awaited<ReturnType<EngineDeps['runs']['lastPassed']>>): Promise<{ restore: Record<string, unknown>; findings: Finding[] }> {
  const { o } = run;
  if (!run.driver.builtins) return { restore: {}, findings: [] };
  const started = performance.now();
  try {
    // the last passed run, or a newer run a person accepted as the new baseline (an intended change)
    const chosen = chooseBaseline(await deps.baselines.latest(run.tenantId, run.planId), lastPassed);
    const baselineRun = chosen?.kind === 'accepted' ? await deps.runs.get(run.tenantId, chosen.row.run_id) : lastPassed;
    const baseline = (baselineRun?.restore as { profile?: unknown } | null)?.profile;
    const b = await raceAbort(run.driver.builtins(run.sandbox!, ctx, r, { baseline, backupCreatedAt: o.backupCreatedAt ?? new Date(o.testStart) }), run.ctl.signal);
    run.ctl.check();
    if (b.profile === undefined) return { restore: { builtin: b.results }, findings: b.findings };
    return {
      restore: {
        builtin: b.results, builtinMs: Math.round(performance.now() - started), profile: b.profile,
        baselineRunId: baseline ? baselineRun!.id : null, baselineSource: baseline ? chosen!.kind : null,
      },
      findings: b.findings,
    };
  } catch (err) {
    if (run.ctl.stopped) throw err;
    return { restore: {}, findings: [finding('BUILTIN_CHECKS_FAILED', `the built-in checks could not run: ${(err as Error).message.slice(0, 200)}`)] };
  }
}

// ---- services: an application group on the run's internal network, probed until its deadline (decisions/021)
async function services(deps: EngineDeps, run: Run, ctx: DriverContext<Inspection>, r: RestoreResult, phase: Phase): Promise<void> {
  const { o, plan, limits } = run;
  if ((!run.driver.endpoint && !run.driver.treeAccess) || !run.network) throw new SandboxError(`the ${run.driver.name} driver offers nothing an application could use (a database or a file tree)`);
  let access: GroupAccess;
  let seen: Record<string, unknown>;
  if (run.driver.endpoint) {
    const endpoint = await raceAbort(run.driver.endpoint(run.sandbox!, ctx, r), run.ctl.signal);
    access = { values: dbValues(endpoint), secrets: [endpoint.password] };
    seen = { endpoint: { host: DB_ALIAS, port: endpoint.port, user: endpoint.user, database: endpoint.database } };
  } else {
    const tree = await raceAbort(run.driver.treeAccess!(run.sandbox!, ctx, r), run.ctl.signal);
    access = { values: { 'files.path': tree.path }, secrets: [], volumesFrom: tree.volumesFrom, defaultUser: tree.defaultUser };
    seen = { tree: { path: tree.path, readOnly: true } };
  }
  run.group = new ServiceGroup({
    docker: deps.docker, clock: deps.clock, log: run.log, pull: deps.config.sandbox.pull, probeImage: deps.config.sandbox.probeImage,
    allowedImages: run.policy.allowedImages, run: { instance: deps.config.instance, runId: run.id, planId: run.planId, tenantId: run.tenantId },
    network: run.network.name, services: plan.services!, access, signal: run.ctl.signal,
    limits: { memoryBytes: limits.memoryBytes, cpus: limits.cpus, pids: limits.pids },
  });
  const g = await raceAbort(run.group.run(), run.ctl.signal);
  run.ctl.check();
  run.serviceLogs = g.logs;
  phase.steps = g.services.map((s) => ({ name: s.name, startedAt: s.startedAt, startMs: s.startMs, probeMs: s.probeMs, status: s.status }));
  o.servicesEnd = g.healthyAt ?? null;
  o.restore = {
    ...o.restore,
    services: g.services,
    serviceRtoSeconds: g.healthyAt === undefined ? null : Math.round((g.healthyAt - o.testStartMono) / 100) / 10,
    ...seen,
  };
  o.findings.push(...g.findings);
  if (g.findings.length) throw new Stop();
}

// ---- teardown, on every path: the restored (personal) data must be gone
async function teardown(deps: EngineDeps, run: Run): Promise<void> {
  const sandbox = run.sandbox;
  // an application group's containers first: the network can go only when nothing is attached to it
  const groupIds = run.group?.ids ?? [];
  await run.group?.destroy();
  if (sandbox) await sandbox.destroy();
  if (run.network) await removeRunNetwork(deps.docker, run.network.id);
  if (!sandbox && !run.network) return;
  // proof that the restored data is gone: the engine no longer knows the container (nor its data area), nor the group's
  const missing = async (id: string) => deps.docker.getContainer(id).inspect().then(() => false, (e: { statusCode?: number }) => e.statusCode === 404);
  const left = [];
  for (const id of [...(sandbox ? [sandbox.id] : []), ...groupIds]) if (!(await missing(id))) left.push(id);
  const networkLeft = run.network ? await networkExists(deps.docker, run.network.id) : false;
  const gone = left.length === 0 && !networkLeft;
  if (run.o.sandbox) run.o.sandbox.teardown = { removedAt: deps.clock().toISOString(), verified: gone, ...(run.group && { containers: groupIds.length + 1 }), ...(run.network && { networkRemoved: !networkLeft }) };
  if (left.length) throw new Error(`container(s) ${left.join(', ')} still exist after removal`);
  if (networkLeft) throw new Error(`network ${run.network!.name} still exists after removal`);
}

/** A phase threw: name the cause as a finding (a stop's reason is recorded by concludeRun). */
async function recordFailure(deps: EngineDeps, run: Run, err: unknown): Promise<void> {
  const { o } = run;
  if (err instanceof Stop || err instanceof Aborted || run.ctl.stopped) return; // recorded already, or a stop (an exec torn down by it throws)
  if (err instanceof SourceError || err instanceof DumpInspectError || err instanceof ImageError) {
    o.findings.push(finding(err.code, err.message));
    return;
  }
  if (isDatabaseUnavailable(err, databasePort(deps.config))) {
    // ernstfall's own database, not the engine (both refuse with ECONNREFUSED): name the one that was away
    o.findings.push(finding('DATABASE_UNAVAILABLE', `ernstfall's database could not be reached during the test (${(err as { code?: string }).code ?? (err as Error).message.slice(0, 100)}): the test could not read what it compares with; nothing about the backup was decided`));
    run.log.warn({ err: (err as Error).message }, 'the database was unreachable during the test');
    return;
  }
  if (isEngineUnavailable(err) || !(await deps.docker.ping().then(() => true, () => false))) {
    o.findings.push(finding('ENGINE_UNAVAILABLE', `the Docker engine could not be reached (${(err as { code?: string }).code ?? (err as Error).message.slice(0, 100)}); nothing about the backup was learned`));
    return;
  }
  if (err instanceof SandboxError) {
    o.findings.push(finding('SANDBOX_FAILED', err.message));
    return;
  }
  const e = err as Error;
  o.findings.push(finding('INTERNAL_ERROR', `unexpected error: ${e.message.slice(0, 200)}`));
  run.log.error({ err: e.message, stack: e.stack }, 'restore test failed unexpectedly');
}

/** The port of ernstfall's database, to tell its connection errors from the Docker engine's. */
export function databasePort(config: Pick<Config, 'database'>): number | undefined {
  try {
    return Number(new URL(config.database.url).port || 5432);
  } catch {
    return undefined;
  }
}

async function freeDiskBytes(sandbox: Sandbox): Promise<number | null> {
  const r = await sandbox.exec(['df', '-Pk', '--', sandbox.dataDir]);
  if (r.exitCode !== 0) return null;
  const avail = r.stdout.split('\n').slice(1).filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[3]) * 1024);
  return avail.length ? Math.min(...avail) : null;
}

