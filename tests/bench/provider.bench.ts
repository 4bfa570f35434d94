/**
 * `npm run bench:provider -- [--runs N] [--requests N] [--only status,scheduler,reminders,dashboard] [--reseed] [--write]`
 * `npm run bench:provider -- --drop`
 *
 * Issue 13, item 7: a service provider runs ernstfall for ~2,000 Kommunen.
 * 2,000 tenants, 100,000 plans, ~500,000 finished runs in a database of its
 * own (`ernstfall_bench_provider`, seeded set-based by INSERT … SELECT
 * generate_series; never the installation's database, state folder or
 * signing key). Measured, each several times:
 *
 * - status: the plan status of all 100,000 plans (`PlanStatusRepository.statusAllTenants`, one query) — target < 1 s;
 * - scheduler: the leader's tick over 40,000 scheduled plans (a busy night minute, a steady minute, and the
 *   first tick of a new scheduler after a restart) — target < 1 s steady;
 * - reminders: `ReminderEngine.evaluate` — the first tick that opens every alert (bounded per tick, reported),
 *   then the steady tick — target < 1 s steady; the first tick of a new process after a restart is reported;
 * - dashboard: `GET /` for the largest tenant (200 plans, 50,000 runs) on the real app with a session cookie,
 *   autocannon on loopback, p95 — target < 50 ms; plus each query of the page timed alone and with EXPLAIN ANALYZE.
 *
 * The scheduler's trigger is a stub that only counts (enqueueing a run is per due run, not per plan); everything
 * the scheduler decides and writes (last_slot, next_slot) is real. A benchmark measures speed; it is not a test.
 *
 * --runs N      measured repetitions of status and steady ticks (default 7)
 * --requests N  requests in the dashboard latency run (default 200; one connection)
 * --only LIST   measure only these parts (comma-separated)
 * --reseed      seed the cached database again
 * --drop        drop the bench database, then exit
 * --write       put the result into docs/BENCHMARKS.md ("## Provider scale")
 * Exit 0: targets met; 1: a target missed; 2: could not measure.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import pg from 'pg';
import { pino } from 'pino';
import { createDb } from '../../db/database.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { PlanStatusRepository } from '../../db/repositories/plan-status.repository.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { DECISIONS_PER_TICK, DUE_DATES_PER_TICK, ReminderEngine } from '../../services/notify/reminders.js';
import { Scheduler, UNKNOWN_NEXT_SLOTS_PER_TICK } from '../../services/scheduling/scheduler.js';
import { databaseEnv, namedDatabase, ownerQuery, withDb } from '../helpers/db.js';
import { startHarness } from '../helpers/harness.js';
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';

const BENCH_DB = 'ernstfall_bench_provider';
const TENANTS = 2000;
const PLANS = 100_000;
/** The largest tenant (the default one): its dashboard is measured. */
const BIG_PLANS = 200;
const BIG_RUNS_PER_PLAN = 250;
/** Every 5th plan of the others has a nightly cron schedule, two of five (i % 5 in 0, 3). */
const NOW = new Date('2026-11-28T12:00:00Z');
/** A night minute (02:17 in Berlin) for the scheduler's busy tick. */
const NIGHT = new Date('2026-11-29T01:17:00Z');
const SECTION = '## Provider scale';
const TARGETS = { statusMs: 1000, tickMs: 1000, dashboardP95Ms: 50 };

class BenchError extends Error {}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1))]!;
};
const ms = (x: number) => `${x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString('en')} ms`;
const n = (x: number) => x.toLocaleString('en');
const range = (xs: number[]) => `${ms(Math.min(...xs))} | **${ms(median(xs))}** | ${ms(Math.max(...xs))}`;

const tenantId = (t: string) => `('00000000-0000-4000-8000-' || lpad(to_hex(${t}), 12, '0'))::uuid`;

/**
 * Tenant 1 is the default tenant with 200 plans and 250 runs each (the
 * dashboard's); plans 201… go round-robin to tenants 2…2000 (~50 each),
 * with 4 or 5 runs each. Cadences as in bench:status; half the plans notify.
 */
