/**
 * `npm run bench:files [-- --runs N] [--warmup N] [--write]`
 *
 * A restore test of a share of 100,000 files (a folder source) through the
 * real API, queue, worker and files sandbox: how long the inventory and the
 * ransomware indicators take (the restore phase of a folder: walk, read 8 KiB
 * of every file, judge it), and how much memory the worker process needs
 * meanwhile. Targets: restore phase under 60 s; the worker's RSS grows by
 * less than 200 MB. A benchmark measures speed; it is not a test.
 *
 * Exit 0: targets met; 1: a target missed; 2: the benchmark could not measure.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs, writeBenchmarkSection } from './bench-doc.js';
import { BenchError, machineFacts, median, onInterrupt, sec, sleep, startRestoreService } from './bench-kit.js';
import { loadEnvFile } from '../../services/config.js';

const FILES = 100_000;
const FOLDERS = 100;
const TARGET_SECONDS = 60;
const TARGET_RSS_MB = 200;
const SECTION = '## Files: 100,000 files, inventory and ransomware indicators';
const FIXTURE_VERSION = 2;

interface Args { runs: number; warmup: number; write: boolean }
function parseArgs(argv: string[]): Args {
  const a = benchArgs(argv, { numbers: { runs: 1, warmup: 0 }, switches: ['write'] }, (m) => new BenchError(m));
  return { runs: (a.runs as number | undefined) ?? 3, warmup: (a.warmup as number | undefined) ?? 1, write: a.write === true };
}

/** 100 folders of 1,000 files: text, CSV, PDF and JPEG heads, random binaries; about 4 KiB each. Cached. */
async function ensureTree(root: string): Promise<{ dir: string; bytes: number }> {
  const dir = join(root, 'bench', 'share-100k');
  // beside the tree, not in it: the tree holds exactly FILES files
  const manifest = `${dir}.fixture.json`;
  try {
    const m = JSON.parse(await readFile(manifest, 'utf8')) as { version: number; bytes: number };
    if (m.version === FIXTURE_VERSION) return { dir, bytes: m.bytes };
  } catch { /* build it */ }
  console.log(`fixture: writing ${FILES.toLocaleString('en')} files into ${dir} …`);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  let bytes = 0;
  const t0 = performance.now();
  for (let f = 0; f < FOLDERS; f++) {
    const folder = join(tmp, `Amt-${String(f).padStart(3, '0')}`, 'Akten');
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < FILES / FOLDERS; i++) {
      const kind = i % 5;
      const body = kind === 0 ? Buffer.from(`Vermerk ${f}/${i}\n${'Sachstand unverändert. '.repeat(150)}`)
        : kind === 1 ? Buffer.from(`Nr;Name;Betrag\n${Array.from({ length: 120 }, (_, k) => `${k};Müller;${k * 3}`).join('\n')}`)
          : kind === 2 ? Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(3500)])
            : kind === 3 ? Buffer.concat([Buffer.from('ffd8ffe000104a464946', 'hex'), randomBytes(3500)])
              : randomBytes(3000);
      const name = ['Vermerk.txt', 'Liste.csv', 'Bescheid.pdf', 'Foto.jpg', 'Daten.bin'][kind]!;
      await writeFile(join(folder, `${i}-${name}`), body);
      bytes += body.length;
    }
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  await writeFile(manifest, JSON.stringify({ version: FIXTURE_VERSION, bytes }));
  console.log(`fixture: written in ${sec(performance.now() - t0)}`);
  return { dir, bytes };
}

