/**
 * `npm run bench:evidence [-- --runs N] [--warmup N] [--reseed] [--write]`
 * `npm run bench:evidence -- --drop`
 *
 * How long the audit report for one tenant and one year takes, and how long
 * verifying that tenant's evidence chain takes, with 20 plans tested daily
 * through 2025 (7,300 runs, each ended through the real RunFinisher, so the
 * ledger holds exactly what production writes). Targets: the report (build +
 * PDF) in at most 5 s and 300 MB peak memory; verifying the chain in at most
 * 2 s. A benchmark measures speed; it is not a test.
 *
 * --runs N    measured iterations of each measurement (default 5)
 * --warmup N  unmeasured iterations before that (default 1)
 * --reseed    drop the cached bench database and seed it again
 * --drop      drop the bench database and its keys/checkpoints, then exit
 * --write     put the result into docs/BENCHMARKS.md ("## Evidence: audit report and chain verification")
 *
 * The seeded database `ernstfall_bench_evidence` and its signing key,
 * trusted-keys folder and checkpoint file (`.ernstfall/bench/evidence/`) are
 * kept between runs: seeding takes a while and is not what is measured.
 *
 * Exit 0: targets met; 1: a target missed; 2: the benchmark could not measure.
 */
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../../services/config.js';
import { createLogger } from '../../services/logger.js';
import { createContainer, type Container } from '../../services/container.js';
import { DEFAULT_TENANT_ID, type Verdict } from '../../db/schema.js';
import { verifyChain } from '../../services/evidence/verify.js';
import type { buildAuditData } from '../../services/reports/audit-data.js';
import { renderAuditReportPdf } from '../../services/reports/audit-report.pdf.js';
import { finding, type Finding } from '../../services/findings.js';
import { concludeRun } from '../../workers/engine/run-outcome.js';
import type { Phase } from '../../workers/engine/phases.js';
import { runChecks, sqlCheckRunner, type CheckResult } from '../../workers/checks/checks.js';
import type { PostgresRestore, RestorePlan } from '../../services/plans/plan.types.js';
import type { RunResult } from '../../db/repositories/run.repository.js';
import { databaseEnv, namedDatabase, ownerQuery, withDb } from '../helpers/db.js';
import { testConfig } from '../helpers/config.js';

const run = promisify(execFile);

const BENCH_DB = 'ernstfall_bench_evidence';
const TENANT = DEFAULT_TENANT_ID;
const YEAR_FROM = new Date('2025-01-01T00:00:00Z');
const YEAR_TO = new Date('2026-01-01T00:00:00Z');
const DAYS = 365;
const EXPECTED_RUNS = 7300;
const TARGET_REPORT_MS = 5000;
const TARGET_REPORT_MB = 300;
const TARGET_VERIFY_MS = 2000;
const CHILD_RUNS = 3;
const SAMPLE_MS = 20;
const CHILD_MARKER = 'EVIDENCE_BENCH_CHILD ';
const SECTION = '## Evidence: audit report and chain verification';
const THIS_FILE = fileURLToPath(import.meta.url);

class BenchError extends Error {}

// ---------------------------------------------------------------- arguments

interface Args { runs: number; warmup: number; reseed: boolean; drop: boolean; write: boolean; child?: string }

function parseArgs(argv: string[]): Args {
  const a = benchArgs(argv, { numbers: { runs: 1, warmup: 0 }, switches: ['reseed', 'drop', 'write'], strings: ['child'] }, (m) => new BenchError(m));
  return {
    runs: (a.runs as number | undefined) ?? 5, warmup: (a.warmup as number | undefined) ?? 1,
    reseed: a.reseed === true, drop: a.drop === true, write: a.write === true, child: a.child as string | undefined,
  };
}

// ---------------------------------------------------------------- helpers

let interrupted = false;
const checkInterrupted = () => {
  if (interrupted) throw new BenchError('interrupted');
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ms = (x: number) => `${Math.round(x).toLocaleString('en')} ms`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
const sec = (x: number) => `${(x / 1000).toFixed(1)} s`;

/** Deterministic pseudo-random numbers (mulberry32): the same history on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (s: string, len = 64) => createHash('sha256').update(s).digest('hex').slice(0, len);
/** A UUID derived from a string, so a reseed writes the same ids. */
const uuidOf = (s: string) => {
  const h = hex(s, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16]!, 16) % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

// ---------------------------------------------------------------- environment

interface Env { ownerUrl: string; appUrl: string; stateDir: string; cacheDir: string }

function benchEnv(): Env {
  const { ownerUrl, appUrl } = databaseEnv();
  const stateDir = process.env.ERNSTFALL_STATE_DIR ?? join(repoRoot, '.ernstfall');
  return { ownerUrl, appUrl, stateDir, cacheDir: join(stateDir, 'bench', 'evidence') };
}

/** The bench's key (testConfig makes it there), never the installation's. */
const keyFile = (e: Env) => join(e.cacheDir, 'signing-key.pem');

/**
 * The service's own container on the bench database, configured as the tests' is (tests/helpers/config.ts):
 * the bench's own key, trusted keys and checkpoints in `<state>/bench/evidence`, never the installation's
 * `<state>/keys` or `<state>/checkpoints`.
 */
function benchContainer(e: Env): Container {
  const config = testConfig({
    databaseUrl: withDb(e.appUrl, BENCH_DB),
    backupRoot: join(e.cacheDir, 'no-backups'),
    evidenceDir: e.cacheDir,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ERNSTFALL_QUEUE_PREFIX: 'efbench-evidence', ERNSTFALL_INSTANCE: 'bench-evidence' },
  });
  return createContainer(config, createLogger(config.logLevel));
}