const SEED_SQL = `
insert into tenants (id, slug, name, created_at)
select ${tenantId('t')}, 'kommune-' || t, 'Kommune ' || t, now() from generate_series(2, ${TENANTS}) t;

insert into plans (tenant_id, id, title, origin, source_file, version_hash, definition, created_at, updated_at)
select case when i <= ${BIG_PLANS} then '${DEFAULT_TENANT_ID}'::uuid else ${tenantId(`(2 + i % ${TENANTS - 1})`)} end,
  'plan-' || lpad(i::text, 6, '0'), 'Fachverfahren ' || i, 'api', null, md5('v' || i),
  jsonb_build_object(
    'id', 'plan-' || lpad(i::text, 6, '0'), 'title', 'Fachverfahren ' || i,
    'targets', jsonb_build_object('rtoSeconds', 900 + (i % 7) * 300, 'rpoSeconds', 93600),
    'cadence', case i % 5
      when 0 then jsonb_build_object('schedule', (i / 5 % 60) || ' ' || (i / 300 % 6) || ' * * *', 'timezone', 'Europe/Berlin', 'requiredEvery', 'P1D', 'grace', 'PT6H')
      when 1 then '{"timezone": "Europe/Berlin", "requiredEvery": "P7D", "grace": "P1D"}'::jsonb
      when 2 then '{"timezone": "Europe/Berlin", "requiredEvery": "P3M", "grace": "P7D"}'::jsonb
      when 3 then jsonb_build_object('schedule', (i / 5 % 60) || ' ' || (i / 300 % 6) || ' * * 1', 'timezone', 'Europe/Berlin', 'requiredEvery', 'P7D', 'grace', 'P1D')
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

insert into runs (id, tenant_id, plan_id, plan_version_hash, status, verdict, trigger, triggered_by, queued_at, started_at, finished_at, worker_id, attempts, phases, rto, rpo)
select gen_random_uuid(), p.tenant_id, p.id, p.version_hash, 'finished', v.verdict, 'schedule', 'scheduler', s, s + interval '2 seconds', s + interval '2 seconds' + d.secs * interval '1 second', 'bench', 1,
  '[{"name":"fetch","durationMs":12,"status":"ok"},{"name":"restore","durationMs":40000,"status":"ok"}]'::jsonb,
  case when v.verdict in ('passed', 'failed') then jsonb_build_object('targetSeconds', 900, 'measuredSeconds', d.secs, 'met', d.secs <= 900)
       else jsonb_build_object('targetSeconds', 900, 'measuredSeconds', null, 'met', null) end,
  jsonb_build_object('targetSeconds', 93600, 'backupAgeSeconds', 3600, 'met', true)
from plans p
cross join lateral (select substr(p.id, 6)::int as i) pi
cross join lateral generate_series(1, case when pi.i <= ${BIG_PLANS} then ${BIG_RUNS_PER_PLAN} else 4 + pi.i % 2 end) k
cross join lateral (select abs(hashtext(p.id || '/' || k)) % 100 as h) hh
cross join lateral (select case when hh.h < 80 then 'passed' when hh.h < 88 then 'failed' when hh.h < 96 then 'error' else 'cancelled' end as verdict) v
cross join lateral (select 60 + (hh.h * 13) % 1200 as secs) d
cross join lateral (select timestamptz '${NOW.toISOString()}'
  - (case when pi.i <= ${BIG_PLANS} then k else k * 8 + abs(hashtext(p.id)) % 8 end) * interval '1 day'
  - (abs(hashtext(p.id || k)) % 20000) * interval '1 second' as s) ss;

insert into users (tenant_id, email, name, role, created_by, created_at, sessions_valid_after) values ('${DEFAULT_TENANT_ID}', 'bench@musterstadt.de', 'Bench', 'admin', 'bench', now(), now());
`;

/**
 * Every scheduled plan's last slot: its newest slot at or before `at` (the
 * slots are daily or Monday at h:m Berlin time), as a scheduler that has
 * been running all along leaves it. Resets next_slot, if the column exists.
 */
