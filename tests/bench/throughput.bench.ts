/**
 * `npm run bench:throughput [-- --plans N] [--configs 1,2,4,two-engines] [--deadline-min M] [--write]`
 *
 * How many restore tests per hour this machine gets through when many small
 * plans are due at once: N plans (default 60), each its own id, all pointing
 * at the same 50,000-row PostgreSQL custom dump, are started together through
 * the real API; the worker works them off. One configuration after the other,
 * each on a fresh database, queue and worker:
 *
 *   1, 2, 4       one worker in this process on the first Docker engine,
 *                 ERNSTFALL_WORKER_CONCURRENCY 1, 2 or 4
 *   two-engines   two workers: pool `default` in this process on the first
 *                 engine, pool `rz2` in a `services/main.ts worker` process on a
 *                 second dockerd (tests/fixtures/second-engine.ts); half the
 *                 plans each, concurrency 2 each
 *
 * Reported per configuration: wall time (first POST → last run seen
 * finished), tests per hour, p50/p95 run duration (queued → finished, as
 * stored), failed / error / stuck runs (stuck: not finished by the deadline),
 * peak sandboxes at once (Docker, sampled every 500 ms), the load average at
 * start and end, and the machine's CPU split (/proc/stat) over the run.
 *
 * --plans N         plans (and runs) per configuration, 1–500 (default 60)
 * --configs LIST    comma-separated, of 1, 2, 4, two-engines (default all four)
 * --deadline-min M  each configuration's deadline in minutes (default 20); runs
 *                   not finished by then count as stuck and are stopped
 * --write           put the result into docs/BENCHMARKS.md ("## Throughput")
 *
 * Touches nothing of the installation: a database of its own
 * (ernstfall_bench_throughput, dropped after each configuration), its own
 * instance label and queue prefix, a temporary folder for the dump, the
 * signing key, trusted keys and checkpoints (removed at the end). Needs root
 * (the dump is built as the postgres OS user; the second dockerd).
 *
 * Exit 0: every run of every configuration passed; 1: a run failed, ended in
 * error, got stuck, or a sandbox was left; 2: the benchmark could not measure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import pg from 'pg';
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';
import { BenchError, dumpHostDatabase, machineFacts, median, mib, onInterrupt, sec, sleep, startRestoreService, type RestoreService } from './bench-kit.js';
import { loadEnvFile, repoRoot } from '../../services/config.js';
import { LABELS } from '../../workers/sandbox/docker.js';
import { startSecondEngine, type SecondEngine } from '../fixtures/second-engine.js';

const ROWS = 50_000;
const SOURCE_DB = 'ernstfall_bench_throughput_src';
const BENCH_DB = 'ernstfall_bench_throughput';
const SECTION = '## Throughput';
const CONFIGS = ['1', '2', '4', 'two-engines'] as const;
type ConfigName = (typeof CONFIGS)[number];
const PHASES = ['fetch', 'provision', 'restore', 'verify', 'teardown'] as const;
const SANDBOX = { memory: '1g', cpus: 2, timeout: '10m' };

/** A small register: 50,000 residents with a recent change date (the built-in freshness check finds it within the RPO). */
const FIXTURE_SQL = `
create table einwohner (id integer primary key, name text not null, ort text not null, geburtsdatum date not null, geaendert_am timestamptz not null);
insert into einwohner
  select i, 'Person ' || i, (array['Musterstadt','Beispielheim','Neudorf','Altenburg'])[1 + i % 4],
         date '1930-01-01' + (i * 37) % 32000, now() - (${ROWS} - i) * interval '1 minute'
  from generate_series(1, ${ROWS}) i;
create index einwohner_geaendert_am on einwohner (geaendert_am);
`;

interface Args { plans: number; configs: ConfigName[]; deadlineMin: number; write: boolean }