async function dropBench(e: Env): Promise<void> {
  await ownerQuery(e.ownerUrl, `drop database if exists ${BENCH_DB} with (force)`);
  await rm(e.cacheDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- the history

interface PlanSpec {
  id: string; title: string; system: string; process: string; need: 'normal' | 'hoch' | 'sehr hoch'; rto: string;
  /** typical restore duration in seconds */ base: number;
  main: [table: string, min: number]; second: [table: string, min: number];
}

/** Twenty systems of a municipal IT department; restore durations and row counts of a realistic order. */
const PLANS: PlanSpec[] = [
  { id: 'ewo-meldewesen', title: 'Einwohnermeldewesen', system: 'OK.EWO', process: 'Meldewesen', need: 'hoch', rto: '30m', base: 260, main: ['einwohner', 50_000], second: ['meldung', 20_000] },
  { id: 'finanzbuchhaltung', title: 'Finanzbuchhaltung (Doppik)', system: 'Finanzwesen', process: 'Haushalt und Kasse', need: 'hoch', rto: '1h', base: 620, main: ['buchung', 1_000_000], second: ['konto', 1200] },
  { id: 'personalwesen', title: 'Personalwesen und Bezügeabrechnung', system: 'Personal', process: 'Lohn und Gehalt', need: 'sehr hoch', rto: '1h', base: 480, main: ['mitarbeiter', 800], second: ['abrechnung', 90_000] },
  { id: 'dokumentenmanagement', title: 'Dokumentenmanagement', system: 'DMS', process: 'Schriftgutverwaltung', need: 'hoch', rto: '4h', base: 1500, main: ['dokument', 2_000_000], second: ['akte', 150_000] },
  { id: 'ratsinformation', title: 'Ratsinformationssystem', system: 'RIS', process: 'Gremienarbeit', need: 'normal', rto: '2h', base: 180, main: ['vorlage', 20_000], second: ['sitzung', 1500] },
  { id: 'kfz-zulassung', title: 'Kfz-Zulassung', system: 'Zulassung', process: 'Zulassungsstelle', need: 'hoch', rto: '30m', base: 300, main: ['fahrzeug', 120_000], second: ['halter', 90_000] },
  { id: 'gewerberegister', title: 'Gewerberegister', system: 'Gewerbe', process: 'Gewerbeamt', need: 'normal', rto: '2h', base: 120, main: ['betrieb', 8000], second: ['anzeige', 25_000] },
  { id: 'personenstand', title: 'Personenstandsregister', system: 'Standesamt', process: 'Personenstandswesen', need: 'sehr hoch', rto: '1h', base: 200, main: ['beurkundung', 60_000], second: ['person', 150_000] },
  { id: 'bauantrag', title: 'Bauantragsverfahren', system: 'Bauaufsicht', process: 'Baugenehmigung', need: 'normal', rto: '4h', base: 420, main: ['antrag', 30_000], second: ['beteiligung', 90_000] },
  { id: 'zeiterfassung', title: 'Zeiterfassung', system: 'Zeitwirtschaft', process: 'Arbeitszeit', need: 'normal', rto: '4h', base: 150, main: ['zeitbuchung', 2_500_000], second: ['mitarbeiter', 800] },
  { id: 'kita-verwaltung', title: 'Kita-Verwaltung', system: 'Kita', process: 'Kinderbetreuung', need: 'hoch', rto: '2h', base: 90, main: ['kind', 4000], second: ['vertrag', 4500] },
  { id: 'friedhofsverwaltung', title: 'Friedhofsverwaltung', system: 'Friedhof', process: 'Friedhofswesen', need: 'normal', rto: '8h', base: 60, main: ['grabstelle', 12_000], second: ['nutzungsrecht', 15_000] },
  { id: 'steuern-abgaben', title: 'Steuern und Abgaben', system: 'Veranlagung', process: 'Steueramt', need: 'hoch', rto: '1h', base: 540, main: ['bescheid', 400_000], second: ['steuerpflichtiger', 45_000] },
  { id: 'it-servicedesk', title: 'IT-Servicedesk (Tickets)', system: 'Servicedesk', process: 'IT-Betrieb', need: 'normal', rto: '4h', base: 110, main: ['ticket', 80_000], second: ['kommentar', 300_000] },
  { id: 'geoinformation', title: 'Geoinformationssystem', system: 'GIS', process: 'Geodatenmanagement', need: 'normal', rto: '8h', base: 1900, main: ['flurstueck', 60_000], second: ['gebaeude', 40_000] },
  { id: 'stadtbibliothek', title: 'Stadtbibliothek', system: 'Bibliothek', process: 'Ausleihe', need: 'normal', rto: '8h', base: 140, main: ['medium', 90_000], second: ['ausleihe', 500_000] },
  { id: 'schulverwaltung', title: 'Schulverwaltung', system: 'Schule', process: 'Schulamt', need: 'hoch', rto: '2h', base: 210, main: ['schueler', 9000], second: ['klasse', 400] },
  { id: 'wohngeld', title: 'Wohngeld', system: 'Wohngeld', process: 'Sozialleistungen', need: 'hoch', rto: '1h', base: 170, main: ['antrag', 6000], second: ['bescheid', 12_000] },
  { id: 'vergabemanagement', title: 'Vergabemanagement', system: 'Vergabe', process: 'Beschaffung', need: 'normal', rto: '4h', base: 95, main: ['verfahren', 3000], second: ['angebot', 14_000] },
  { id: 'e-akte-posteingang', title: 'E-Akte und Posteingang', system: 'E-Akte', process: 'Posteingang', need: 'hoch', rto: '2h', base: 700, main: ['eingang', 900_000], second: ['vorgang', 120_000] },
];

function planJson(p: PlanSpec) {
  return {
    id: p.id,
    title: p.title,
    system: { name: p.system, process: p.process, protectionNeed: p.need },
    targets: { rto: p.rto, rpo: '26h' },
    cadence: { schedule: '0 1 * * *', timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' },
    source: { type: 'file', path: p.id, match: `${p.id}-*.dump`, select: 'newest' },
    restore: { driver: 'postgres', database: p.id.replace(/-/g, '_') },
    sandbox: { network: 'none', memory: '2g', cpus: 2, timeout: '6h' },
    checks: [
      { name: `${p.main[0]} vorhanden`, sql: `select count(*) from ${p.main[0]}`, expect: `>= ${p.main[1]}` },
      { tableRows: { table: p.second[0], min: p.second[1] } },
      { tableExists: { table: 'public.ef_canary' } },
    ],
    controls: ['BSI-CON.3.A15', 'ISO27001-A.8.13'],
  };
}

type Outcome = 'passed' | 'check-failed' | 'rto-exceeded' | 'sandbox-failed' | 'source-missing' | 'cancelled';

/**
 * Eight plans pass every day (they are "tested in time" all year); the other
 * twelve miss now and then: ~90 % passed overall, ~5 % failed, ~4 % error,
 * ~1 % cancelled.
 */
const STABLE = (planIndex: number) => planIndex % 5 === 1 || planIndex % 5 === 3;
const UNSTABLE_RATE = 0.1 * PLANS.length / PLANS.filter((_, i) => !STABLE(i)).length;

function pickOutcome(planIndex: number, r: number): Outcome {
  if (STABLE(planIndex) || r >= UNSTABLE_RATE) return 'passed';
  const x = r / UNSTABLE_RATE;
  if (x < 0.35) return 'check-failed';
  if (x < 0.5) return 'rto-exceeded';
  if (x < 0.75) return 'sandbox-failed';
  if (x < 0.9) return 'source-missing';
  return 'cancelled';
}

interface SeedItem {
  planIndex: number;
  day: number;
  slot: Date;
  queuedAt: Date;
  startedAt: Date;
  finishedAt: Date;
  verdict: Verdict;
  result: RunResult & { verdict: Verdict };
}

/**
 * What the worker would have written for this run (workers/engine/pipeline.ts), ended by the same rule (concludeRun):
 * five phases, the plan's three checks evaluated by the real check code,
 * findings, RTO/RPO, backup, sandbox and restore details.
 */
async function planRun(p: PlanSpec, plan: RestorePlan, planIndex: number, day: number, rand: () => number): Promise<SeedItem> {
  const outcome = pickOutcome(planIndex, rand());
  // 01:00 Europe/Berlin in winter, staggered by plan so they do not all start at once
  const slot = new Date(YEAR_FROM.getTime() + day * 86_400_000 + planIndex * 6 * 60_000);
  const queuedAt = new Date(slot.getTime() + 150 + Math.floor(rand() * 900));
  const startedAt = new Date(queuedAt.getTime() + 300 + Math.floor(rand() * 2500));
  const backupAt = new Date(slot.getTime() - (2 * 3600 + rand() * 3 * 3600) * 1000);
  const findings: Finding[] = [];
  const restoreMs = outcome === 'rto-exceeded'
    ? Math.round(plan.targets.rtoSeconds * (1.05 + rand() * 0.3) * 1000)
    : Math.round(p.base * (0.85 + rand() * 0.3) * 1000);
  const durations = { fetch: 400 + Math.round(rand() * 3000), provision: 2500 + Math.round(rand() * 3000), restore: restoreMs, verify: 200 + Math.round(rand() * 1500), teardown: 400 + Math.round(rand() * 600) };
  const phases: Phase[] = [];
  let t = startedAt.getTime();
  const phase = (name: keyof typeof durations, status: 'ok' | 'failed' | 'skipped' | 'interrupted') => {
    const d = status === 'skipped' ? 0 : status === 'failed' || status === 'interrupted' ? Math.round(durations[name] / 3) : durations[name];
    phases.push({ name, startedAt: new Date(t).toISOString(), durationMs: d, status });
    t += d;
  };
  const dumpName = `${p.id}-${backupAt.toISOString().slice(0, 10)}.dump`;
  const sizeBytes = Math.round(p.base * 2.2e6 * (1 + day / 2000));
  let backup: Record<string, unknown> | null = {
    path: `${p.id}/${dumpName}`, sizeBytes, sha256: hex(`${p.id}/${day}`), createdAt: backupAt.toISOString(), createdAtSource: 'header',
    format: 'custom', dumpVersion: '1.15-0', serverVersion: '15.8', archiveVersion: '1.15-0', compression: 'gzip',
  };
  const containerId = hex(`container ${p.id} ${day}`);
  let sandbox: Record<string, unknown> | null = {
    image: 'ernstfall/sandbox-postgres:15', imageId: `sha256:${hex('sandbox-postgres:15')}`, repoDigests: [], postgresMajor: 15,
    network: 'none', user: 'postgres', capDrop: ['ALL'], capAdd: [], noNewPrivileges: true, readOnlyRootfs: true,
    memoryBytes: plan.sandbox!.memoryBytes, cpus: plan.sandbox!.cpus, pids: plan.sandbox!.pids, transfer: 'copy', backupMount: 'read-only',
    containerId, freeDiskBytes: 48_000_000_000 + Math.round(rand() * 4e9),
  };
  let restore: Record<string, unknown> | null = null;
  let checks: CheckResult[] = [];
  let restored = false;
  let verifyEnd: number | null = null;
  const rows = (min: number, ok: boolean) => String(ok ? Math.round(min * (1.02 + day / 3000 + rand() * 0.05)) : Math.round(min * 0.4));

  if (outcome === 'source-missing') {
    phase('fetch', 'failed');
    findings.push(finding('SOURCE_NOT_FOUND', `no file matching ${p.id}-*.dump in ${p.id}`));
    backup = null;
    sandbox = null;
    for (const n of ['provision', 'restore', 'verify'] as const) phase(n, 'skipped');
    phase('teardown', 'ok');
  } else if (outcome === 'sandbox-failed') {
    phase('fetch', 'ok');
    phase('provision', 'failed');
    findings.push(finding('SANDBOX_FAILED', 'PostgreSQL in the sandbox did not become ready within 120 s'));
    phase('restore', 'skipped');
    phase('verify', 'skipped');
    phase('teardown', 'ok');
  } else if (outcome === 'cancelled') {
    phase('fetch', 'ok');
    phase('provision', 'ok');
    phase('restore', 'interrupted');
    phase('verify', 'skipped');
    phase('teardown', 'ok');
  } else {
    phase('fetch', 'ok');
    phase('provision', 'ok');
    phase('restore', 'ok');
    restored = true;
    if (planIndex % 4 === 0) findings.push(finding('ROLES_CREATED', '2 role(s) the dump references were created in the sandbox (without login)'));
    restore = { tool: { name: 'pg_restore', exitCode: 0, stderrLines: 0 }, tables: 40 + planIndex * 7, nonEmptyTables: 31 + planIndex * 5, database: (plan.restore as PostgresRestore).database };
    const failSecond = outcome === 'check-failed';
    const values = new Map<string, string>([
      [`select count(*) from ${p.main[0]}`, rows(p.main[1], true)],
      [`select count(*) from "${p.second[0]}"`, rows(p.second[1], !failSecond)],
    ]);
    checks = await runChecks(plan.checks, sqlCheckRunner(async (sql) => ({ ok: true, value: sql.startsWith('select to_regclass') ? 't' : values.get(sql) ?? null })));
    phase('verify', 'ok');
    verifyEnd = t;
    phase('teardown', 'ok');
    const failed = checks.filter((c) => c.status === 'failed');
    if (failed.length) findings.push(finding('CHECK_FAILED', `${failed.length} of ${checks.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`));
  }
  if (sandbox) sandbox.teardown = { removedAt: new Date(t).toISOString(), verified: true };
  const finishedAt = new Date(t);
  const end = concludeRun({
    phases, findings, checks, backup, sandbox, restore, restored, verifyEnd,
    testStart: startedAt.getTime(), testStartMono: startedAt.getTime(), backupCreatedAt: backup ? backupAt : null, stopped: outcome === 'cancelled' ? 'cancelled' : undefined,
  }, plan, finishedAt);
  return {
    planIndex, day, slot, queuedAt, startedAt, finishedAt, verdict: end.verdict,
    result: { verdict: end.verdict, finishedAt, phases: end.phases, checks: end.checks, findings: end.findings, rto: end.rto, rpo: end.rpo, backup, sandbox, restore },
  };
}

// ---------------------------------------------------------------- seeding

interface SeedInfo { seededNow: boolean; seedMs: number | null; records: number; verdicts: Record<string, number>; canonicalBytes: number }

async function countRunRecords(e: Env): Promise<{ runs: number; all: number; bytes: number } | null> {
  const exists = await ownerQuery<{ n: number }>(e.ownerUrl, 'select count(*)::int as n from pg_database where datname = $1', [BENCH_DB]);
  if (!exists[0]?.n) return null;
  const r = await ownerQuery<{ runs: number; all: number; bytes: string }>(withDb(e.ownerUrl, BENCH_DB),
    `select count(*) filter (where kind = 'run')::int as runs, count(*)::int as all, coalesce(sum(octet_length(canonical)), 0)::text as bytes
       from ledger_records where tenant_id = $1`, [TENANT]).catch(() => null);
  return r?.[0] ? { runs: r[0].runs, all: r[0].all, bytes: Number(r[0].bytes) } : { runs: 0, all: 0, bytes: 0 };
}

async function verdictCounts(c: Container): Promise<Record<string, number>> {
  const rows = await c.db.selectFrom('runs').select(['verdict']).select((eb) => eb.fn.countAll<number>().as('n')).where('tenant_id', '=', TENANT).groupBy('verdict').execute();
  return Object.fromEntries(rows.map((r) => [r.verdict ?? 'none', Number(r.n)]));
}

/**
 * The cached database is used when it holds exactly the 7,300 run records
 * and the key and checkpoints it was signed with are still there; anything
 * else (an interrupted seeding, a lost key) is seeded again from scratch.
 */
async function ensureSeeded(e: Env, reseed: boolean): Promise<{ fresh: boolean; seedMs: number | null }> {
  const have = await countRunRecords(e);
  const keysKept = existsSync(keyFile(e)) && existsSync(join(e.cacheDir, 'checkpoints', `${TENANT}.jsonl`));
  if (!reseed && have && have.runs === EXPECTED_RUNS && have.all === EXPECTED_RUNS && keysKept) {
    console.log(`seed: cached ${BENCH_DB} has ${have.runs.toLocaleString('en')} run records (--reseed to seed again)`);
    await (await namedDatabase(BENCH_DB)).close(); // brought to the newest schema
    return { fresh: false, seedMs: null };
  }
  if (have) console.log(reseed ? 'seed: --reseed: dropping the cached bench database' : `seed: cached ${BENCH_DB} is incomplete (${have.runs} run records${keysKept ? '' : ', key or checkpoints missing'}); seeding again`);
  await rm(e.cacheDir, { recursive: true, force: true });
  await (await namedDatabase(BENCH_DB, { fresh: true })).close();
  await mkdir(e.cacheDir, { recursive: true });
  return { fresh: true, seedMs: null };
}

async function seed(c: Container, e: Env): Promise<number> {
  const t0 = performance.now();
  const plans: RestorePlan[] = [];
  for (const p of PLANS) {
    const { row } = await c.plans.put(TENANT, p.id, JSON.stringify(planJson(p)), 'json');
    plans.push(row.definition as RestorePlan);
  }
  // the plans were put into service the day before the year (not today, after their history), so "tested in time" judges the whole year
  await ownerQuery(withDb(e.ownerUrl, BENCH_DB), `update plans set created_at = '2024-12-31T12:00:00Z', updated_at = '2024-12-31T12:00:00Z' where tenant_id = $1`, [TENANT]);
  const versions = new Map((await c.db.selectFrom('plans').select(['id', 'version_hash']).where('tenant_id', '=', TENANT).execute()).map((r) => [r.id, r.version_hash]));

  const rand = rng(20250101);
  const items: SeedItem[] = [];
  for (let day = 0; day < DAYS; day++) {
    for (let i = 0; i < PLANS.length; i++) items.push(await planRun(PLANS[i]!, plans[i]!, i, day, rand));
  }
  // finished in the order they ended, as the worker would have: the chain is in time order
  items.sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime());

  let done = 0;
  let lastPrint = performance.now();
  for (const it of items) {
    checkInterrupted();
    const p = PLANS[it.planIndex]!;
    const id = uuidOf(`${p.id}/${it.day}`);
    await c.db.insertInto('runs').values({
      id, tenant_id: TENANT, plan_id: p.id, plan_version_hash: versions.get(p.id)!, status: 'running', trigger: 'schedule',
      triggered_by: 'scheduler', slot: it.slot, queued_at: it.queuedAt, started_at: it.startedAt, heartbeat_at: it.startedAt, worker_id: 'bench-seed', attempts: 1,
    }).execute();
    const row = await c.finisher.finishClaimed(id, 'bench-seed', it.result);
    if (!row) throw new BenchError(`run ${id} could not be finished`);
    done++;
    if (performance.now() - lastPrint > 5000) {
      lastPrint = performance.now();
      console.log(`seed: ${done.toLocaleString('en')} / ${items.length.toLocaleString('en')} runs (${sec(lastPrint - t0)})`);
    }
  }
  return performance.now() - t0;
}

// ---------------------------------------------------------------- measurements

interface ReportSample { buildMs: number; renderMs: number; totalMs: number; pdfBytes: number; pages: number }

const period = { from: YEAR_FROM, to: YEAR_TO };
const pageCount = (pdf: Buffer) => (pdf.toString('latin1').match(/\/Type \/Page\b/g) ?? []).length;

async function reportOnce(c: Container): Promise<{ sample: ReportSample; data: Awaited<ReturnType<typeof buildAuditData>> }> {
  const t0 = performance.now();
  const data = await c.reports.audit(TENANT, period, 'de', c.clock());
  const t1 = performance.now();
  const pdf = await renderAuditReportPdf(data);
  const t2 = performance.now();
  return { sample: { buildMs: t1 - t0, renderMs: t2 - t1, totalMs: t2 - t0, pdfBytes: pdf.length, pages: pageCount(pdf) }, data };
}

interface VerifySample { verifyMs: number; listMs: number; chainMs: number }

async function verifyOnce(c: Container): Promise<VerifySample> {
  const t0 = performance.now();
  const res = await c.ledger.verify(TENANT, { full: true });
  const verifyMs = performance.now() - t0;
  if (!res.ok) throw new BenchError(`the bench chain does not verify: seq ${res.firstBroken?.seq} ${res.firstBroken?.reason}: ${res.firstBroken?.message} (try --reseed)`);
  const t1 = performance.now();
  const records = await c.ledger.repo.list(TENANT);
  const listMs = performance.now() - t1;
  const opts = { trustedKeys: c.ledger.trusted(), checkpoints: c.ledger.checkpoints(TENANT), tenantId: TENANT };
  const t2 = performance.now();
  const again = verifyChain(records, opts);
  const chainMs = performance.now() - t2;
  if (!again.ok) throw new BenchError('verifyChain disagrees with ledger.verify');
  return { verifyMs, listMs, chainMs };
}

interface ChildResult { peakRssBytes: number; maxRssBytes: number; sampledPeakBytes: number; baselineRssBytes: number; totalMs: number; samples: number }

/** In a process of its own: one report, its peak resident memory (the seeding's memory does not count). */
async function childReport(): Promise<number> {
  const e = benchEnv();
  const c = benchContainer(e);
  try {
    // the connection and the modules are loaded before the baseline, as in a running server
    await c.db.selectFrom('tenants').select('id').limit(1).execute();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let samples = 0;
    const timer = setInterval(() => {
      samples++;
      const r = process.memoryUsage().rss;
      if (r > peak) peak = r;
    }, SAMPLE_MS);
    const t0 = performance.now();
    const data = await c.reports.audit(TENANT, period, 'de', c.clock());
    const pdf = await renderAuditReportPdf(data);
    const totalMs = performance.now() - t0;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    if (!pdf.length || data.summary.runs !== EXPECTED_RUNS) throw new BenchError(`child: unexpected report (${data.summary.runs} runs)`);
    // maxRSS: the kernel's high-water mark in KiB, including moments the 20 ms sampler could not see (synchronous work blocks timers)
    const maxRssBytes = process.resourceUsage().maxRSS * 1024;
    const out: ChildResult = { peakRssBytes: Math.max(peak, maxRssBytes), maxRssBytes, sampledPeakBytes: peak, baselineRssBytes: baseline, totalMs, samples };
    process.stdout.write(`${CHILD_MARKER}${JSON.stringify(out)}\n`);
    return 0;
  } finally {
    await c.close();
  }
}

function spawnChild(): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', THIS_FILE, '--child', 'report'], { cwd: repoRoot, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(CHILD_MARKER));
      if (code !== 0 || !line) return reject(new BenchError(`memory child exited ${code}: ${(err || out).trim().slice(-800)}`));
      resolve(JSON.parse(line.slice(CHILD_MARKER.length)) as ChildResult);
    });
  });
}

