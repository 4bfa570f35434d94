/**
 * What the benchmarks share: small helpers, and a whole ernstfall (API,
 * queue, worker, Docker sandboxes) in one process on a database of its own,
 * for the benchmarks that time real restore tests: the test harness
 * (tests/helpers/harness.ts, db.ts), not a copy of it.
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, rename } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { Config } from '../../services/config.js';
import { LABELS } from '../../workers/sandbox/docker.js';
import { namedDatabase, ownerQuery } from '../helpers/db.js';
import { startHarness, type Harness } from '../helpers/harness.js';

const run = promisify(execFile);

/** The benchmark could not measure (exit 2), as opposed to a missed target (exit 1). */
export class BenchError extends Error {}

let interrupted = false;
/** Ctrl-C once: the benchmark stops at its next wait and cleans up; twice: quit at once. */
export function onInterrupt(name: string): void {
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`${name}: interrupted; cleaning up (Ctrl-C again to quit at once)`);
  });
}

export const sleep = async (ms: number): Promise<void> => {
  await new Promise((r) => setTimeout(r, ms));
  if (interrupted) throw new BenchError('interrupted');
};

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
export const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Runs a command; stdout goes to `stdoutFd` if given, else is returned. Rejects with stderr on failure. */
export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdoutFd?: number; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new BenchError(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().slice(-800)}`))));
  });
}

/** Host PostgreSQL's bin folder, so pgbench and pg_dump match the server (pg_dump refuses newer servers); '' for the PATH. */
export async function hostBin(ownerUrl: string): Promise<string> {
  const r = await ownerQuery<{ v: string }>(ownerUrl, `select current_setting('server_version_num') as v`);
  const dir = `/usr/lib/postgresql/${Math.floor(Number(r[0]!.v) / 10000)}/bin`;
  return existsSync(join(dir, 'pgbench')) ? dir : '';
}

/** nproc, memory, Docker and Node, for the "Machine" line of a section. */
export async function machineFacts(): Promise<Record<string, string>> {
  const get = async (cmd: string, args: string[]) => (await run(cmd, args)).stdout.trim();
  const mem = (await get('free', ['-g'])).split('\n').find((l) => l.startsWith('Mem:'))?.split(/\s+/)[1] ?? '?';
  return {
    cpus: `${await get('nproc', [])} (${cpus()[0]?.model.trim() ?? 'unknown model'})`,
    memory: `${mem} GiB`,
    docker: `storage driver ${await get('docker', ['info', '--format', '{{.Driver}}'])}, engine ${await get('docker', ['version', '--format', '{{.Server.Version}}']).catch(() => '?')}`,
    node: process.version,
    date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
  };
}

export interface RunSample {
  id: string;
  wallMs: number;
  /** Phase name → duration as stored in the run. */
  phases: Record<string, number>;
  /** The run as `GET /api/v1/runs/{id}` answered it. */
  body: any;
}

export interface RestoreService {
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** PUT a plan through the API. */
  putPlan(plan: { id: string } & Record<string, unknown>): Promise<void>;
  /** POST a run and poll (every 100 ms) until its verdict is stored; a verdict other than `passed` is a BenchError. */
  runToVerdict(planId: string, timeoutMs?: number): Promise<RunSample>;
  close(): Promise<void>;
  /** The service's configuration, queue prefix and database URL (app role, the bench database): for workers in other processes. */
  config: Config;
  prefix: string;
  databaseUrl: string;
}

export interface RestoreServiceOptions {
  /** The bench's own database (ernstfall_bench_…): made afresh, dropped on close. */
  benchDb: string;
  /** More environment for the service's configuration (e.g. ERNSTFALL_WORKER_CONCURRENCY, ERNSTFALL_POOLS); wins over process.env. */
  env?: Record<string, string | undefined>;
  /**
   * A folder for the signing key (made there if missing), the trusted keys and the checkpoints. Without
   * it, a temporary folder (removed on close): a benchmark never signs with the installation's key nor
   * writes into its checkpoint folder (issue #14: the bench's chain has the same default tenant id).
   */
  evidenceDir?: string;
}

/**
 * The test harness (tests/helpers/harness.ts) on a fresh, migrated database
 * `benchDb` (dropped again on close): the real API, queue, worker and signer
 * in this process, with their own instance name, queue prefix and key, so no
 * other test's rows or jobs are seen. Backups come from the installation's
 * backup roots (read only), unless `env` names others.
 */
export async function startRestoreService(opts: RestoreServiceOptions): Promise<RestoreService> {
  const roots = opts.env?.ERNSTFALL_BACKUP_ROOTS ?? process.env.ERNSTFALL_BACKUP_ROOTS ?? '';
  const backupRoot = roots.split(':').find((r) => r.trim())?.trim();
  if (!backupRoot) throw new BenchError('no backup root (ERNSTFALL_BACKUP_ROOTS); run npm run setup');
  const database = await namedDatabase(opts.benchDb, { fresh: true });
  let h: Harness;
  try {
    h = await startHarness({
      database, backupRoot, keepBackupRoot: true, evidenceDir: opts.evidenceDir,
      env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ERNSTFALL_BACKUP_ROOTS: roots, ERNSTFALL_INSTANCE: `bench-${randomBytes(3).toString('hex')}`, ...opts.env },
    });
  } catch (err) {
    await database.drop().catch(() => undefined);
    throw err;
  }
  const api: RestoreService['api'] = async (method, path, body) => {
    const res = await h.request(method as 'GET', `/api/v1${path}`, body);
    return { status: res.status, body: res.body };
  };
  return {
    api,
    async putPlan(plan) {
      const put = await api('PUT', `/plans/${plan.id}`, plan);
      if (put.status !== 200 && put.status !== 201) throw new BenchError(`PUT plan: ${put.status} ${JSON.stringify(put.body)}`);
    },
    async runToVerdict(planId, timeoutMs = 35 * 60_000) {
      const t0 = performance.now();
      const post = await api('POST', `/plans/${planId}/runs`);
      if (post.status !== 202) throw new BenchError(`POST runs: ${post.status} ${JSON.stringify(post.body)}`);
      const id = post.body.id as string;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await api('GET', `/runs/${id}`);
        if (r.body?.status === 'finished') {
          const wallMs = performance.now() - t0;
          if (r.body.verdict !== 'passed') {
            const findings = (r.body.findings as { code: string; severity: string; message: string }[]).map((f) => `  ${f.code} (${f.severity}): ${f.message}`);
            const checks = (r.body.checks as { name: string; status: string; actual: string | null }[]).map((ch) => `  check ${ch.name}: ${ch.status} (${ch.actual ?? '-'})`);
            throw new BenchError(`ernstfall run ${id} ended ${r.body.verdict as string}, not passed:\n${[...findings, ...checks].join('\n')}`);
          }
          const phases: Record<string, number> = {};
          for (const p of r.body.phases as { name: string; durationMs: number }[]) phases[p.name] = p.durationMs;
          return { id, wallMs, phases, body: r.body };
        }
        if (Date.now() > deadline) throw new BenchError(`run ${id} did not finish within ${Math.round(timeoutMs / 60_000)} min`);
        await sleep(100);
      }
    },
    async close() {
      // the handler removes its sandboxes; this only catches an interrupted run
      const left = await h.c.docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${h.config.instance}`] } }).catch(() => []);
      for (const l of left) await h.c.docker.getContainer(l.Id).remove({ force: true, v: true }).catch(() => undefined);
      await h.close().catch((err: Error) => console.error(`bench: closing the service: ${err.message}`));
    },
    config: h.config,
    prefix: h.prefix,
    databaseUrl: database.appUrl,
  };
}

