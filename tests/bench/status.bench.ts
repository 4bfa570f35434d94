/**
 * `npx tsx tests/bench/status.bench.ts [--runs N] [--warmup N] [--reseed] [--write]`
 * `npx tsx tests/bench/status.bench.ts --drop`
 *
 * How long the status of 10,000 plans takes (issue 4: at most 1 s, one
 * set-based query): PlanStatusRepository.statusAll for one tenant with 10,000
 * plans and ~5 runs each (50,000 runs). Plans and runs are written by bulk
 * INSERT … SELECT generate_series, not through the finisher: this measures
 * the query, not the seeding. A benchmark measures speed; it is not a test.
 *
 * --runs N    measured calls (default 10; the median counts)
 * --warmup N  unmeasured calls before that (default 1)
 * --reseed    drop the cached bench database and seed it again
 * --drop      drop the bench database, then exit
 * --write     put the result into docs/BENCHMARKS.md ("## Plan status for 10,000 plans")
 *
 * The database `ernstfall_bench_status` is kept between runs.
 * Exit 0: target met; 1: target missed; 2: the benchmark could not measure.
 */
import { execFile } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { PlanStatusRepository } from '../../db/repositories/plan-status.repository.js';
import { planStatus } from '../../services/runs/plan-status.js';
import type { RestorePlan } from '../../services/plans/plan.types.js';
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';
import { pino } from 'pino';
import { ReminderEngine } from '../../services/notify/reminders.js';
import { databaseEnv, namedDatabase, ownerQuery, withDb, type NamedDatabase } from '../helpers/db.js';

const run = promisify(execFile);

const BENCH_DB = 'ernstfall_bench_status';
const TENANT = DEFAULT_TENANT_ID;
const PLANS = 10_000;
const RUNS_PER_PLAN = 5;
const TARGET_MS = 1000;
/** Plans whose status is also computed with planStatus() in JS and compared. */
const CROSS_CHECK = 1000;
/** The moment the statuses are evaluated at: the seeded history ends shortly before. */
const NOW = new Date('2026-11-28T12:00:00Z');
const SECTION = '## Plan status for 10,000 plans';

class BenchError extends Error {}

interface Args { runs: number; warmup: number; reseed: boolean; drop: boolean; write: boolean }

