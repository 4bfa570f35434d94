/**
 * `npm run bench [-- --runs N] [--warmup N] [--jobs N] [--write]`
 *
 * How long a restore test of a two-million-row pgbench dump takes through
 * ernstfall (from `POST /api/v1/plans/{id}/runs` until the verdict is stored)
 * compared with the same restore done by hand (deploy/bench-by-hand.sh:
 * docker run, pg_restore -j, one count). Target: ernstfall at most 0.85× of
 * by hand (ratio of the medians). A benchmark measures speed; it is not a test.
 *
 * --runs N    measured iterations per side, alternating A B A B … (default 3)
 * --warmup N  unmeasured rounds of both sides before that (default 1)
 * --jobs N    set the plan's restore.jobs (default: ernstfall's own, 2 × cpus)
 * --write     put the result into docs/BENCHMARKS.md ("## Restore test vs. by hand")
 *
 * Exit 0: target met; 1: target missed; 2: the benchmark could not measure.
 */
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';
import { BenchError, dumpHostDatabase, machineFacts, median, mib, onInterrupt, sec, sh, sleep, startRestoreService, type RunSample } from './bench-kit.js';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadEnvFile, repoRoot } from '../../services/config.js';

const SCALE = 20;
const ROWS = SCALE * 100_000;
const SOURCE_DB = 'ernstfall_bench_source';
const BENCH_DB = 'ernstfall_bench';
const PLAN_ID = 'bench-pgbench-s20';
const TARGET_RATIO = 0.85;
/** The plan's RPO is 26h; an older fixture would fail the test for a reason that has nothing to do with speed. */
const FIXTURE_MAX_AGE_MS = 20 * 3600 * 1000;
const PHASES = ['fetch', 'provision', 'restore', 'verify', 'teardown'] as const;
const SECTION = '## Restore test vs. by hand';

// ---------------------------------------------------------------- arguments

function parseArgs(argv: string[]): { runs: number; warmup: number; jobs?: number; write: boolean } {
  const a = benchArgs(argv, { numbers: { runs: 1, warmup: 0, jobs: 1 }, switches: ['write'] }, (m) => new BenchError(m));
  return { runs: (a.runs as number | undefined) ?? 3, warmup: (a.warmup as number | undefined) ?? 1, jobs: a.jobs as number | undefined, write: a.write === true };
}

// ---------------------------------------------------------------- fixture

interface Fixture { file: string; sizeBytes: number; createdAt: string; rows: number; scale: number; builtNow: boolean }

/**
 * `pgbench -i -s 20` on the host cluster, as the `postgres` OS user (so the
 * objects belong to `postgres`, a role every sandbox has), dumped with
 * `pg_dump -Fc` into `<first backup root>/bench/`. Cached: the manifest in
 * `.ernstfall/bench/` says what was built; rebuilt when missing, changed or
 * older than 20 h.
 */
async function ensureFixture(stateDir: string, backupRoot: string, ownerUrl: string): Promise<Fixture> {
  const cacheDir = join(stateDir, 'bench');
  const manifestFile = join(cacheDir, 'fixture.json');
  const dir = join(backupRoot, 'bench');
  const file = join(dir, `pgbench-s${SCALE}.dump`);
  await mkdir(cacheDir, { recursive: true });
  try {
    const m = JSON.parse(await readFile(manifestFile, 'utf8')) as Fixture;
    const st = await stat(file);
    if (m.file === file && m.sizeBytes === st.size && m.scale === SCALE && Date.now() - st.mtimeMs < FIXTURE_MAX_AGE_MS) {
      return { ...m, builtNow: false };
    }
    console.log('fixture: cached dump is older than 20 h or changed; rebuilding');
  } catch {
    console.log('fixture: no cached dump; building it');
  }
  const t0 = performance.now();
  await dumpHostDatabase(ownerUrl, SOURCE_DB, file, async (run, port) => {
    console.log(`fixture: pgbench -i -s ${SCALE} ${SOURCE_DB} (${ROWS.toLocaleString('en')} rows) …`);
    await run('pgbench', ['-p', port, '-i', '-q', '-s', String(SCALE), SOURCE_DB]);
  });
  const st = await stat(file);
  const fixture: Fixture = { file, sizeBytes: st.size, createdAt: st.mtime.toISOString(), rows: ROWS, scale: SCALE, builtNow: true };
  await writeFile(manifestFile, `${JSON.stringify(fixture, null, 2)}\n`);
  console.log(`fixture: built in ${sec(performance.now() - t0)}`);
  return fixture;
}

// ---------------------------------------------------------------- the two sides

type Sample = Pick<RunSample, 'wallMs' | 'phases'>;

async function byHand(dump: string): Promise<Sample> {
  const t0 = performance.now();
  const out = await sh('bash', [join(repoRoot, 'deploy', 'bench-by-hand.sh'), dump]);
  const wallMs = performance.now() - t0;
  const count = out.trim().split('\n').at(-1)?.trim();
  if (count !== String(ROWS)) throw new BenchError(`by hand: expected ${ROWS} rows, the script printed "${out.trim().slice(-200)}"`);
  return { wallMs, phases: {} };
}