/**
 * Builds a database on the host cluster as the `postgres` OS user (so its
 * objects belong to `postgres`, a role every sandbox has), dumps it with
 * `pg_dump -Fc` into `file` (written aside, then renamed) and drops it
 * again. `fill` runs the tool that fills it (pgbench, psql …).
 */
export async function dumpHostDatabase(ownerUrl: string, db: string, file: string,
  fill: (run: (tool: string, args: string[]) => Promise<string>, port: string) => Promise<void>): Promise<void> {
  if (process.getuid?.() !== 0) throw new BenchError('building the fixture needs root (the PostgreSQL tools run as the postgres OS user via runuser)');
  const bin = await hostBin(ownerUrl);
  const tool = (name: string) => (bin ? join(bin, name) : name);
  const asPg = (name: string, args: string[], opts: { stdoutFd?: number } = {}) =>
    sh('runuser', ['-u', 'postgres', '--', tool(name), ...args], { ...opts, cwd: tmpdir(), env: { ...process.env, TZ: 'UTC', PGOPTIONS: '' } });
  const port = new URL(ownerUrl).port || '5432';
  await asPg('dropdb', ['-p', port, '--if-exists', db]);
  await asPg('createdb', ['-p', port, db]);
  try {
    await fill((name, args) => asPg(name, args), port);
    await mkdir(dirname(file), { recursive: true });
    await chmod(dirname(file), 0o755);
    const tmp = `${file}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o644);
    try {
      console.log(`fixture: pg_dump -Fc ${db} > ${file} …`);
      await asPg('pg_dump', ['-p', port, '-Fc', db], { stdoutFd: fh.fd });
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o644);
    await rename(tmp, file);
  } finally {
    await asPg('dropdb', ['-p', port, '--if-exists', db]).catch(() => undefined);
  }
}