function parseArgs(argv: string[]): Args {
  const a = benchArgs(argv, { numbers: { plans: 1, 'deadline-min': 1 }, switches: ['write'], strings: ['configs'] }, (m) => new BenchError(m));
  const plans = (a.plans as number | undefined) ?? 60;
  if (plans > 500) throw new BenchError('--plans: at most 500 (the benchmark is bounded)');
  const configs = ((a.configs as string | undefined) ?? CONFIGS.join(',')).split(',').map((x) => x.trim()).filter(Boolean);
  for (const c of configs) if (!(CONFIGS as readonly string[]).includes(c)) throw new BenchError(`--configs: unknown configuration "${c}" (${CONFIGS.join(', ')})`);
  if (configs.length === 0) throw new BenchError('--configs: none given');
  const deadlineMin = (a['deadline-min'] as number | undefined) ?? 20;
  if (deadlineMin > 180) throw new BenchError('--deadline-min: at most 180');
  return { plans, configs: configs as ConfigName[], deadlineMin, write: a.write === true };
}

// ---------------------------------------------------------------- machine readings

/** CPU ticks of the whole machine (/proc/stat, first line). */
async function cpuTicks(): Promise<{ busy: number; iowait: number; steal: number; total: number }> {
  const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, iowait, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** CPU seconds used so far by all dockerd and containerd processes (both engines; shims come and go with their containers and are not counted). */
async function dockerCpuSeconds(): Promise<number> {
  let ticks = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const s = await readFile(`/proc/${pid}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      if (comm !== 'dockerd' && comm !== 'containerd') continue;
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / 100;
}

/** CPU seconds a cgroup (v1 cpuacct, else v2) has used so far, counting its children, also removed ones; null when it cannot be read. */
async function cgroupCpuSeconds(rel: string): Promise<number | null> {
  const v1 = await readFile(`/sys/fs/cgroup/cpuacct/${rel}/cpuacct.usage`, 'utf8').then((t) => Number(t) / 1e9, () => null);
  if (v1 !== null) return v1;
  return readFile(`/sys/fs/cgroup/${rel}/cpu.stat`, 'utf8').then((t) => Number(/usage_usec (\d+)/.exec(t)?.[1]) / 1e6, () => null);
}

const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' / ');

// ---------------------------------------------------------------- one configuration

interface RunRow { id: string; planId: string; pool: string; status: string; verdict: string | null; queuedAt: number; startedAt: number | null; finishedAt: number | null }

export interface ConfigResult {
  name: ConfigName;
  label: string;
  plans: number;
  wallMs: number;
  finished: number;
  passed: number;
  failed: number;
  error: number;
  cancelled: number;
  stuck: number;
  perHour: number;
  durations: number[];
  serviceTimes: number[];
  phaseMedians: Record<string, number>;
  peakSandboxes: number;
  peakByEngine: Record<string, number>;
  meanRunning: number;
  loadStart: string;
  loadEnd: string;
  cpuBusyPct: number;
  cpuIowaitPct: number;
  cpuStealPct: number;
  dockerCpuS: number;
  benchCpuS: number;
  /** CPU seconds the benchmark's sandboxes used (each container's cgroup, sampled every 500 ms: the last half second of each is missing). */
  sandboxCpuS: number;
  /** CPU seconds of the whole `docker` cgroup (every container of both engines, also other people's). */
  allContainersCpuS: number | null;
  /** Two engines: service time (started → finished) median per pool. */
  servicePerPool: Record<string, number>;
  left: number;
  problems: string[];
}

const LABEL: Record<ConfigName, string> = {
  1: 'one worker, concurrency 1',
  2: 'one worker, concurrency 2',
  4: 'one worker, concurrency 4',
  'two-engines': 'two workers on two engines, concurrency 2 each',
};

async function sandboxesOn(docker: Docker, instance: string): Promise<string[]> {
  return (await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } })).map((c) => c.Id);
}

interface Env { ownerUrl: string; appUrl: string; tmp: string; backups: string; dump: string; dumpMtime: number; image: string; plans: number; deadlineMs: number }

async function runConfig(name: ConfigName, e: Env, engine2: () => Promise<SecondEngine>): Promise<ConfigResult> {
  const two = name === 'two-engines';
  const concurrency = two ? 2 : Number(name);
  const token = randomBytes(24).toString('hex');
  const engine1 = new Docker();
  const problems: string[] = [];
  const eng2 = two ? await engine2() : undefined;
  const service: RestoreService = await startRestoreService({
    benchDb: BENCH_DB, evidenceDir: join(e.tmp, 'evidence'),
    env: {
      ERNSTFALL_WORKER_CONCURRENCY: String(concurrency),
      ERNSTFALL_WORKER_POOLS: 'default',
      ERNSTFALL_POOLS: two ? 'rz2' : undefined,
      ERNSTFALL_BACKUP_ROOTS: e.backups,
      ERNSTFALL_BOOTSTRAP_TOKEN: token,
      ERNSTFALL_BOOTSTRAP_TOKEN_FILE: undefined,
      ERNSTFALL_SANDBOX_PULL: 'never',
      ERNSTFALL_STATE_DIR: e.tmp,
    },
  });
  const instance = service.config.instance;
  let child: ChildProcess | undefined;
  const db = new pg.Client({ connectionString: service.databaseUrl });
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  const peakByEngine: Record<string, number> = { engine1: 0, ...(two && { engine2: 0 }) };
  let peak = 0;
  const containerCpu = new Map<string, number>();
  try {
    await db.connect();
    const ids = Array.from({ length: e.plans }, (_, i) => `tp-${String(i + 1).padStart(3, '0')}`);
    for (const [i, id] of ids.entries()) {
      await service.putPlan({
        id,
        title: `Throughput ${id}: ${ROWS} rows`,
        targets: { rto: '1h', rpo: '26h' },
        source: { type: 'file', path: e.dump, settle: '2s', timezone: 'UTC' },
        restore: { driver: 'postgres', database: 'app' },
        sandbox: { ...SANDBOX, ...(two && i % 2 === 1 && { pool: 'rz2' }) },
        checks: [{ name: 'einwohner rows', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` }],
      });
    }
    if (eng2) {
      // pool rz2: a worker process of its own on the second engine, as an operator would start it; no signing key there
      child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/main.ts'), 'worker'], {
        cwd: repoRoot,
        env: {
          ...process.env,
          DATABASE_URL: service.databaseUrl,
          DATABASE_OWNER_URL: undefined,
          DOCKER_HOST: eng2.host,
          ERNSTFALL_WORKER_POOLS: 'rz2',
          ERNSTFALL_POOLS: 'rz2',
          ERNSTFALL_WORKER_CONCURRENCY: String(concurrency),
          ERNSTFALL_SANDBOX_TRANSFER: 'copy',
          ERNSTFALL_SANDBOX_PULL: 'never',
          ERNSTFALL_INSTANCE: instance,
          ERNSTFALL_QUEUE_PREFIX: service.prefix,
          ERNSTFALL_BACKUP_ROOTS: e.backups,
          ERNSTFALL_STATE_DIR: e.tmp,
          ERNSTFALL_PLANS_DIR: join(e.tmp, 'no-plans'),
          ERNSTFALL_SIGNING_KEY_FILE: join(e.tmp, 'no-key', 'signing-key.pem'),
          ERNSTFALL_TRUSTED_KEYS_DIR: join(e.tmp, 'no-key', 'keys'),
          ERNSTFALL_CHECKPOINT_DIR: join(e.tmp, 'no-key', 'checkpoints'),
          PORT: '0',
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      const deadline = Date.now() + 90_000;
      for (;;) {
        const q = await service.api('GET', '/queue');
        const rz2 = (q.body?.pools as { pool: string; workers: number | null }[] | undefined)?.find((p) => p.pool === 'rz2');
        if ((rz2?.workers ?? 0) > 0) break;
        if (child.exitCode !== null) throw new BenchError(`the rz2 worker exited (${child.exitCode}) before it connected`);
        if (Date.now() > deadline) throw new BenchError(`the rz2 worker did not connect within 90 s (${q.status} ${JSON.stringify(q.body).slice(0, 300)})`);
        await sleep(500);
      }
    }
    // a just-written dump must settle (2 s) before the source picks it
    const settleLeft = e.dumpMtime + 2500 - Date.now();
    if (settleLeft > 0) await sleep(settleLeft);

    // ---- measured from here
    const loadStart = load();
    const cpu0 = await cpuTicks();
    const docker0 = await dockerCpuSeconds();
    const bench0 = process.cpuUsage();
    const all0 = await cgroupCpuSeconds('docker');
    const t0 = performance.now();
    sampler = (async () => {
      while (sampling) {
        const [l1, l2] = await Promise.all([
          sandboxesOn(engine1, instance).catch(() => [] as string[]),
          eng2 ? sandboxesOn(eng2.docker, instance).catch(() => [] as string[]) : Promise.resolve([] as string[]),
        ]);
        const [a, b] = [l1.length, l2.length];
        for (const id of [...l1, ...l2]) {
          const used = await cgroupCpuSeconds(`docker/${id}`);
          if (used !== null) containerCpu.set(id, Math.max(containerCpu.get(id) ?? 0, used));
        }
        peakByEngine.engine1 = Math.max(peakByEngine.engine1!, a);
        if (eng2) peakByEngine.engine2 = Math.max(peakByEngine.engine2!, b);
        peak = Math.max(peak, a + b);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const runIds: string[] = [];
    for (const id of ids) {
      const post = await service.api('POST', `/plans/${id}/runs`);
      if (post.status !== 202) throw new BenchError(`POST /plans/${id}/runs: ${post.status} ${JSON.stringify(post.body)}`);
      runIds.push(post.body.id as string);
    }
    const deadlineAt = t0 + e.deadlineMs;
    let wallMs = 0;
    let lastShown = 0;
    for (;;) {
      const r = await db.query<{ n: string }>(`select count(*) as n from runs where id = any($1::uuid[]) and status = 'finished'`, [runIds]);
      const done = Number(r.rows[0]!.n);
      const now = performance.now();
      if (done === runIds.length) {
        wallMs = now - t0;
        break;
      }
      if (now > deadlineAt) {
        wallMs = now - t0;
        problems.push(`deadline of ${Math.round(e.deadlineMs / 60_000)} min reached with ${runIds.length - done} run(s) not finished`);
        break;
      }
      if (now - lastShown > 15_000) {
        lastShown = now;
        console.log(`  [${name}] ${sec(now - t0)}: ${done}/${runIds.length} finished, load ${load()}`);
      }
      await sleep(250);
    }
    const loadEnd = load();
    const cpu1 = await cpuTicks();
    const docker1 = await dockerCpuSeconds();
    const bench1 = process.cpuUsage(bench0);
    const all1 = await cgroupCpuSeconds('docker');
    sampling = false;
    await sampler;
    // ---- measured until here

    const rows = (await db.query<{ id: string; plan_id: string; pool: string | null; status: string; verdict: string | null; queued_at: Date; started_at: Date | null; finished_at: Date | null }>(
      'select id, plan_id, pool, status, verdict, queued_at, started_at, finished_at from runs where id = any($1::uuid[])', [runIds])).rows;
    const runs: RunRow[] = rows.map((x) => ({
      id: x.id, planId: x.plan_id, pool: x.pool ?? 'default', status: x.status, verdict: x.verdict,
      queuedAt: x.queued_at.getTime(), startedAt: x.started_at?.getTime() ?? null, finishedAt: x.finished_at?.getTime() ?? null,
    }));
    const fin = runs.filter((x) => x.status === 'finished' && x.finishedAt !== null);
    const phaseSamples: Record<string, number[]> = {};
    for (const x of fin) {
      const r = await service.api('GET', `/runs/${x.id}`);
      for (const p of (r.body?.phases ?? []) as { name: string; durationMs: number }[]) (phaseSamples[p.name] ??= []).push(p.durationMs);
      if (x.verdict !== 'passed' && problems.length < 12) {
        const findings = ((r.body?.findings ?? []) as { code: string; message: string }[]).map((f) => `${f.code}: ${f.message}`).join('; ');
        problems.push(`run ${x.id} (${x.planId}, pool ${x.pool}) ended ${x.verdict}: ${findings.slice(0, 300)}`);
      }
      if (two) {
        const want = x.pool === 'rz2' ? eng2!.host : 'local';
        const host = r.body?.sandbox?.engine?.host as string | undefined;
        if (host !== undefined && host !== want && problems.length < 12) problems.push(`run ${x.id} of pool ${x.pool} ran on ${host}, not ${want}`);
      }
    }
    const phaseMedians: Record<string, number> = {};
    for (const p of PHASES) if (phaseSamples[p]?.length) phaseMedians[p] = median(phaseSamples[p]);
    const count = (v: string) => fin.filter((x) => x.verdict === v).length;
    const busy = fin.reduce((a, x) => a + (x.finishedAt! - (x.startedAt ?? x.finishedAt!)), 0);
    const dt = cpu1.total - cpu0.total || 1;
    return {
      name, label: LABEL[name], plans: e.plans, wallMs,
      finished: fin.length, passed: count('passed'), failed: count('failed'), error: count('error'), cancelled: count('cancelled'),
      stuck: runIds.length - fin.length,
      perHour: (fin.length / wallMs) * 3_600_000,
      durations: fin.map((x) => x.finishedAt! - x.queuedAt),
      serviceTimes: fin.filter((x) => x.startedAt !== null).map((x) => x.finishedAt! - x.startedAt!),
      phaseMedians, peakSandboxes: peak, peakByEngine, meanRunning: busy / wallMs,
      loadStart, loadEnd,
      cpuBusyPct: (100 * (cpu1.busy - cpu0.busy)) / dt, cpuIowaitPct: (100 * (cpu1.iowait - cpu0.iowait)) / dt, cpuStealPct: (100 * (cpu1.steal - cpu0.steal)) / dt,
      dockerCpuS: docker1 - docker0, benchCpuS: (bench1.user + bench1.system) / 1e6,
      sandboxCpuS: [...containerCpu.values()].reduce((a, x) => a + x, 0),
      allContainersCpuS: all0 !== null && all1 !== null ? all1 - all0 : null,
      servicePerPool: Object.fromEntries([...new Set(fin.map((x) => x.pool))].map((p) => [p, median(fin.filter((x) => x.pool === p && x.startedAt !== null).map((x) => x.finishedAt! - x.startedAt!))])),
      left: 0, problems,
    };
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await db.end().catch(() => undefined);
    if (child && child.exitCode === null && child.signalCode === null) {
      const c = child;
      await new Promise((resolve) => {
        c.once('exit', resolve);
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 15_000).unref();
      });
    }
    // stops the in-process worker (a run still going ends INTERRUPTED, its sandbox removed), signs what is waiting, drops the database
    await service.close();
    if (eng2) for (const id of await sandboxesOn(eng2.docker, instance).catch(() => [])) await eng2.docker.getContainer(id).remove({ force: true, v: true }).catch(() => undefined);
    const left = (await sandboxesOn(engine1, instance).catch(() => [])).length + (eng2 ? (await sandboxesOn(eng2.docker, instance).catch(() => [])).length : 0);
    if (left) console.error(`bench: ${left} sandbox(es) of ${instance} still there after cleanup`);
    lastLeft = left;
  }
}
let lastLeft = 0;

// ---------------------------------------------------------------- report

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const dur = (ms: number): string => (Number.isNaN(ms) ? '–' : ms >= 120_000 ? `${(ms / 60_000).toFixed(1)} min` : sec(ms));

interface Result { args: Args; facts: Record<string, string>; dumpBytes: number; image: string; results: ConfigResult[] }

function report(r: Result): string {
  const cmd = `npm run bench:throughput -- --plans ${r.args.plans}${r.args.configs.join(',') !== CONFIGS.join(',') ? ` --configs ${r.args.configs.join(',')}` : ''}` +
    `${r.args.deadlineMin !== 20 ? ` --deadline-min ${r.args.deadlineMin}` : ''} --write`;
  const base = r.results.find((x) => x.name === '1');
  const lines = [
    SECTION,
    '',
    `Measured ${r.facts.date} with`,
    '',
    '```sh',
    cmd,
    '```',
    '',
    `- Machine (nproc, free -g, docker info, node): ${r.facts.cpus} CPUs, ${r.facts.memory} RAM, Docker ${r.facts.docker}, Node ${r.facts.node}. Shared: other work ran meanwhile (load averages below).`,
    `- Backup: one table \`einwohner\` with ${ROWS.toLocaleString('en')} rows and an index, \`pg_dump -Fc\` on the host's PostgreSQL → ${mib(r.dumpBytes)}, in a temporary backup root. Sandbox image \`${r.image}\`.`,
    `- ${r.args.plans} plans per configuration, each its own id, all on that same dump; \`sandbox: {memory: ${SANDBOX.memory}, cpus: ${SANDBOX.cpus}}\`, ` +
      `one check \`select count(*) from einwohner\` \`== ${ROWS}\`, the built-in checks on. All ${r.args.plans} runs are POSTed at once through the real API; ` +
      'each configuration has a fresh database, queue and worker(s) (tests/bench/throughput.bench.ts).',
    '- Wall time: first POST until the last run is seen `finished` (polled every 250 ms). Run duration: queued → finished as stored in the run. ' +
      'Peak sandboxes: the benchmark\'s containers on the engine(s), sampled every 500 ms. Mean running: sum of the runs\' started → finished ÷ wall time. ' +
      `CPU: the whole machine's split from /proc/stat over the wall time (all CPUs = 100 %); in the second table, dockerd + containerd of both engines and the \`docker\` cgroup ` +
      `also carry other people's containers on the first engine, the benchmark process is this one (the rz2 worker process is not in it). Deadline ${r.args.deadlineMin} min per configuration.`,
    '',
    '| configuration | wall | tests/h | vs. conc. 1 | p50 run | p95 run | service p50 | failed / error / stuck | peak sandboxes | mean running | load start → end | CPU busy / iowait |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
    ...r.results.map((x) => `| ${x.label} | ${dur(x.wallMs)} | **${Math.round(x.perHour).toLocaleString('en')}** | ${base ? `${(x.perHour / base.perHour).toFixed(2)}×` : '–'} | ` +
      `${dur(pct(x.durations, 50))} | ${dur(pct(x.durations, 95))} | ${dur(median(x.serviceTimes.length ? x.serviceTimes : [NaN]))} | ${x.failed} / ${x.error} / ${x.stuck} | ` +
      `${x.peakSandboxes}${x.name === 'two-engines' ? ` (${x.peakByEngine.engine1} + ${x.peakByEngine.engine2})` : ''} | ${x.meanRunning.toFixed(1)} | ${x.loadStart} → ${x.loadEnd} | ` +
      `${Math.round(x.cpuBusyPct)} % / ${Math.round(x.cpuIowaitPct)} % |`),
    '',
    'Where the CPU went during each configuration (CPU seconds over the wall time; each CPU gives 1 s per second):',
    '',
    '| configuration | machine, all processes | benchmark\'s sandboxes | … per second of wall | all containers (`docker` cgroup) | dockerd + containerd | benchmark process (API, worker, signer) | per test: sandbox CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.results.map((x) => `| ${x.label} | ${((x.cpuBusyPct / 100) * cpus().length * x.wallMs / 1000).toFixed(0)} s | ${x.sandboxCpuS.toFixed(0)} s | ${(x.sandboxCpuS / (x.wallMs / 1000)).toFixed(2)} | ` +
      `${x.allContainersCpuS === null ? '–' : `${x.allContainersCpuS.toFixed(0)} s`} | ${x.dockerCpuS.toFixed(0)} s | ${x.benchCpuS.toFixed(0)} s | ${x.finished ? (x.sandboxCpuS / x.finished).toFixed(1) : '–'} s |`),
    '',
    ...r.results.filter((x) => Object.keys(x.servicePerPool).length > 1)
      .map((x) => `${x.label}: service time (started → finished) median per pool: ${Object.entries(x.servicePerPool).map(([p, v]) => `${p} ${dur(v)}`).join(', ')}.\n`),
    'Phase medians per run (as stored; "service p50" above is started → finished):',
    '',
    `| configuration | ${PHASES.join(' | ')} |`,
    `|---|${PHASES.map(() => '---:').join('|')}|`,
    ...r.results.map((x) => `| ${x.label} | ${PHASES.map((p) => (x.phaseMedians[p] === undefined ? '–' : sec(x.phaseMedians[p]!))).join(' | ')} |`),
    '',
  ];
  const bad = r.results.filter((x) => x.failed + x.error + x.stuck + x.cancelled > 0 || x.left > 0);
  lines.push(bad.length
    ? `**Not every run passed:** ${bad.map((x) => `${x.label}: ${x.failed} failed, ${x.error} error, ${x.stuck} stuck, ${x.cancelled} cancelled, ${x.left} sandbox(es) left`).join('; ')}.`
    : `All ${r.results.reduce((a, x) => a + x.finished, 0)} runs passed; no run stuck; no sandbox left on either engine.`);
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  if (!ownerUrl || !appUrl) {
    console.error('bench: DATABASE_OWNER_URL and DATABASE_URL are needed; run npm run setup');
    return 2;
  }
  const tmp = await mkdtemp(join(tmpdir(), 'ef-throughput-'));
  await chmod(tmp, 0o755);
  const backups = join(tmp, 'backups');
  await mkdir(backups, { recursive: true });
  await chmod(backups, 0o755);
  let engine2: SecondEngine | undefined;
  try {
    const dump = join(backups, `einwohner-${ROWS / 1000}k.dump`);
    await dumpHostDatabase(ownerUrl, SOURCE_DB, dump, async (run, port) => {
      console.log(`fixture: ${ROWS.toLocaleString('en')} Einwohner in ${SOURCE_DB} …`);
      await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-p', port, '-d', SOURCE_DB, '-c', FIXTURE_SQL]);
    });
    const st = await stat(dump);
    const c = new pg.Client({ connectionString: ownerUrl });
    await c.connect();
    const major = Math.floor(Number((await c.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]!.v) / 10000);
    await c.end();
    const image = `ernstfall/sandbox-postgres:${major}`;
    console.log(`fixture: ${dump} (${mib(st.size)}); image ${image}; ${args.plans} plans; configurations ${args.configs.join(', ')}; deadline ${args.deadlineMin} min each`);
    const env: Env = { ownerUrl, appUrl, tmp, backups, dump, dumpMtime: st.mtimeMs, image, plans: args.plans, deadlineMs: args.deadlineMin * 60_000 };
    const getEngine2 = async () => {
      if (!engine2) {
        console.log('second engine: starting (or reusing) the second dockerd, loading the image if it lacks it …');
        engine2 = await startSecondEngine([image]);
      }
      return engine2;
    };
    const results: ConfigResult[] = [];
    for (const name of args.configs) {
      console.log(`\n${LABEL[name]}: ${args.plans} runs …`);
      const res = await runConfig(name, env, getEngine2);
      res.left = lastLeft;
      results.push(res);
      console.log(`  ${LABEL[name]}: wall ${dur(res.wallMs)}, ${Math.round(res.perHour)} tests/h, p50 ${dur(pct(res.durations, 50))}, p95 ${dur(pct(res.durations, 95))}, ` +
        `failed/error/stuck ${res.failed}/${res.error}/${res.stuck}, peak sandboxes ${res.peakSandboxes}, load ${res.loadStart} → ${res.loadEnd}, CPU busy ${Math.round(res.cpuBusyPct)} %`);
      for (const p of res.problems) console.error(`  problem: ${p}`);
    }
    const facts = await machineFacts();
    const result: Result = { args, facts, dumpBytes: st.size, image, results };
    const markdown = report(result);
    console.log(`\n${markdown}`);
    // the raw figures, outside the installation's state folder
    const raw = join(tmpdir(), 'ernstfall-throughput-last-result.json');
    await writeFile(raw, `${JSON.stringify(result, null, 2)}\n`).then(() => console.log(`raw figures: ${raw}`), () => undefined);
    if (args.write) console.log(`written: ${await writeBenchmarkSection(SECTION, markdown)}`);
    return results.some((x) => x.failed + x.error + x.stuck + x.cancelled > 0 || x.left > 0) ? 1 : 0;
  } finally {
    await engine2?.stop().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

onInterrupt('bench:throughput');

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench:throughput: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