function lastSlotSql(at: Date): string {
  return `
insert into plan_schedules (tenant_id, plan_id, last_slot, updated_at)
select tenant_id, id, last_slot, timestamptz '${at.toISOString()}' from (
  select p.tenant_id, p.id, (
    select max(ts) from generate_series(0, 8) d
    cross join lateral (select ((date_trunc('day', timestamptz '${at.toISOString()}' at time zone 'Europe/Berlin') - d * interval '1 day'
        + split_part(p.definition->'cadence'->>'schedule', ' ', 2)::int * interval '1 hour'
        + split_part(p.definition->'cadence'->>'schedule', ' ', 1)::int * interval '1 minute') at time zone 'Europe/Berlin') as ts) x
    where x.ts <= timestamptz '${at.toISOString()}'
      and (split_part(p.definition->'cadence'->>'schedule', ' ', 5) = '*'
        or extract(isodow from x.ts at time zone 'Europe/Berlin') = split_part(p.definition->'cadence'->>'schedule', ' ', 5)::int)
  ) as last_slot
  from plans p where p.definition->'cadence' ? 'schedule'
) s
on conflict (tenant_id, plan_id) do update set last_slot = excluded.last_slot, paused_at = null, updated_at = excluded.updated_at;`;
}

interface Env { ownerUrl: string; appUrl: string }

/** The cached database (the test harness's namedDatabase, migrated to the newest schema), seeded again when it lacks the bench's rows. */
async function ensureSeeded(reseed: boolean): Promise<number | null> {
  const cached = await namedDatabase(BENCH_DB);
  await cached.close();
  const have = cached.existed ? (await cached.owner<{ plans: number; tenants: number }>(
    'select (select count(*)::int from plans) as plans, (select count(*)::int from tenants) as tenants'))[0]! : null;
  if (!reseed && have && have.plans === PLANS && have.tenants >= TENANTS) {
    console.log(`seed: cached ${BENCH_DB} (${n(have.plans)} plans, ${n(have.tenants)} tenants; --reseed to seed again)`);
    return null;
  }
  const database = await namedDatabase(BENCH_DB, { fresh: true });
  await database.close();
  console.log(`seed: ${n(TENANTS)} tenants, ${n(PLANS)} plans, ~500,000 runs by INSERT … SELECT generate_series …`);
  const t0 = performance.now();
  const c = new pg.Client({ connectionString: database.ownerUrl });
  await c.connect();
  try {
    await c.query('begin');
    await c.query(SEED_SQL);
    await c.query(lastSlotSql(NOW));
    await c.query('commit');
    await c.query('vacuum analyze');
  } finally {
    await c.end();
  }
  const took = performance.now() - t0;
  console.log(`seed: done in ${ms(took)}`);
  return took;
}

interface Result { lines: string[]; met: boolean }

async function measureStatus(db: ReturnType<typeof createDb>, e: Env, runs: number): Promise<Result> {
  const repo = new PlanStatusRepository(db);
  const once = async () => {
    const t0 = performance.now();
    const rows = await repo.statusAllTenants(NOW);
    return { t: performance.now() - t0, rows };
  };
  // after the upgrade (migration 0015): the newest runs per plan are in plan_states, no due date is cached yet
  await ownerQuery(withDb(e.ownerUrl, BENCH_DB), 'update plan_states set due_key = null, due_clock_start = null');
  const cold = await once();
  console.log(`  status, all plans, no due date cached ${ms(cold.t).padStart(9)}`);
  // the reminder ticks cache them, DUE_DATES_PER_TICK per tick
  const fills: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const stored = await repo.refreshDueDates(DUE_DATES_PER_TICK);
    if (!stored) break;
    fills.push(performance.now() - t0);
    console.log(`  caching due dates, ${n(stored)} plans ${ms(fills.at(-1)!).padStart(9)}`);
  }
  const first = await once();
  if (JSON.stringify(first.rows.map((r) => [r.tenantId, r.planId, r.status, r.nextDueAt]).sort())
    !== JSON.stringify(cold.rows.map((r) => [r.tenantId, r.planId, r.status, r.nextDueAt]).sort())) throw new BenchError('the status with cached due dates differs from the one computed');
  if (first.rows.length !== PLANS) throw new BenchError(`statusAllTenants returned ${first.rows.length} rows, expected ${PLANS}`);
  // the same answer as the per-tenant query (which tests/integration/plan-status-sql.test.ts holds to planStatus() in JS)
  for (const t of [DEFAULT_TENANT_ID, '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-0000000007d0']) {
    const one = await repo.statusAll(t, NOW);
    const all = first.rows.filter((r) => r.tenantId === t).sort((x, y) => (x.planId < y.planId ? -1 : 1));
    if (JSON.stringify(one) !== JSON.stringify(all.map(({ tenantId: _t, ...r }) => r))) throw new BenchError(`statusAllTenants differs from statusAll for tenant ${t}`);
  }
  const statuses: Record<string, number> = {};
  for (const r of first.rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await once();
    times.push(r.t);
    console.log(`  status, all plans   ${ms(r.t).padStart(9)}`);
  }
  // the dashboard's query for one tenant
  const one: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await repo.statusAll(DEFAULT_TENANT_ID, NOW);
    one.push(performance.now() - t0);
  }
  const met = median(times) <= TARGETS.statusMs;
  return {
    met,
    lines: [
      `| plan status, all ${n(PLANS)} plans of ${n(TENANTS)} tenants (\`statusAllTenants\`, one query) | ${times.length} | ${range(times)} | < ${ms(TARGETS.statusMs)}: **${met ? 'met' : 'missed'}** |`,
      `| plan status, one tenant's ${BIG_PLANS} plans (\`statusAll\`, the dashboard's) | ${one.length} | ${range(one)} | |`,
      `| plan status, all plans, right after the upgrade (no due date cached yet: all computed) | 1 | ${range([cold.t])} | reported |`,
      `| caching the due dates, ${n(DUE_DATES_PER_TICK)} plans per reminder tick (\`refreshDueDates\`) | ${fills.length} | ${range(fills)} | reported |`,
      `STATUSES ${Object.entries(statuses).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`,
    ],
  };
}

