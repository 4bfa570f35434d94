import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cp, mkdir, rm, stat, symlink, truncate } from 'node:fs/promises';
import { startHarness, type Harness } from '../helpers/harness.js';
import { ensureHostCluster, makeTempDir, run as host } from '../fixtures/host-dumps.js';
import { makePitrCluster, walNames, walVariant, type PitrFixture } from '../fixtures/pitr-cluster.js';

/**
 * Point-in-time recovery (decisions/020), for real: a PostgreSQL 15 cluster with WAL archiving,
 * a base backup, writes at known times, a "ransomware" DELETE; each case a run in the sandbox.
 */
let h: Harness;
let dir: string;
let fx: PitrFixture;

beforeAll(async () => {
  await ensureHostCluster(); // the host's PostgreSQL 15 binaries and the postgres OS user
  dir = await makeTempDir('ef-pitr-');
  fx = await makePitrCluster(dir);
  await walVariant(fx.wal, join(dir, 'wal-gap'), { remove: fx.secondBatchSegment });
  // a history saying timeline 2 left timeline 1 before this base backup began: the base is not on its path
  await walVariant(fx.wal, join(dir, 'wal-fork'), { history: { name: '00000002.history', content: '1\t0/1000000\tno recovery target specified\n' } });
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '1', ERNSTFALL_SANDBOX_TRANSFER: 'copy' } });
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Run = { verdict: string; findings: { code: string; severity: string; message: string }[]; checks: { name: string; status: string }[]; restore: any; backup: any; rpo: any };

function plan(id: string, target: unknown, opts: { base?: string; wal?: string; checks?: unknown[] } = {}) {
  return {
    id, title: `PITR ${id}`,
    targets: { rto: '1h', rpo: '26h' },
    source: { type: 'basebackup', path: opts.base ?? 'base-tar', wal: opts.wal ?? 'wal' },
    restore: { driver: 'postgres', database: 'app', pitr: { target } },
    sandbox: { memory: '1g', cpus: 1, timeout: '5m' },
    checks: opts.checks ?? [],
  };
}

async function runPlan(p: Record<string, unknown>): Promise<Run> {
  await h.putPlan(p);
  const run = (await h.waitForRun(await h.trigger(p.id as string), 170_000)) as Run;
  expect(await h.sandboxesLeft()).toBe(0);
  return run;
}

const PITR_CODES = ['PITR_WAL_GAP', 'PITR_TARGET_BEFORE_BASE', 'PITR_TARGET_AFTER_WAL', 'PITR_TIMELINE_MISMATCH'];
const codes = (r: Run) => r.findings.map((f) => f.code);
const rowsBack = { name: 'Einwohner vor dem Angriff', sql: 'select count(*) from einwohner', expect: '== 20' };