// ---------------------------------------------------------------- report

async function machineFacts(e: Env): Promise<Record<string, string>> {
  const get = async (cmd: string, args: string[]) => (await run(cmd, args)).stdout.trim();
  const mem = (await get('free', ['-g']).catch(() => '')).split('\n').find((l) => l.startsWith('Mem:'))?.split(/\s+/)[1] ?? `${Math.round(totalmem() / 2 ** 30)}`;
  const pgv = await ownerQuery<{ v: string }>(e.ownerUrl, `select current_setting('server_version') as v`).then((r) => r[0]?.v ?? '?', () => '?');
  return {
    cpus: `${await get('nproc', []).catch(() => String(cpus().length))} (${cpus()[0]?.model.trim() ?? 'unknown model'})`,
    memory: `${mem} GiB`,
    node: process.version,
    postgres: pgv,
    date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
  };
}

interface Result {
  runs: number;
  warmup: number;
  facts: Record<string, string>;
  seed: SeedInfo;
  report: ReportSample[];
  verify: VerifySample[];
  memory: ChildResult[];
  summary: { plans: number; plansTestedInTime: number; runs: number; passed: number; failed: number; errors: number; cancelled: number };
}

function report(r: Result): { markdown: string; met: boolean; misses: string[] } {
  const total = r.report.map((s) => s.totalMs);
  const verify = r.verify.map((s) => s.verifyMs);
  const peak = Math.max(...r.memory.map((m) => m.peakRssBytes));
  const reportMet = median(total) <= TARGET_REPORT_MS;
  const memMet = peak <= TARGET_REPORT_MB * 1e6;
  const verifyMet = median(verify) <= TARGET_VERIFY_MS;
  const misses: string[] = [];
  if (!reportMet) misses.push(`audit report median ${ms(median(total))} > ${ms(TARGET_REPORT_MS)}`);
  if (!memMet) misses.push(`audit report peak RSS ${mb(peak)} > ${TARGET_REPORT_MB} MB`);
  if (!verifyMet) misses.push(`chain verification median ${ms(median(verify))} > ${ms(TARGET_VERIFY_MS)}`);
  const yes = (b: boolean) => (b ? '**met**' : '**not met**');
  const row = (name: string, xs: number[], fmt: (x: number) => string, target: string) =>
    `| ${name} | ${xs.length} | ${fmt(Math.min(...xs))} | **${fmt(median(xs))}** | ${fmt(Math.max(...xs))} | ${target} |`;
  const v = r.seed.verdicts;
  const s = r.summary;
  const pdf = r.report[0]!;
  const lines = [
    SECTION,
    '',
    `Measured ${r.facts.date} with`,
    '',
    '```sh',
    `npm run bench:evidence -- ${r.runs !== 5 ? `--runs ${r.runs} ` : ''}${r.warmup !== 1 ? `--warmup ${r.warmup} ` : ''}--write`,
    '```',
    '',
    `- Machine (nproc, free -g, node): ${r.facts.cpus} CPUs, ${r.facts.memory} RAM, Node ${r.facts.node}; PostgreSQL ${r.facts.postgres} on the same host.`,
    `- Data: one tenant, ${PLANS.length} plans (\`requiredEvery: P1D\`, \`grace: PT6H\`, three checks each), one run per plan and day from 2025-01-01 to 2025-12-31 ` +
      `(${PLANS.filter((_, i) => STABLE(i)).length} plans pass every day, the others miss now and then): ` +
      `${r.seed.records.toLocaleString('en')} run records (${Object.entries(v).map(([k, n]) => `${n.toLocaleString('en')} ${k}`).join(', ')}), ` +
      `${(r.seed.canonicalBytes / 2 ** 20).toFixed(1)} MiB of canonical JSON, and as many checkpoints. Every run was ended through the real \`RunFinisher\` ` +
      '(running row, then `finishClaimed`), so each record has what the worker writes: five phases, three check results, findings, RTO/RPO, backup, sandbox and restore details. ' +
      `Cached in the database \`${BENCH_DB}\` and \`.ernstfall/bench/evidence/\` (key, trusted keys, checkpoints)` +
      `${r.seed.seedMs !== null ? `; seeding took ${sec(r.seed.seedMs)}${r.seed.seededNow ? '' : ' when the cache was built'} and is not measured` : ''}.`,
    `- **Audit report**: \`buildAuditData\` for 2025-01-01 – 2026-01-01 (reads the tenant's whole chain, verifies it, aggregates) + \`renderAuditReportPdf\`, in one process; ` +
      `the PDF has ${pdf.pages} pages, ${kib(pdf.pdfBytes)}. Result: ${s.plansTestedInTime} of ${s.plans} plans tested in time, ${s.runs.toLocaleString('en')} runs in the period.`,
    '- **Peak memory**: a separate process (`node --import tsx tests/bench/evidence.bench.ts --child report`) that connects, then builds and renders the report once; ' +
      `the peak is the larger of \`process.resourceUsage().maxRSS\` and \`process.memoryUsage().rss\` sampled every ${SAMPLE_MS} ms. ${r.memory.length} such processes.`,
    '- **Chain verification**: `ledger.verify(tenant, { full: true })` (the full check, not the incremental one the API uses: reads all records from the database, then `verifyChain` with the trusted keys and the checkpoint file); ' +
      '`verifyChain` alone is the same on records already in memory.',
    `- ${r.runs} measured iteration(s) of each, after ${r.warmup} unmeasured warm-up iteration(s), in one process.`,
    '',
    '| measurement | runs | min | median | max | target |',
    '|---|---:|---:|---:|---:|---|',
    row('Audit report: build + PDF', total, ms, `≤ ${ms(TARGET_REPORT_MS)}: ${yes(reportMet)}`),
    row('… of which `buildAuditData` (read, verify, aggregate)', r.report.map((x) => x.buildMs), ms, ''),
    row('… of which `renderAuditReportPdf`', r.report.map((x) => x.renderMs), ms, ''),
    row('Audit report: peak RSS (own process)', r.memory.map((m) => m.peakRssBytes), mb, `≤ ${TARGET_REPORT_MB} MB: ${yes(memMet)}`),
    row('… RSS before building (process + connection)', r.memory.map((m) => m.baselineRssBytes), mb, ''),
    row('Chain verification: `ledger.verify`', verify, ms, `≤ ${ms(TARGET_VERIFY_MS)}: ${yes(verifyMet)}`),
    row('… reading the records (`repo.list`)', r.verify.map((x) => x.listMs), ms, ''),
    row('`verifyChain` alone (records in memory)', r.verify.map((x) => x.chainMs), ms, ''),
    '',
    `**Targets: report ≤ 5 s — ${reportMet ? 'met' : 'not met'}; report ≤ 300 MB — ${memMet ? 'met' : 'not met'}; verification ≤ 2 s — ${verifyMet ? 'met' : 'not met'}.** ` +
      'Times are judged on the median, memory on the highest peak (MB = 10⁶ bytes).',
    '',
    '### How to read it',
    '',
    '- The report time is what an auditor waits for `GET /api/v1/reports/audit` for a full year, minus HTTP. It contains a full verification ' +
      'of the chain (the report states whether the evidence is intact), so it is never faster than the verification row.',
    '- Verification is dominated by one Ed25519 signature check and one SHA-256 per record; it grows linearly with the records of the ' +
      'tenant (all years, not only the report\'s period): a tenant with two years of history takes about twice as long for both rows. ' +
      'Reading the records is the database\'s share.',
    '- Peak RSS is the whole Node process: the "before building" row is the runtime, the modules and the connection pool; the difference ' +
      'is what one report costs. Two reports generated at once would need roughly that difference twice. The process runs under tsx, ' +
      'as the npm scripts do; its loader is about 35 MB of the baseline (an empty script: 43 MB with plain node, 77 MB with `--import tsx`).',
    '- Numbers from different machines are not comparable; rerun after changes to the ledger, the verification or the reports. ' +
      `\`--reseed\` seeds the history again; \`npm run bench:evidence -- --drop\` removes the database \`${BENCH_DB}\` and \`.ernstfall/bench/evidence/\`. ` +
      'A benchmark is not a test: `npm test` never runs it.',
    '',
  ];
  return { markdown: lines.join('\n'), met: misses.length === 0, misses };
}