async function measureScheduler(db: ReturnType<typeof createDb>, e: Env, runs: number): Promise<Result> {
  const owner = withDb(e.ownerUrl, BENCH_DB);
  const scheduled = (await ownerQuery<{ n: number }>(owner, `select count(*)::int as n from plans where definition->'cadence' ? 'schedule'`))[0]!.n;
  let triggered = 0;
  const trigger = { trigger: async () => ({ id: randomUUID() }) as never };
  const stub = { trigger: async (...a: unknown[]) => { triggered++; void a; return trigger.trigger(); } };
  let clock = NIGHT;
  const mk = () => new Scheduler(db, stub as never, () => clock, pino({ level: 'silent' }), { databaseUrl: withDb(e.appUrl, BENCH_DB), tickMs: 3_600_000, id: `bench-${randomUUID().slice(0, 8)}` });
  const timeTick = async (s: Scheduler) => {
    triggered = 0;
    const t0 = performance.now();
    const r = await s.tick();
    if (!r.leader) throw new BenchError('the bench scheduler is not the leader (another scheduler on this database?)');
    return { t: performance.now() - t0, due: triggered + r.missed.length };
  };
  // the upgrade: no next slot known yet; the first ticks work them out, at most UNKNOWN_NEXT_SLOTS_PER_TICK each
  await ownerQuery(owner, lastSlotSql(new Date(NIGHT.getTime() - 60_000)));
  await ownerQuery(owner, 'update plan_schedules set next_slot = null, next_slot_key = null');
  clock = new Date(NIGHT.getTime() - 60_000);
  let s = mk();
  const upgrade: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    const r = await s.tick();
    upgrade.push(performance.now() - t0);
    console.log(`  scheduler, after the upgrade, tick ${i + 1} ${ms(upgrade.at(-1)!).padStart(9)} (examined ${r.examined}, deferred ${r.deferred})`);
    if (!r.deferred) break;
  }
  // night minutes: ~111 slots due each (02:17, 02:18 …)
  const busyTimes: number[] = [];
  const steady: number[] = [];
  let due = 0;
  for (let i = 0; i < runs; i++) {
    clock = new Date(NIGHT.getTime() + i * 60_000);
    const r = await timeTick(s);
    busyTimes.push(r.t);
    due += r.due;
    console.log(`  scheduler, night minute ${i + 1} ${ms(r.t).padStart(9)} (${r.due} due)`);
  }
  await s.stop();
  // a restart: a new scheduler (new lock session, nothing in memory) on the next minute
  s = mk();
  clock = new Date(NIGHT.getTime() + runs * 60_000);
  const restart = await timeTick(s);
  console.log(`  scheduler, first tick after a restart ${ms(restart.t).padStart(9)} (${restart.due} due)`);
  await s.stop();
  const busy = { t: upgrade[0]!, due: 0 };
  const idle = busyTimes;
  void steady; void busy;
  const all = [...idle];
  const met = median(all) <= TARGETS.tickMs && Math.max(...all) <= TARGETS.tickMs * 2;
  return {
    met,
    lines: [
      `| scheduler ticks after the upgrade (next slots of ${n(scheduled)} scheduled plans not known yet; at most ${n(UNKNOWN_NEXT_SLOTS_PER_TICK)} worked out per tick) | ${upgrade.length} | ${range(upgrade)} | bounded, reported |`,
      `| scheduler tick, a night minute (${Math.round(due / busyTimes.length)} slots due on average, stub trigger) | ${busyTimes.length} | ${range(busyTimes)} | < ${ms(TARGETS.tickMs)}: **${met ? 'met' : 'missed'}** |`,
      `| scheduler tick, first after a restart (new scheduler, the next minute, ${restart.due} due) | 1 | ${range([restart.t])} | reported |`,
    ],
  };
}