describe('point-in-time recovery', () => {
  it('a target before the ransomware DELETE gets the rows back (tar base backup) and passes', async () => {
    const run = await runPlan(plan('pitr-before', fx.beforeDelete, { checks: [rowsBack] }));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.checks.find((c) => c.name === rowsBack.name)?.status).toBe('passed');
    expect(codes(run).filter((c) => PITR_CODES.includes(c))).toEqual([]);
    const pitr = run.restore.pitr;
    expect(pitr.target).toBe(new Date(fx.beforeDelete).toISOString());
    // where replay ended, as PostgreSQL reported it: the last replayed commit is before the target, the DELETE was not replayed
    expect(Date.parse(pitr.lastReplayedAt)).toBeLessThanOrEqual(Date.parse(fx.beforeDelete));
    expect(Date.parse(pitr.lastReplayedAt)).toBeGreaterThan(Date.parse(fx.beforeBase));
    expect(pitr.stopped).toMatch(/^before commit of transaction \d+$/);
    expect(Date.parse(pitr.stoppedAtTransactionTime)).toBeGreaterThan(Date.parse(fx.beforeDelete));
    expect(pitr.base.timeline).toBe(1);
    expect(pitr.timeline).toBe(2);
    expect(pitr.lastReplayedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // the RPO's time is the archive's newest commit (the DELETE), read from the WAL by pg_waldump
    expect(run.backup.createdAtSource).toBe('wal');
    expect(Date.parse(run.backup.createdAt)).toBeGreaterThan(Date.parse(fx.beforeDelete));
    expect(Date.parse(run.backup.createdAt)).toBeLessThanOrEqual(Date.parse(fx.afterDelete));
    expect(run.backup.wal.files).toBeGreaterThan(3);
    expect(run.backup.wal.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('latest replays the whole archive: the rows are gone, and the checks decide', async () => {
    const run = await runPlan(plan('pitr-latest', 'latest', { checks: [rowsBack, { name: 'Protokoll', sql: 'select count(*) from protokoll', expect: '== 2' }] }));
    expect(run.verdict).toBe('failed');
    expect(run.checks.find((c) => c.name === rowsBack.name)?.status).toBe('failed');
    expect(run.checks.find((c) => c.name === 'Protokoll')?.status).toBe('passed');
    expect(codes(run)).toContain('CHECK_FAILED');
    expect(codes(run).filter((c) => PITR_CODES.includes(c))).toEqual([]);
    // with latest, the last replayed commit is the archive's newest one
    expect(run.restore.pitr.lastReplayedAt).toBe(run.backup.createdAt);
  });

  it('a plain-format base backup replays the same way', async () => {
    const run = await runPlan(plan('pitr-plain', fx.beforeDelete, { base: 'base-plain', checks: [rowsBack] }));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.backup.format).toBe('basebackup-plain');
  });

  it('a WAL segment removed from the archive gives PITR_WAL_GAP and never passes', async () => {
    const before = await runPlan(plan('pitr-gap', fx.beforeDelete, { wal: 'wal-gap', checks: [rowsBack] }));
    expect(before.verdict).toBe('failed');
    const gap = before.findings.find((f) => f.code === 'PITR_WAL_GAP');
    expect(gap?.message, JSON.stringify(before.findings)).toContain(fx.secondBatchSegment);
    expect(codes(before)).not.toContain('PITR_TARGET_AFTER_WAL');
    // latest: PostgreSQL would stop at the gap and promote without a word; the archive's names tell
    const latest = await runPlan(plan('pitr-gap-latest', 'latest', { wal: 'wal-gap' }));
    expect(latest.verdict).toBe('failed');
    expect(codes(latest)).toContain('PITR_WAL_GAP');
  });

  it('a target before the base backup gives PITR_TARGET_BEFORE_BASE (error)', async () => {
    const run = await runPlan(plan('pitr-early', fx.beforeBase, { checks: [rowsBack] }));
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('PITR_TARGET_BEFORE_BASE');
  });

  it('a target after the last archived WAL gives PITR_TARGET_AFTER_WAL', async () => {
    const late = new Date(Date.parse(fx.afterDelete) + 10 * 60_000).toISOString();
    const run = await runPlan(plan('pitr-late', late, { checks: [rowsBack] }));
    expect(run.verdict).toBe('failed');
    const f = run.findings.find((x) => x.code === 'PITR_TARGET_AFTER_WAL');
    expect(f?.message, JSON.stringify(run.findings)).toContain('recovery ended before configured recovery target was reached');
    expect(codes(run)).not.toContain('PITR_WAL_GAP');
  });

  it('an archive whose timeline history does not continue the base backup gives PITR_TIMELINE_MISMATCH', async () => {
    const run = await runPlan(plan('pitr-fork', 'latest', { wal: 'wal-fork' }));
    expect(run.verdict).toBe('failed');
    expect(codes(run), JSON.stringify(run.findings)).toContain('PITR_TIMELINE_MISMATCH');
  });
});

describe('point-in-time recovery, hostile backups', () => {
  // a backup is hostile input: what is in its folders is data, never followed, never waited on
  it('a WAL folder with a link to a host file, or a FIFO, named like the next segment: refused (error), never followed or waited on', async () => {
    const names = (await walNames(fx.wal)).filter((n) => /^[0-9A-F]{24}$/.test(n));
    const next = (BigInt(`0x${names.at(-1)!}`) + 1n).toString(16).toUpperCase().padStart(24, '0');
    const link = await walVariant(fx.wal, join(dir, 'wal-link'), {});
    await symlink('/etc/passwd', join(link, next));
    const fifo = await walVariant(fx.wal, join(dir, 'wal-fifo'), {});
    await host('mkfifo', [join(fifo, next)]);
    for (const [id, wal, what] of [['pitr-wal-link', 'wal-link', 'symbolic link'], ['pitr-wal-fifo', 'wal-fifo', 'FIFO']] as const) {
      const run = await runPlan(plan(id, fx.beforeDelete, { wal, checks: [rowsBack] }));
      expect(run.verdict, JSON.stringify(run.findings)).toBe('error');
      const f = run.findings.find((x) => x.code === 'SOURCE_NOT_REGULAR');
      expect(f?.message, JSON.stringify(run.findings)).toContain(`${wal}/${next}`);
      expect(f?.message.toLowerCase()).toContain(what.toLowerCase());
      expect(JSON.stringify(run)).not.toContain('root:x:0');
    }
  });

  it('a FIFO where base.tar should be: refused as not a regular file (error), never opened', async () => {
    const base = join(dir, 'base-fifo');
    await mkdir(base);
    await host('mkfifo', [join(base, 'base.tar')]);
    const run = await runPlan(plan('pitr-fifo-base', 'latest', { base: 'base-fifo' }));
    expect(run.verdict).toBe('error');
    expect(codes(run), JSON.stringify(run.findings)).toContain('SOURCE_NOT_REGULAR');
  });

  it('a base archive cut in half: never passed, and the cut is named', async () => {
    const base = join(dir, 'base-cut');
    await cp(fx.tarBase, base, { recursive: true });
    const tarFile = join(base, 'base.tar');
    await truncate(tarFile, Math.floor((await stat(tarFile)).size / 2));
    const run = await runPlan(plan('pitr-cut-base', 'latest', { base: 'base-cut' }));
    expect(run.verdict).not.toBe('passed');
    expect(run.findings.length, JSON.stringify(run.findings)).toBeGreaterThan(0);
    expect(codes(run).some((c) => ['ARCHIVE_TRUNCATED', 'ARCHIVE_UNREADABLE', 'RESTORE_ERROR'].includes(c)), JSON.stringify(run.findings)).toBe(true);
  });

  it('a plain base backup without backup_label is no base backup: refused with the reason', async () => {
    const base = join(dir, 'base-nolabel');
    await cp(fx.plainBase, base, { recursive: true });
    await rm(join(base, 'backup_label'));
    const run = await runPlan(plan('pitr-no-label', 'latest', { base: 'base-nolabel' }));
    expect(run.verdict).toBe('error');
    expect(run.findings.map((f) => f.message).join(' '), JSON.stringify(run.findings)).toContain('no pg_basebackup folder');
  });
});

describe('point-in-time recovery, bind-mounted', () => {
  it('mounts the base backup and the WAL archive read-only in place and replays as with a copy', async () => {
    // the archive's files are the cluster's (0600): readable for the sandbox's postgres only when the operator lets it
    const b = await startHarness({ backupRoot: dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '1', ERNSTFALL_SANDBOX_TRANSFER: 'bind' } });
    try {
      await host('chmod', ['-R', 'a+rX', dir]);
      const p = plan('pitr-bind', fx.beforeDelete, { checks: [rowsBack] });
      await b.putPlan(p);
      const run = (await b.waitForRun(await b.trigger('pitr-bind'), 170_000)) as Run & { sandbox: { transfer: string } };
      expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
      expect(run.sandbox.transfer).toBe('bind');
      expect(run.backup.wal.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await b.sandboxesLeft()).toBe(0);
    } finally {
      // the harness removes its backup root on close: this one is shared, so only the rest is closed here
      await b.worker?.close();
      await b.signer.stop();
      await b.app.close();
      await b.c.queue.obliterate().catch(() => undefined);
      await b.c.close();
      await b.tdb.drop();
    }
  });
});