interface Sample { wallMs: number; phases: Record<string, number>; rssGrowMB: number; files: number; judged: string }

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL;
  const appUrl = process.env.DATABASE_URL;
  const roots = (process.env.ERNSTFALL_BACKUP_ROOTS ?? '').split(':').filter(Boolean);
  if (!ownerUrl || !appUrl || roots.length === 0) throw new BenchError('DATABASE_OWNER_URL, DATABASE_URL and ERNSTFALL_BACKUP_ROOTS are needed; run npm run setup');
  const tree = await ensureTree(roots[0]!);
  const service = await startRestoreService({ benchDb: 'ernstfall_bench_files' });
  try {
    await service.putPlan({
      id: 'bench-share-100k', title: 'Benchmark: 100,000 files', targets: { rto: '2h', rpo: '3650d' },
      source: { type: 'file', path: tree.dir, settle: '1s' }, restore: { driver: 'files' },
      sandbox: { memory: '1g', cpus: 2, timeout: '60m' }, checks: [{ files: { min: FILES } }],
    });
    const once = async (): Promise<Sample> => {
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
      try {
        const s = await service.runToVerdict('bench-share-100k', 60 * 60_000);
        const ransomware = (s.body.restore.builtin as { name: string; actual: string }[]).find((b) => b.name === 'ransomware');
        return { wallMs: s.wallMs, phases: s.phases, rssGrowMB: (peak - before) / 1e6, files: s.body.restore.files as number, judged: ransomware?.actual ?? '' };
      } finally {
        clearInterval(timer);
      }
    };
    for (let i = 0; i < args.warmup; i++) console.log(`warm-up: ${sec((await once()).wallMs)}`);
    const samples: Sample[] = [];
    for (let i = 0; i < args.runs; i++) {
      const s = await once();
      samples.push(s);
      console.log(`run ${i + 1}/${args.runs}: wall ${sec(s.wallMs)}, provision ${sec(s.phases.provision ?? 0)}, restore ${sec(s.phases.restore ?? 0)}, verify ${sec(s.phases.verify ?? 0)}, RSS +${s.rssGrowMB.toFixed(0)} MB`);
      await sleep(500);
    }
    if (samples.some((s) => s.files !== FILES)) throw new BenchError(`the inventory counted ${samples.map((s) => s.files).join(', ')} files, not ${FILES}`);
    const restore = median(samples.map((s) => s.phases.restore ?? 0));
    const rss = Math.max(...samples.map((s) => s.rssGrowMB));
    const met = restore / 1000 <= TARGET_SECONDS && rss <= TARGET_RSS_MB;
    const facts = await machineFacts();
    const m = (xs: number[]) => sec(median(xs));
    const md = [
      SECTION, '', `Measured ${facts.date} with`, '', '```sh', `npm run bench:files -- --runs ${args.runs}${args.warmup !== 1 ? ` --warmup ${args.warmup}` : ''} --write`, '```', '',
      `- Machine (nproc, free -g, docker info, node): ${facts.cpus} CPUs, ${facts.memory} RAM, Docker ${facts.docker}, Node ${facts.node}.`,
      `- Backup: a folder of ${FILES.toLocaleString('en')} files in ${FOLDERS} folders (text, CSV, PDF and JPEG heads, random binaries; ${(tree.bytes / 2 ** 20).toFixed(0)} MiB), ` +
        'tested as `source: {type: file, path: <folder>}` with `restore: {driver: files}` through the real API, queue, worker and files sandbox.',
      `- ${args.runs} measured run(s) after ${args.warmup} warm-up run(s); RSS is the worker process's (the API, queue and worker run in one process here), sampled every 50 ms, peak minus the value before the run.`,
      '',
      '| phase | median | what happens |', '|---|---:|---|',
      `| provision | ${m(samples.map((s) => s.phases.provision ?? 0))} | copy the ${FILES.toLocaleString('en')} files into the sandbox, hashed on the way (one tar stream) |`,
      `| restore | **${m(samples.map((s) => s.phases.restore ?? 0))}** | the inventory: walk, read 8 KiB of every file, stream one JSON line per entry to the worker, which judges each file (notes, extensions, signature, entropy) |`,
      `| verify | ${m(samples.map((s) => s.phases.verify ?? 0))} | the built-in results and the plan's check |`,
      `| whole run | ${m(samples.map((s) => s.wallMs))} | POST → verdict stored |`,
      '',
      `Ransomware check on the last run: ${samples.at(-1)!.judged}. Worker RSS growth, highest of the runs: **${rss.toFixed(0)} MB**.`,
      '',
      `**Targets: indicators over ${FILES.toLocaleString('en')} files (the restore phase) ≤ ${TARGET_SECONDS} s — ${restore / 1000 <= TARGET_SECONDS ? 'met' : 'not met'}; worker RSS growth ≤ ${TARGET_RSS_MB} MB — ${rss <= TARGET_RSS_MB ? 'met' : 'not met'}.**`,
      '',
    ].join('\n');
    console.log(`\n${md}`);
    if (args.write) console.log(`written: ${await writeBenchmarkSection(SECTION, md)}`);
    return met ? 0 : 1;
  } finally {
    await service.close();
  }
}

onInterrupt('bench');
main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench: ${err instanceof BenchError ? err.message : err.stack ?? err.message}`);
  process.exit(2);
});