async function measureReminders(db: ReturnType<typeof createDb>, e: Env, runs: number): Promise<Result> {
  const owner = withDb(e.ownerUrl, BENCH_DB);
  await ownerQuery(owner, 'delete from notifications; delete from alerts');
  const engine = () => new ReminderEngine(db, { lang: 'de', timezone: 'Europe/Berlin', digestTime: '07:00' }, pino({ level: 'silent' }));
  let eng = engine();
  // the upgrade or an import: no alert open yet; a tick opens at most DECISIONS_PER_TICK, set-based (and writes digests)
  const opening: number[] = [];
  let openedAll = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = await eng.evaluate(NOW);
    opening.push(performance.now() - t0);
    openedAll += r.opened;
    console.log(`  reminders, opening tick ${i + 1} ${ms(opening.at(-1)!).padStart(9)}  ${JSON.stringify(r)}`);
  }
  // each decides at most DECISIONS_PER_TICK plans: openings, and the escalations of the alerts opened a tick before (due since long)
  if (!openedAll || openedAll > 3 * DECISIONS_PER_TICK) throw new BenchError(`the opening ticks opened ${openedAll} alerts, expected 1…${3 * DECISIONS_PER_TICK}`);
  // the state a running installation has: every overdue or failing plan has its alert open (written set-based here, as the
  // engine would have opened them over earlier ticks), the escalation step taken; then the first tick sends what is left
  // (due-soon reminders, today's digests) and every later tick finds nothing new
  const statuses = await new PlanStatusRepository(db).statusAllTenants(NOW);
  const problems = statuses.filter((st) => st.status === 'overdue' || st.status === 'failing');
  const c = new pg.Client({ connectionString: owner });
  await c.connect();
  try {
    // a failing plan's alert names its newest failed run, as the engine opens it
    await c.query(`insert into alerts (tenant_id, plan_id, kind, since, opened_at, escalation_level, run_id)
      select t, p, k, $4::timestamptz, $4::timestamptz, 1,
        case when k = 'failing' then (select s.decisive_id from plan_states s where s.tenant_id = x.t and s.plan_id = x.p) end
      from unnest($1::uuid[], $2::text[], $3::text[]) as x(t, p, k)
      where not exists (select 1 from alerts a where a.tenant_id = x.t and a.plan_id = x.p and a.resolved_at is null)`,
    [problems.map((x) => x.tenantId), problems.map((x) => x.planId), problems.map((x) => x.status), NOW]);
    await c.query('update alerts set escalation_level = 1 where resolved_at is null');
  } finally {
    await c.end();
  }
  let t0 = performance.now();
  const firstR = await eng.evaluate(NOW);
  const firstMs = performance.now() - t0;
  console.log(`  reminders, first tick ${ms(firstMs).padStart(9)}  ${JSON.stringify(firstR)}`);
  const work = [{ t: firstMs }];
  const alerts = problems.length;
  const notifications = (await ownerQuery<{ n: number }>(owner, 'select count(*)::int as n from notifications'))[0]!.n;
  // a restart: a new engine (and fresh connections) on the same decided state
  await db.destroy().catch(() => undefined);
  const fresh = createDb(withDb(e.appUrl, BENCH_DB), 4);
  eng = new ReminderEngine(fresh, { lang: 'de', timezone: 'Europe/Berlin', digestTime: '07:00' }, pino({ level: 'silent' }));
  t0 = performance.now();
  const afterRestart = await eng.evaluate(NOW);
  const restartMs = performance.now() - t0;
  if (afterRestart.opened + afterRestart.escalated > 0) throw new BenchError(`the first tick after a restart decided something new: ${JSON.stringify(afterRestart)}`);
  console.log(`  reminders, first tick after a restart ${ms(restartMs).padStart(9)}`);
  const steady: number[] = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    const r = await eng.evaluate(NOW);
    steady.push(performance.now() - t0);
    if (r.opened + r.dueSoon + r.resolved + r.digests + r.escalated > 0) throw new BenchError(`a steady tick decided something new: ${JSON.stringify(r)}`);
    console.log(`  reminders, steady tick ${ms(steady.at(-1)!).padStart(9)}`);
  }
  await fresh.destroy();
  const met = median(steady) <= TARGETS.tickMs;
  const maxWork = Math.max(...work.map((w) => w.t));
  return {
    met,
    lines: [
      `| reminder tick opening alerts (none open yet: ${n(alerts)} to open, at most ${n(DECISIONS_PER_TICK)} per tick, set-based; the first also writes half the tenants' digests) | ${opening.length} | ${range(opening)} | bounded, reported |`,
      `| reminder tick, first over ${n(alerts)} open alerts (due-soon reminders, the other tenants' digests; ${n(notifications)} notifications in the outbox after it) | ${work.length} | ${range(work.map((w) => w.t))} | reported; ${ms(maxWork)} |`,
      `| reminder tick, first after a restart (new process state, fresh connections) | 1 | ${range([restartMs])} | reported |`,
      `| reminder tick, steady (nothing new to decide) | ${steady.length} | ${range(steady)} | < ${ms(TARGETS.tickMs)}: **${met ? 'met' : 'missed'}** |`,
    ],
  };
}