// ---------------------------------------------------------------- report

interface Result {
  runs: number;
  warmup: number;
  jobs?: number;
  fixture: Fixture;
  facts: Record<string, string>;
  image: string;
  ernstfall: Sample[];
  hand: Sample[];
}

function report(r: Result): { markdown: string; ratio: number; met: boolean } {
  const e = r.ernstfall.map((s) => s.wallMs);
  const h = r.hand.map((s) => s.wallMs);
  const ratio = median(e) / median(h);
  const met = ratio <= TARGET_RATIO;
  const row = (name: string, xs: number[]) => `| ${name} | ${xs.length} | ${sec(Math.min(...xs))} | **${sec(median(xs))}** | ${sec(Math.max(...xs))} |`;
  const phaseMedian = (p: string) => median(r.ernstfall.map((s) => s.phases[p] ?? 0));
  const overhead = r.ernstfall.map((s) => s.wallMs - PHASES.reduce((a, p) => a + (s.phases[p] ?? 0), 0));
  const lines = [
    SECTION,
    '',
    `Measured ${r.facts.date} with`,
    '',
    '```sh',
    `npm run bench:restore -- --runs ${r.runs}${r.warmup !== 1 ? ` --warmup ${r.warmup}` : ''}${r.jobs ? ` --jobs ${r.jobs}` : ''} --write`,
    '```',
    '',
    `- Machine (nproc, free -g, docker info, node): ${r.facts.cpus} CPUs, ${r.facts.memory} RAM, Docker ${r.facts.docker}, Node ${r.facts.node}.`,
    `- Backup: \`pgbench -i -s ${r.fixture.scale}\` (${r.fixture.rows.toLocaleString('en')} rows in \`pgbench_accounts\`) on the host's PostgreSQL, ` +
      `\`pg_dump -Fc\` → \`${r.fixture.file.replace(`${repoRoot}/`, '')}\`, ${mib(r.fixture.sizeBytes)}. Sandbox image \`${r.image}\`.`,
    `- **ernstfall**: the real API, queue, worker and Docker sandbox in one process (tests/bench/restore.bench.ts), a plan with ` +
      `\`sandbox: {memory: 2g, cpus: 2}\`${r.jobs ? `, \`restore.jobs: ${r.jobs}\`` : ''} and one check \`select count(*) from pgbench_accounts\` \`== ${r.fixture.rows}\`. ` +
      'Timed from `POST /api/v1/plans/{id}/runs` until `GET /api/v1/runs/{id}` (polled every 100 ms) shows the stored verdict `passed`.',
    '- **by hand**: `deploy/bench-by-hand.sh DUMP`, timed as a whole: `docker run -d --network none -v DUMP:/backup.dump:ro …` ' +
      '(initdb and postgres as the `postgres` user, default settings), wait for `pg_isready`, `createdb bench`, ' +
      '`pg_restore -j $(nproc) -d bench /backup.dump` (what a careful administrator types: parallel, server defaults), `psql -c \'select count(*) from pgbench_accounts\'`, `docker rm -f`.',
    `- ${r.runs} measured run(s) per side, alternating ernstfall / by hand${r.warmup ? `, after ${r.warmup} unmeasured warm-up round(s) of both` : ''}.`,
    '',
    '| | runs | min | median | max |',
    '|---|---:|---:|---:|---:|',
    row('ernstfall (POST → verdict stored)', e),
    row('by hand (deploy/bench-by-hand.sh)', h),
    '',
    `**Ratio of medians, ernstfall / by hand: ${ratio.toFixed(2)}×.** Target: at most ${TARGET_RATIO}× of by hand — **${met ? 'met' : 'not met'}**.`,
    '',
    'Where ernstfall\'s time goes (medians over the measured runs; phases as stored in the run):',
    '',
    '| phase | median | what happens |',
    '|---|---:|---|',
    `| fetch | ${sec(phaseMedian('fetch'))} | find the dump, read its header, SHA-256 over the whole file |`,
    `| provision | ${sec(phaseMedian('provision'))} | image check, create the container, copy the backup into its data area (hashed again), start the server from the image's prepared cluster (no initdb), free-disk check |`,
    `| restore | ${sec(phaseMedian('restore'))} | createdb, \`pg_restore -l\` (extensions), \`pg_restore -j\`, empty-table scan |`,
    `| verify | ${sec(phaseMedian('verify'))} | the plan's checks (one \`count(*)\`) |`,
    `| teardown | ${sec(phaseMedian('teardown'))} | remove the container and its volumes |`,
    `| queue + API | ${sec(median(overhead))} | wall time minus the phases: POST, queueing, claiming, storing the verdict, polling granularity |`,
    '',
    `Raw wall times: ernstfall ${e.map((x) => (x / 1000).toFixed(1)).join(', ')} s; by hand ${h.map((x) => (x / 1000).toFixed(1)).join(', ')} s.`,
    '',
    '### How to read it',
    '',
    '- The ratio compares what a person would otherwise do by hand with what ernstfall does unattended; below 1 means ernstfall is faster. ' +
      'ernstfall does more than the script (hashes the backup, lists the archive to check extensions, checks free disk, scans every table ' +
      'for emptiness, stores the evidence). Its server runs with durability off (fsync, full_page_writes, synchronous_commit) and restores ' +
      'with `pg_restore -j`; that pays off on slow disks, dumps larger than the page cache and dumps with many tables. A dump that is one ' +
      'big table restored from the page cache is bound by the CPU (COPY, then one index build), so both sides spend about the same there.',
    '- Both sides start a fresh container and restore the same file from the same page cache; the alternating order keeps either side from ' +
      'profiting from the other\'s warm caches. Numbers from different machines are not comparable; the ratio is the figure to watch.',
    '- "queue + API" is what the service itself costs on top of the restore; it should stay well under a second.',
    '- Rerun after changes to the sandbox, the driver or the worker. A benchmark is not a test: `npm test` never runs it.',
    '',
  ];
  return { markdown: lines.join('\n'), ratio, met };
}

