import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PlanService } from '../plans/plan.service.js';

/** The built-in plan that restore-tests ernstfall's own backup (docs/operations.md "ernstfall tests its own backup"). */
export const SELF_TEST_PLAN_ID = 'ernstfall-selbsttest';
const PREFIX = 'ernstfall-';
/** Only dumps this module wrote: an operator's own `ernstfall-before-upgrade.dump` is never counted or removed. */
const OURS = /^ernstfall-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.dump$/;

/** When a dump was made, by the business clock that named it (not the file's time). */
function dumpTime(name: string): Date | undefined {
  const m = OURS.exec(name);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

export interface SelfBackupConfig {
  /** Where the dumps go; inside the default tenant's backup roots, so the built-in plan may read them. */
  dir: string;
  /** How many dumps are kept (the newest). */
  keep: number;
  /** The database to dump: the owner's URL (it may read every table); the password goes by environment, never argv. */
  databaseUrl: string;
  /** The trusted public keys (ERNSTFALL_TRUSTED_KEYS_DIR): copied along, so the evidence can be verified after a restore. Never the private key. */
  trustedKeysDir: string;
}

export interface SelfBackupResult { file: string; sha256: string; sizeBytes: number; keys: string[]; removed: string[] }

/** pg_dump's arguments and environment for a connection URL: host, port, user and database in argv, the password only in PGPASSWORD. */
export function pgDumpCommand(databaseUrl: string, file: string): { args: string[]; env: Record<string, string> } {
  const u = new URL(databaseUrl);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const args = ['--format=custom', '--no-owner', '--no-privileges', `--file=${file}`,
    `--host=${u.hostname || '127.0.0.1'}`, `--port=${u.port || '5432'}`, `--username=${decodeURIComponent(u.username)}`, `--dbname=${db}`];
  return { args, env: { PGPASSWORD: decodeURIComponent(u.password), PGCONNECT_TIMEOUT: '10', ...(u.searchParams.get('sslmode') && { PGSSLMODE: u.searchParams.get('sslmode')! }) } };
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * ernstfall backs itself up: a custom-format dump of its database (runs,
 * the evidence ledger, plans, users, measures) and the trusted public keys,
 * into a folder the built-in plan restore-tests like any other backup. The
 * dump is written under a temporary name and renamed when complete (so the
 * plan never picks a half-written one), readable by its owner only (it holds
 * password hashes and second-factor secrets), with a sha256sum-style line
 * beside it; older dumps beyond `keep` are removed.
 */
export async function selfBackup(cfg: SelfBackupConfig, now: Date, log?: Logger): Promise<SelfBackupResult> {
  await mkdir(cfg.dir, { recursive: true, mode: 0o750 });
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const name = `${PREFIX}${stamp}.dump`;
  const file = join(cfg.dir, name);
  const partial = `${file}.partial`;
  // created owner-only before pg_dump writes into it (it truncates, the mode stays): never readable by others, not even while written
  await (await open(partial, 'wx', 0o600)).close();
  const { args, env } = pgDumpCommand(cfg.databaseUrl, partial);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('pg_dump', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_MESSAGES: 'C', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump failed (exit ${code}): ${stderr.trim().split('\n').at(-1) ?? ''}`))));
  }).catch(async (err: Error) => {
    await rm(partial, { force: true });
    throw err;
  });
  await chmod(partial, 0o600);
  await rename(partial, file);
  const sha256 = await sha256File(file);
  const sizeBytes = (await stat(file)).size;
  await writeFile(`${file}.sha256`, `${sha256}  ${name}\n`, { mode: 0o644 });

  // the public keys, so a restored ledger can be verified without the old server
  const keysDir = join(cfg.dir, 'keys');
  await mkdir(keysDir, { recursive: true });
  const keys: string[] = [];
  for (const k of (await readdir(cfg.trustedKeysDir).catch(() => [] as string[])).filter((n) => n.endsWith('.pem')).sort()) {
    const text = await readFile(join(cfg.trustedKeysDir, k), 'utf8');
    if (/PRIVATE KEY/.test(text)) continue; // never a private key, whatever lies in the folder
    await copyFile(join(cfg.trustedKeysDir, k), join(keysDir, k));
    keys.push(k);
  }

  const dumps = (await readdir(cfg.dir)).filter((n) => OURS.test(n)).sort();
  const removed = dumps.slice(0, Math.max(0, dumps.length - Math.max(1, cfg.keep)));
  for (const old of removed) {
    await rm(join(cfg.dir, old), { force: true });
    await rm(join(cfg.dir, `${old}.sha256`), { force: true });
  }
  log?.info({ file, sizeBytes, keys: keys.length, removed: removed.length }, 'ernstfall backed itself up');
  return { file, sha256, sizeBytes, keys, removed };
}

/** The built-in plan: restore the newest self-backup daily and check that runs, plans and the evidence ledger came back. */
export function selfTestPlan(dir: string, schedule = '30 3 * * *'): Record<string, unknown> {
  return {
    id: SELF_TEST_PLAN_ID,
    title: 'ernstfall – eigene Datenbank (Selbsttest)',
    system: { name: 'ernstfall', process: 'Nachweis der Wiederherstellungstests', protectionNeed: 'hoch' },
    targets: { rto: '1h', rpo: '26h' },
    cadence: { schedule, timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT12H' },
    // the dumps this module writes (ernstfall-20261207T013000Z.dump), not an operator's own ernstfall-*.dump
    source: { type: 'file', path: dir, match: `${PREFIX}2*Z.dump` },
    restore: { driver: 'postgres', database: 'ernstfall' },
    checks: [
      { tableExists: { table: 'public.runs' } },
      { tableExists: { table: 'public.plans' } },
      { name: 'Nachweiskette vorhanden', sql: 'select count(*) from ledger_records', expect: '>= 1' },
      { name: 'Signaturschlüssel registriert', sql: 'select count(*) from signing_keys', expect: '>= 1' },
    ],
    controls: ['BSI-CON.3.A15', 'ISO27001-A.8.13', 'ISO27001-A.5.33'],
  };
}

/** Creates the built-in plan once (the default tenant, over the plan service like any PUT); an existing plan is left as the operator made it. */
export async function ensureSelfTestPlan(plans: PlanService, tenantId: string, dir: string): Promise<'created' | 'exists'> {
  if (await plans.repo.get(tenantId, SELF_TEST_PLAN_ID)) return 'exists';
  await plans.put(tenantId, SELF_TEST_PLAN_ID, JSON.stringify(selfTestPlan(dir)), 'json', { actor: { kind: 'system', name: 'ernstfall self-backup' } });
  return 'created';
}

/**
 * The daily self-backup in the scheduler: once a day after `time`
 * (Europe/Berlin), a dump; a failure is logged and tried again at the next
 * check (every minute), and the built-in plan then reports the backup's age
 * (RPO) like any other.
 */
export class SelfBackupSchedule {
  private timer?: NodeJS.Timeout;
  private lastDay: string | undefined;
  private running = false;
  constructor(
    private readonly cfg: SelfBackupConfig & { time: string }, private readonly clock: () => Date, private readonly log: Logger,
    /** Runs the backup only where this lock is had (one scheduler of several); default: always. */
    private readonly exclusive: <T>(fn: () => Promise<T>) => Promise<T | undefined> = (fn) => fn(),
  ) {}

  private day(at: Date): string {
    return new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Berlin' }).format(at);
  }

  /** The Berlin day of the newest dump, by its name. */
  private async newestDay(): Promise<string | undefined> {
    const newest = (await readdir(this.cfg.dir).catch(() => [] as string[])).filter((n) => OURS.test(n)).sort().at(-1);
    const at = newest ? dumpTime(newest) : undefined;
    return at ? this.day(at) : undefined;
  }

  /** Runs the backup when today's is due and not done; returns the result if it ran. */
  async tick(): Promise<SelfBackupResult | undefined> {
    if (this.running) return undefined;
    const now = this.clock();
    const hm = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(now);
    const today = this.day(now);
    if (this.lastDay === undefined) {
      // after a restart: today's dump may exist already (the newest file's time, in Berlin)
      this.lastDay = (await this.newestDay()) ?? '';
    }
    if (this.lastDay === today || hm < this.cfg.time) return undefined;
    this.running = true;
    try {
      const r = await this.exclusive(async () => {
        // another scheduler may have made today's while this one waited
        if ((await this.newestDay()) === today) return undefined;
        return selfBackup(this.cfg, now, this.log);
      });
      this.lastDay = today;
      return r;
    } catch (err) {
      this.log.error({ err: (err as Error).message, dir: this.cfg.dir }, 'self-backup failed; tried again in a minute');
      return undefined;
    } finally {
      this.running = false;
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), 60_000);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