async function measureDashboard(e: Env, requests: number): Promise<Result & { queries: string[] }> {
  const { planOverview } = await import('../../services/container.js');
  // the test harness on the cached database (kept), its own key and checkpoints (a temporary folder), no worker;
  // the pages see the seeded moment NOW, sessions the real time
  const h = await startHarness({ database: await namedDatabase(BENCH_DB), keepDatabase: true, worker: false, appClock: () => NOW });
  const { app, c } = h;
  await h.signer.stop(); // nothing to sign here; no poller beside the measured requests
  const serverMs: number[] = [];
  let timing = false;
  app.addHook('onResponse', async (req, reply) => {
    if (timing && req.url === '/') serverMs.push(reply.elapsedTime);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const user = await new UserRepository(c.db, c.clock).byEmail('bench@musterstadt.de');
    if (!user) throw new BenchError('bench user missing; run with --reseed');
    const { token } = await c.sessions.start(user, { stage: 'full', method: 'password' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    const headers = { cookie: `ef_session=${token}` };
    const check = await fetch(url, { headers });
    const body = await check.text();
    const links = new Set(body.match(/href="\/plans\/plan-\d{6}"/g) ?? []).size;
    if (check.status !== 200 || links !== BIG_PLANS) throw new BenchError(`dashboard answered ${check.status} with ${links} plan links, expected 200 and ${BIG_PLANS}`);

    // where the time goes: each part alone (sequentially, 20 times, median), then the page's data as it loads it
    const overview = planOverview(c.db, { clock: () => NOW });
    const { OverviewRepository } = await import('../../db/repositories/overview.repository.js');
    const repo = new OverviewRepository(c.db);
    const parts: [string, () => Promise<unknown>][] = [
      ['session (cookie → user, tenant)', () => c.sessions.resolve(token)],
      ['page data (`PlanOverviewService.dashboard`: three queries at once)', () => overview.dashboard(DEFAULT_TENANT_ID)],
      ['restart order (`systems.overview`)', () => c.systems.overview(DEFAULT_TENANT_ID, { at: NOW })],
    ];
    const queries: string[] = [];
    for (const [name, fn] of parts) {
      const t: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await fn();
        t.push(performance.now() - t0);
      }
      queries.push(`| ${name} | ${ms(median(t))} | ${ms(Math.max(...t))} |`);
    }
    const { NotificationRepository } = await import('../../db/repositories/notification.repository.js');
    const { ScheduleRepository } = await import('../../db/repositories/schedule.repository.js');
    const single: [string, () => Promise<unknown>][] = [
      ['tenant name', () => repo.tenantName(DEFAULT_TENANT_ID)],
      ['plan rows (`dashboardRows`: status, newest run, measured RTO, active run; one prepared statement)', () => repo.dashboardRows(DEFAULT_TENANT_ID, NOW)],
      ['open alerts', () => new NotificationRepository(c.db).listAlerts(DEFAULT_TENANT_ID, { open: true, limit: 100_000 })],
      ['scheduler heartbeat', () => new ScheduleRepository(c.db).lastLeaderTick()],
      ['plan status alone (`statusAll`, the plan list\'s; prepared)', () => new PlanStatusRepository(c.db).statusAll(DEFAULT_TENANT_ID, NOW)],
    ];
    for (const [name, fn] of single) {
      const t: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await fn();
        t.push(performance.now() - t0);
      }
      queries.push(`| … ${name} | ${ms(median(t))} | ${ms(Math.max(...t))} |`);
    }
    const whole: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await app.inject({ method: 'GET', url: '/', headers });
      whole.push(performance.now() - t0);
    }
    queries.push(`| whole page in process (\`app.inject\`: session, data, HTML) | ${ms(median(whole))} | ${ms(Math.max(...whole))} |`);

    const latencies: number[] = [];
    const run = (o: autocannon.Options) => new Promise<autocannon.Result>((resolve, reject) => {
      const inst = autocannon(o, (err, res) => (err ? reject(err) : resolve(res)));
      inst.on('response', (_c: unknown, status: number, _b: number, t: number) => {
        if (status !== 200) reject(new BenchError(`a request answered ${status}`));
        if (o.connections === 1) latencies.push(t);
      });
    });
    await run({ url, headers, connections: 1, amount: 20 });
    latencies.length = 0;
    timing = true;
    await run({ url, headers, connections: 1, amount: requests });
    timing = false;
    const parallel = await run({ url, headers, connections: 10, amount: 400 });
    const p95 = percentile(latencies, 95);
    const met = p95 <= TARGETS.dashboardP95Ms;
    return {
      met,
      queries,
      lines: [
        `| dashboard \`GET /\`, ${BIG_PLANS} plans, ${n(BIG_PLANS * BIG_RUNS_PER_PLAN)} runs, 1 connection, at the client: p50 / **p95** / p99 | ${latencies.length} | ${ms(percentile(latencies, 50))} | **${ms(p95)}** | ${ms(percentile(latencies, 99))} | < ${ms(TARGETS.dashboardP95Ms)} p95: **${met ? 'met' : 'missed'}** |`,
        `| … at the server (\`reply.elapsedTime\`): p50 / p95 / p99 | ${serverMs.length} | ${ms(percentile(serverMs, 50))} | ${ms(percentile(serverMs, 95))} | ${ms(percentile(serverMs, 99))} | |`,
        `| … 10 connections: p50 / – / p99 (${parallel.requests.average.toFixed(0)} requests/s) | ${parallel.requests.total} | ${ms(parallel.latency.p50)} | – | ${ms(parallel.latency.p99)} | |`,
        `HTML ${(body.length / 1024).toFixed(0)} KiB`,
      ],
    };
  } finally {
    await h.close();
  }
}