function parseArgs(argv: string[]): Args {
  const a = benchArgs(argv, { numbers: { runs: 1, warmup: 0 }, switches: ['reseed', 'drop', 'write'] }, (m) => new BenchError(m));
  return { runs: (a.runs as number | undefined) ?? 10, warmup: (a.warmup as number | undefined) ?? 1, reseed: a.reseed === true, drop: a.drop === true, write: a.write === true };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ms = (x: number) => `${Math.round(x).toLocaleString('en')} ms`;

interface Env { ownerUrl: string; appUrl: string }

async function counts(d: NamedDatabase): Promise<{ plans: number; runs: number; notify: number } | null> {
  if (!d.existed) return null;
  const rows = await d.owner<{ plans: number; runs: number; notify: number }>(
    `select (select count(*)::int from plans) as plans, (select count(*)::int from runs) as runs,
       (select count(*)::int from plans where definition ? 'notify') as notify`);
  return rows[0] ?? null;
}

/**
 * Five cadences in turn (P1D/PT6H, P7D/P1D, P3M/P7D, 36h/2h, none), plans
 * created through 2026, and per plan RUNS_PER_PLAN runs in the 40 days
 * before NOW: ~80 % passed, ~8 % failed, ~8 % error, ~4 % cancelled,
 * deterministic (hash of plan and run number).
 */
const SEED_SQL = `
insert into plans (tenant_id, id, title, origin, source_file, version_hash, definition, created_at, updated_at)
select '${TENANT}'::uuid, 'bench-' || lpad(i::text, 5, '0'), 'Bench plan ' || i, 'api', null, md5('v' || i),
  jsonb_build_object(
    'id', 'bench-' || lpad(i::text, 5, '0'), 'title', 'Bench plan ' || i,
    'targets', jsonb_build_object('rtoSeconds', 3600, 'rpoSeconds', 93600),
    'cadence', case i % 5
      when 0 then '{"schedule": "0 1 * * *", "timezone": "Europe/Berlin", "requiredEvery": "P1D", "grace": "PT6H"}'::jsonb
      when 1 then '{"timezone": "Europe/Berlin", "requiredEvery": "P7D", "grace": "P1D"}'::jsonb
      when 2 then '{"timezone": "Europe/Berlin", "requiredEvery": "P3M", "grace": "P7D"}'::jsonb
      when 3 then '{"timezone": "America/New_York", "requiredEvery": "36h", "grace": "2h"}'::jsonb
      else '{"timezone": "Europe/Berlin"}'::jsonb end,
    'source', jsonb_build_object('type', 'file', 'path', 'bench.dump'),
    'restore', jsonb_build_object('driver', 'postgres', 'database', 'app'),
    'sandbox', jsonb_build_object('network', 'none', 'memoryBytes', 1073741824, 'cpus', 1, 'pids', 512, 'timeoutSeconds', 7200),
    'checks', '[]'::jsonb, 'controls', '[]'::jsonb)
    || case when i % 2 = 0 then jsonb_build_object('notify', '{"failure": ["mail:it@bench.example"], "overdue": ["mail:it@bench.example"],
         "escalate": [{"after": "P2D", "to": ["mail:isb@bench.example"]}], "digest": ["mail:lead@bench.example"]}'::jsonb) else '{}'::jsonb end,
  timestamptz '2026-01-01 00:00:00+00' + (i % 300) * interval '1 day', timestamptz '2026-01-01 00:00:00+00'
from generate_series(1, ${PLANS}) i;

insert into plan_versions (tenant_id, plan_id, hash, definition, origin, source_file, created_at)
select tenant_id, id, version_hash, definition, origin, source_file, created_at from plans;

insert into runs (id, tenant_id, plan_id, plan_version_hash, status, verdict, trigger, triggered_by, queued_at, started_at, finished_at, worker_id, attempts)
select gen_random_uuid(), p.tenant_id, p.id, p.version_hash, 'finished',
  case when h < 80 then 'passed' when h < 88 then 'failed' when h < 96 then 'error' else 'cancelled' end,
  'schedule', 'scheduler', s, s + interval '2 seconds', s + interval '2 seconds' + (60 + h * 7) * interval '1 second', 'bench', 1
from plans p
cross join generate_series(1, ${RUNS_PER_PLAN}) k
cross join lateral (select abs(hashtext(p.id || '/' || k)) % 100 as h) hh
cross join lateral (select timestamptz '${NOW.toISOString()}' - (k * 8 + (abs(hashtext(p.id)) % 8)) * interval '1 day'
  + (abs(hashtext(p.id || k)) % 86400) * interval '1 second' as s) ss;

analyze plans; analyze plan_versions; analyze runs;`;

/** The cached database (the test harness's namedDatabase, migrated), seeded again when it does not hold exactly the bench's rows. */
async function ensureSeeded(reseed: boolean): Promise<{ database: NamedDatabase; seedMs: number | null }> {
  const cached = await namedDatabase(BENCH_DB, { poolSize: 2 });
  const have = await counts(cached);
  if (!reseed && have && have.plans === PLANS && have.runs === PLANS * RUNS_PER_PLAN && have.notify === PLANS / 2) {
    console.log(`seed: cached ${BENCH_DB} has ${have.plans.toLocaleString('en')} plans and ${have.runs.toLocaleString('en')} runs (--reseed to seed again)`);
    return { database: cached, seedMs: null };
  }
  await cached.close();
  const database = await namedDatabase(BENCH_DB, { fresh: true, poolSize: 2 });
  console.log(`seed: ${PLANS.toLocaleString('en')} plans × ${RUNS_PER_PLAN} runs by bulk INSERT …`);
  const t0 = performance.now();
  // constants only, no parameters: several statements in one call, one transaction
  await database.owner(`begin; ${SEED_SQL} commit;`);
  const seedMs = performance.now() - t0;
  console.log(`seed: done in ${ms(seedMs)}`);
  return { database, seedMs };
}

async function machineFacts(e: Env): Promise<Record<string, string>> {
  const mem = (await run('free', ['-g']).then((r) => r.stdout, () => '')).split('\n').find((l) => l.startsWith('Mem:'))?.split(/\s+/)[1]
    ?? `${Math.round(totalmem() / 2 ** 30)}`;
  const nproc = await run('nproc', []).then((r) => r.stdout.trim(), () => String(cpus().length));
  const pgv = await ownerQuery<{ v: string }>(e.ownerUrl, `select current_setting('server_version') as v`).then((r) => r[0]?.v ?? '?', () => '?');
  return {
    cpus: `${nproc} (${cpus()[0]?.model.trim() ?? 'unknown model'})`,
    memory: `${mem} GiB`,
    node: process.version,
    postgres: pgv,
    date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const e: Env = databaseEnv();
  if (args.drop) {
    await ownerQuery(e.ownerUrl, `drop database if exists ${BENCH_DB} with (force)`);
    console.log(`dropped the database ${BENCH_DB}`);
    return 0;
  }
  const seeded = await ensureSeeded(args.reseed);
  const db = seeded.database.db;
  try {
    const repo = new PlanStatusRepository(db);

    // the same answer as planStatus() in JS, or the timing means nothing
    const rows = await repo.statusAll(TENANT, NOW);
    if (rows.length !== PLANS) throw new BenchError(`statusAll returned ${rows.length} plans, expected ${PLANS}`);
    const sample = rows.slice(0, CROSS_CHECK);
    const ids = sample.map((r) => r.planId);
    const plans = await db.selectFrom('plans').select(['id', 'definition', 'created_at']).where('tenant_id', '=', TENANT).where('id', 'in', ids).execute();
    const runs = await db.selectFrom('runs').select(['plan_id', 'status', 'verdict', 'queued_at', 'started_at', 'finished_at'])
      .where('tenant_id', '=', TENANT).where('plan_id', 'in', ids).execute();
    const byId = new Map(plans.map((p) => [p.id, p]));
    const mismatches = sample.filter((r) => {
      const p = byId.get(r.planId)!;
      const j = planStatus(p.definition as RestorePlan, p.created_at, runs.filter((x) => x.plan_id === r.planId), NOW);
      return j.status !== r.status || Math.floor((j.nextDueAt?.getTime() ?? 0) / 1000) !== Math.floor((r.nextDueAt?.getTime() ?? 0) / 1000);
    });
    if (mismatches.length) throw new BenchError(`statusAll differs from planStatus() for ${mismatches.length} of ${CROSS_CHECK} plans, e.g. ${mismatches[0]!.planId}`);
    const statuses: Record<string, number> = {};
    for (const r of rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    console.log(`check: first ${CROSS_CHECK.toLocaleString('en')} plans equal planStatus() in JS; statuses ${JSON.stringify(statuses)}`);

    for (let i = 0; i < args.warmup; i++) {
      const t0 = performance.now();
      await repo.statusAll(TENANT, NOW);
      console.log(`  warm-up ${i + 1}      ${ms(performance.now() - t0).padStart(9)}`);
    }
    const times: number[] = [];
    for (let i = 0; i < args.runs; i++) {
      const t0 = performance.now();
      const r = await repo.statusAll(TENANT, NOW);
      times.push(performance.now() - t0);
      if (r.length !== PLANS) throw new BenchError(`statusAll returned ${r.length} plans`);
      console.log(`  run ${`${i + 1}/${args.runs}`.padEnd(9)} ${ms(times[i]!).padStart(9)}`);
    }
    const med = median(times);
    const met = med <= TARGET_MS;

    // the reminder tick over the same plans: the first one opens every alert (and writes its notifications),
    // the following ones find everything decided (the steady state of every minute)
    await ownerQuery(withDb(e.ownerUrl, BENCH_DB), 'delete from notifications; delete from alerts');
    const engine = new ReminderEngine(db, { lang: 'de', timezone: 'Europe/Berlin', digestTime: '07:00' }, pino({ level: 'silent' }));
    let t0 = performance.now();
    const first = await engine.evaluate(NOW);
    const firstMs = performance.now() - t0;
    const written = await ownerQuery<{ alerts: number; notifications: number }>(withDb(e.ownerUrl, BENCH_DB),
      'select (select count(*)::int from alerts) as alerts, (select count(*)::int from notifications) as notifications');
    console.log(`  reminders, first tick ${ms(firstMs).padStart(9)}  ${JSON.stringify(first)}`);
    // the next tick takes the escalation steps that were due already when the alerts opened
    t0 = performance.now();
    const second = await engine.evaluate(NOW);
    const secondMs = performance.now() - t0;
    console.log(`  reminders, 2nd tick  ${ms(secondMs).padStart(9)}  ${JSON.stringify(second)}`);
    // a tick decides at most DECISIONS_PER_TICK plans (services/notify/reminders.ts): the ones left go to the next ticks
    let settling = 0;
    for (; settling < 30; settling++) {
      const r = await engine.evaluate(NOW);
      if (r.opened + r.dueSoon + r.resolved + r.digests + r.escalated === 0) break;
      console.log(`  reminders, tick ${settling + 3} (still deciding) ${JSON.stringify(r)}`);
    }
    const steady: number[] = [];
    for (let i = 0; i < Math.max(3, Math.min(args.runs, 5)); i++) {
      t0 = performance.now();
      const r = await engine.evaluate(NOW);
      steady.push(performance.now() - t0);
      if (r.opened + r.dueSoon + r.resolved + r.digests + r.escalated > 0) throw new BenchError(`a steady tick decided something new: ${JSON.stringify(r)}`);
      console.log(`  reminders, tick ${i + settling + 4}     ${ms(steady[i]!).padStart(9)}`);
    }
    const facts = await machineFacts(e);
    const markdown = [
      SECTION,
      '',
      `Measured ${facts.date} with`,
      '',
      '```sh',
      `npx tsx tests/bench/status.bench.ts --runs ${args.runs} --write`,
      '```',
      '',
      `- Machine: ${facts.cpus} CPUs, ${facts.memory} RAM, PostgreSQL ${facts.postgres}, Node ${facts.node}.`,
      `- Data: one tenant, ${PLANS.toLocaleString('en')} plans (cadences P1D/PT6H, P7D/P1D, P3M/P7D, 36h/2h and none in turn), ` +
        `${(PLANS * RUNS_PER_PLAN).toLocaleString('en')} finished runs (~80 % passed, 8 % failed, 8 % error, 4 % cancelled), ` +
        `written by bulk INSERT in the database \`${BENCH_DB}\`.`,
      '- Measured: `PlanStatusRepository.statusAll(tenant, now)`, one SQL query (last decisive and last passed run per plan by ' +
        '`DISTINCT ON`, due date and grace added in the plan\'s time zone in SQL), from the call until all rows are in Node, ' +
        `after ${args.warmup} unmeasured call(s). Statuses: ${Object.entries(statuses).map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ')}; ` +
        `the first ${CROSS_CHECK.toLocaleString('en')} plans were checked against \`planStatus()\` in JS.`,
      '',
      '| | calls | min | median | max |',
      '|---|---:|---:|---:|---:|',
      `| statusAll, ${PLANS.toLocaleString('en')} plans | ${times.length} | ${ms(Math.min(...times))} | **${ms(med)}** | ${ms(Math.max(...times))} |`,
      `| reminder tick, first (opens ${written[0]!.alerts.toLocaleString('en')} alerts, writes ${written[0]!.notifications.toLocaleString('en')} notifications) | 1 | ${ms(firstMs)} | ${ms(firstMs)} | ${ms(firstMs)} |`,
      `| reminder tick, second (${second.escalated.toLocaleString('en')} escalations due since the alerts began) | 1 | ${ms(secondMs)} | ${ms(secondMs)} | ${ms(secondMs)} |`,
      `| reminder tick, steady (nothing new to decide) | ${steady.length} | ${ms(Math.min(...steady))} | ${ms(median(steady))} | ${ms(Math.max(...steady))} |`,
      '',
      'The reminder tick (`ReminderEngine.evaluate`, run by the scheduler leader every minute) is the status query plus the ' +
        'alerts, escalations, due-soon reminders and digests it leads to; half of the plans have a `notify` block.',
      '',
      `Target: at most ${ms(TARGET_MS)} (median) — **${met ? 'met' : 'missed'}**.`,
      '',
      `- \`--reseed\` seeds again; \`npx tsx tests/bench/status.bench.ts --drop\` removes \`${BENCH_DB}\`. A benchmark is not a test: \`npm test\` never runs it.`,
      '',
    ].join('\n');
    console.log(`\n${markdown}`);
    if (seeded.seedMs !== null) console.log(`(seeding took ${ms(seeded.seedMs)})`);
    if (args.write) console.log(`written: ${await writeBenchmarkSection(SECTION, markdown)}`);
    if (!met) {
      console.error(`bench:status: target missed: median ${ms(med)} > ${ms(TARGET_MS)}`);
      return 1;
    }
    console.log('bench:status: target met');
    return 0;
  } finally {
    await db.destroy();
  }
}

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench:status: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