const writeBenchmarks = (section: string): Promise<string> => writeBenchmarkSection(SECTION, section);

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  const roots = (process.env.ERNSTFALL_BACKUP_ROOTS ?? '').split(':').filter(Boolean);
  if (!ownerUrl || !appUrl || roots.length === 0) {
    console.error('bench: DATABASE_OWNER_URL, DATABASE_URL and ERNSTFALL_BACKUP_ROOTS are needed; run npm run setup');
    return 2;
  }
  const stateDir = process.env.ERNSTFALL_STATE_DIR ?? join(repoRoot, '.ernstfall');
  const image = 'ernstfall/sandbox-postgres:15';

  const fixture = await ensureFixture(stateDir, roots[0]!, ownerUrl);
  console.log(`fixture: ${fixture.file} (${mib(fixture.sizeBytes)}, ${fixture.sizeBytes} bytes, written ${fixture.createdAt})`);

  // a fresh, migrated database of our own: no other test's rows, no other plans
  const service = await startRestoreService({ benchDb: BENCH_DB });
  try {
    const plan = {
      id: PLAN_ID,
      title: `Benchmark: pgbench scale ${SCALE} (${ROWS} rows)`,
      targets: { rto: '1h', rpo: '26h' },
      source: { type: 'file', path: fixture.file, settle: '2s', timezone: 'UTC' },
      restore: { driver: 'postgres', database: 'bench', ...(args.jobs && { jobs: args.jobs }) },
      sandbox: { memory: '2g', cpus: 2, timeout: '30m' },
      checks: [{ name: 'pgbench_accounts rows', sql: 'select count(*) from pgbench_accounts', expect: `== ${ROWS}` }],
    };
    await service.putPlan(plan);
    // a just-written dump must settle (2 s) before the source picks it
    const settleLeft = new Date(fixture.createdAt).getTime() + 2500 - Date.now();
    if (settleLeft > 0) await sleep(settleLeft);

    const viaErnstfall = async (): Promise<Sample> => {
      const { wallMs, phases } = await service.runToVerdict(PLAN_ID);
      return { wallMs, phases };
    };

    const ernstfall: Sample[] = [];
    const hand: Sample[] = [];
    const show = (label: string, s: Sample) => {
      const ph = PHASES.map((p) => `${p} ${sec(s.phases[p] ?? 0)}`).join(', ');
      console.log(`  ${label.padEnd(28)} ${sec(s.wallMs).padStart(8)}${Object.keys(s.phases).length ? `  (${ph})` : ''}`);
    };
    for (let i = 0; i < args.warmup; i++) {
      console.log(`warm-up ${i + 1}/${args.warmup} (not counted)`);
      show('ernstfall', await viaErnstfall());
      show('by hand', await byHand(fixture.file));
    }
    for (let i = 0; i < args.runs; i++) {
      console.log(`run ${i + 1}/${args.runs}`);
      const a = await viaErnstfall();
      ernstfall.push(a);
      show('ernstfall', a);
      const b = await byHand(fixture.file);
      hand.push(b);
      show('by hand', b);
    }

    const facts = await machineFacts();
    const result: Result = { runs: args.runs, warmup: args.warmup, jobs: args.jobs, fixture, facts, image, ernstfall, hand };
    const { markdown, ratio, met } = report(result);
    console.log(`\n${markdown}`);
    await writeFile(join(stateDir, 'bench', 'last-result.json'), `${JSON.stringify({ ...result, ratio, met }, null, 2)}\n`);
    if (args.write) console.log(`written: ${await writeBenchmarks(markdown)}`);
    if (!met) {
      console.error(`bench: target missed: ernstfall's median is ${ratio.toFixed(2)}× the by-hand median (target ≤ ${TARGET_RATIO}×); see the phase table for where the time goes`);
      return 1;
    }
    console.log(`bench: target met (${ratio.toFixed(2)}× ≤ ${TARGET_RATIO}×)`);
    return 0;
  } finally {
    await service.close();
  }
}

onInterrupt('bench');

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