async function main(): Promise<number> {
  const a = benchArgs(process.argv.slice(2), { numbers: { runs: 1, warmup: 0, requests: 20 }, switches: ['reseed', 'drop', 'write'], strings: ['only'] }, (m) => new BenchError(m));
  const runs = (a.runs as number | undefined) ?? 7;
  const requests = (a.requests as number | undefined) ?? 200;
  const only = new Set(String(a.only ?? 'status,scheduler,reminders,dashboard').split(',').map((x) => x.trim()));
  const e: Env = databaseEnv();
  if (a.drop === true) {
    await ownerQuery(e.ownerUrl, `drop database if exists ${BENCH_DB} with (force)`);
    console.log(`dropped ${BENCH_DB}`);
    return 0;
  }
  const seedMs = await ensureSeeded(a.reseed === true);
  const counts = (await ownerQuery<{ runs: number; tenants: number; big: number }>(withDb(e.ownerUrl, BENCH_DB),
    `select (select count(*)::int from runs) as runs, (select count(*)::int from tenants) as tenants,
      (select count(*)::int from runs where tenant_id = '${DEFAULT_TENANT_ID}') as big`))[0]!;
  const results: Result[] = [];
  let statusLine = '';
  let dash: (Result & { queries: string[] }) | undefined;
  let db = createDb(withDb(e.appUrl, BENCH_DB), 4);
  try {
    if (only.has('status')) {
      const r = await measureStatus(db, e, runs);
      statusLine = r.lines.pop()!.replace('STATUSES ', '');
      results.push(r);
    }
    if (only.has('scheduler')) results.push(await measureScheduler(db, e, runs));
    if (only.has('reminders')) {
      results.push(await measureReminders(db, e, runs));
      db = createDb(withDb(e.appUrl, BENCH_DB), 4); // the reminders part ends the pool (a restart)
    }
  } finally {
    await db.destroy().catch(() => undefined);
  }
  if (only.has('dashboard')) {
    dash = await measureDashboard(e, requests);
    results.push(dash);
  }
  const met = results.every((r) => r.met);
  const pg15 = (await ownerQuery<{ v: string }>(e.ownerUrl, `select current_setting('server_version') as v`))[0]!.v;
  const cmd = `npm run bench:provider -- --runs ${runs} --requests ${requests}${a.only ? ` --only ${String(a.only)}` : ''} --write`;
  const markdown = [
    SECTION, '',
    `Measured ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC with`, '',
    '```sh', cmd, '```', '',
    `- Machine: ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, PostgreSQL ${pg15} (default settings: shared_buffers 128 MB, work_mem 4 MB) on the same host, Node ${process.version}; other work ran on the machine meanwhile (load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end).`,
    `- Data (\`${BENCH_DB}\`, seeded by INSERT … SELECT generate_series${seedMs ? ` in ${(seedMs / 1000).toFixed(0)} s` : ''}, cached between runs): ${n(counts.tenants)} tenants, ${n(PLANS)} plans, ${n(counts.runs)} finished runs. The default tenant has ${BIG_PLANS} plans with ${BIG_RUNS_PER_PLAN} runs each (${n(counts.big)} runs); the other plans go round-robin to the other tenants (~50 each) with 4–5 runs each. Cadences P1D/PT6H (nightly cron), P7D/P1D (weekly cron), P7D/P1D, P3M/P7D, none, in turn; half the plans have a \`notify\` block. Evaluated at ${NOW.toISOString()}${statusLine ? `: ${statusLine}` : ''}.`,
    '',
    '| measured | n | min | median | max | target |',
    '|---|---:|---:|---:|---:|---|',
    ...results.flatMap((r) => r.lines.filter((l) => l.startsWith('|') && !l.includes('p50'))),
    '',
    ...(dash ? [
      `Dashboard (${dash.lines.find((l) => l.startsWith('HTML'))!.slice(5)} of HTML), autocannon on loopback, ${requests} requests after 20 unmeasured ones:`, '',
      '| | requests | p50 | p95 | p99 | target |',
      '|---|---:|---:|---:|---:|---|',
      ...dash.lines.filter((l) => l.includes('p50')),
      '',
      'Where a dashboard request\'s time goes (each part alone, 20 calls, sequential):', '',
      '| part | median | max |',
      '|---|---:|---:|',
      ...dash.queries,
      '',
    ] : []),
  ].join('\n');
  console.log(`\n${markdown}`);
  if (a.write === true) console.log(`written: ${await writeBenchmarkSection(SECTION, markdown)}`);
  console.log(met ? 'bench:provider: targets met' : 'bench:provider: a target missed');
  return met ? 0 : 1;
}

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench:provider: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