const writeBenchmarks = (section: string): Promise<string> => writeBenchmarkSection(SECTION, section);

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child !== undefined) {
    if (args.child !== 'report') throw new BenchError(`unknown child mode ${args.child}`);
    return childReport();
  }
  const e = benchEnv();
  if (args.drop) {
    await dropBench(e);
    console.log(`dropped the database ${BENCH_DB} and ${e.cacheDir}`);
    return 0;
  }

  const prepared = await ensureSeeded(e, args.reseed);
  const c = benchContainer(e);
  try {
    await c.ledger.init();
    let seedMs: number | null = null;
    if (prepared.fresh) {
      console.log(`seed: ${PLANS.length} plans × ${DAYS} days = ${EXPECTED_RUNS.toLocaleString('en')} runs through RunFinisher …`);
      seedMs = await seed(c, e);
      console.log(`seed: done in ${sec(seedMs)}`);
      await writeFile(join(e.cacheDir, 'seed.json'), `${JSON.stringify({ seedMs, at: new Date().toISOString() })}\n`);
    } else {
      seedMs = await readFile(join(e.cacheDir, 'seed.json'), 'utf8').then((t) => (JSON.parse(t) as { seedMs: number }).seedMs, () => null);
    }
    const counted = await countRunRecords(e);
    if (!counted || counted.runs !== EXPECTED_RUNS) throw new BenchError(`expected ${EXPECTED_RUNS} run records, found ${counted?.runs ?? 0}`);
    const seedInfo: SeedInfo = { seededNow: prepared.fresh, seedMs, records: counted.runs, verdicts: await verdictCounts(c), canonicalBytes: counted.bytes };

    const reports: ReportSample[] = [];
    const verifies: VerifySample[] = [];
    let summary: Result['summary'] | undefined;
    const showReport = (label: string, s: ReportSample) =>
      console.log(`  ${label.padEnd(14)} report ${ms(s.totalMs).padStart(9)} (build ${ms(s.buildMs)}, pdf ${ms(s.renderMs)}, ${kib(s.pdfBytes)}, ${s.pages} pages)`);
    const showVerify = (label: string, s: VerifySample) =>
      console.log(`  ${label.padEnd(14)} verify ${ms(s.verifyMs).padStart(9)} (read ${ms(s.listMs)}, verifyChain alone ${ms(s.chainMs)})`);
    for (let i = 0; i < args.warmup; i++) {
      checkInterrupted();
      const { sample, data } = await reportOnce(c);
      if (!data.ledger.verified) throw new BenchError(`the report says the chain is broken: ${JSON.stringify(data.ledger.firstBroken)} (try --reseed)`);
      showReport(`warm-up ${i + 1}`, sample);
      showVerify(`warm-up ${i + 1}`, await verifyOnce(c));
    }
    for (let i = 0; i < args.runs; i++) {
      checkInterrupted();
      const { sample, data } = await reportOnce(c);
      if (!data.ledger.verified) throw new BenchError(`the report says the chain is broken: ${JSON.stringify(data.ledger.firstBroken)} (try --reseed)`);
      if (data.summary.runs !== EXPECTED_RUNS) throw new BenchError(`the report counts ${data.summary.runs} runs in 2025, expected ${EXPECTED_RUNS}`);
      summary ??= {
        plans: data.summary.plans, plansTestedInTime: data.summary.plansTestedInTime, runs: data.summary.runs, passed: data.summary.passed,
        failed: data.summary.failed, errors: data.summary.errors, cancelled: data.summary.cancelled,
      };
      reports.push(sample);
      showReport(`run ${i + 1}/${args.runs}`, sample);
      const v = await verifyOnce(c);
      verifies.push(v);
      showVerify(`run ${i + 1}/${args.runs}`, v);
    }

    const memory: ChildResult[] = [];
    for (let i = 0; i < CHILD_RUNS; i++) {
      checkInterrupted();
      const m = await spawnChild();
      memory.push(m);
      console.log(`  memory ${i + 1}/${CHILD_RUNS}     peak ${mb(m.peakRssBytes)} (maxRSS ${mb(m.maxRssBytes)}, sampled ${mb(m.sampledPeakBytes)} in ${m.samples} samples, before ${mb(m.baselineRssBytes)}, ${ms(m.totalMs)})`);
    }

    const result: Result = { runs: args.runs, warmup: args.warmup, facts: await machineFacts(e), seed: seedInfo, report: reports, verify: verifies, memory, summary: summary! };
    const { markdown, met, misses } = report(result);
    console.log(`\n${markdown}`);
    await mkdir(join(e.stateDir, 'bench'), { recursive: true });
    await writeFile(join(e.stateDir, 'bench', 'last-evidence-result.json'), `${JSON.stringify({ ...result, met, misses }, null, 2)}\n`);
    if (args.write) console.log(`written: ${await writeBenchmarks(markdown)}`);
    if (!met) {
      console.error(`bench:evidence: target missed: ${misses.join('; ')}`);
      return 1;
    }
    console.log('bench:evidence: targets met');
    return 0;
  } finally {
    await c.close();
  }
}

process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.error('bench:evidence: interrupted; stopping after the current step (Ctrl-C again to quit at once)');
});

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench:evidence: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
