import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { asPostgres, dropHostDatabase, dumpHost, fileSize, hostPsql, makeHostDatabase, makeScratchDatabase, makeTempDir, truncateCopy } from '../fixtures/host-dumps.js';
import { copyFile } from 'node:fs/promises';

const SRC = 'ef_rt_fail_src';
const EMPTY = 'ef_rt_fail_empty';
let h: Harness;
let dir: string;
let custom: string;
let plain: string;

const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

beforeAll(async () => {
  dir = await makeTempDir('ef-failures-');
  await makeHostDatabase(SRC, { rows: 2000 });
  await makeScratchDatabase(EMPTY);
  custom = await dumpHost(SRC, 'custom', join(dir, 'good.dump'), { env: { TZ: 'Europe/Berlin' } });
  plain = await dumpHost(SRC, 'plain', join(dir, 'good.sql'), { env: { TZ: 'Europe/Berlin' } });
  // the official-shape image below is one the operator allows plans to name
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_SANDBOX_IMAGES: 'ef-test/official-shape:15' } });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await dropHostDatabase(EMPTY);
  await rm(dir, { recursive: true, force: true });
});

async function runPlan(id: string, path: string, over: Record<string, unknown> = {}) {
  await h.putPlan(pgPlan(id, path, over));
  const run = await h.waitForRun(await h.trigger(id));
  expect(await h.sandboxesLeft()).toBe(0);
  return run;
}

describe('broken backups never pass', () => {
  it('a custom dump cut in half: ARCHIVE_TRUNCATED, failed', async () => {
    const cut = join(dir, 'cut.dump');
    await truncateCopy(custom, cut, Math.floor((await fileSize(custom)) / 2));
    const run = await runPlan('cut-custom', cut);
    expect(run.verdict).toBe('failed');
    expect(codes(run), JSON.stringify(run.findings)).toContain('ARCHIVE_TRUNCATED');
    expect(run.checks.every((c: { status: string }) => c.status === 'skipped')).toBe(true);
    expect(run.rto.measuredSeconds).toBeNull();
    expect(run.rto.met).toBeNull();
  });

  it('a plain dump cut in half: ARCHIVE_TRUNCATED, failed (psql alone would have said 0)', async () => {
    const cut = join(dir, 'cut.sql');
    await truncateCopy(plain, cut, Math.floor((await fileSize(plain)) / 2));
    const run = await runPlan('cut-plain', cut, { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '>= 1' }] });
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toContain('ARCHIVE_TRUNCATED');
  });

  it('a plain dump cut right after a complete COPY block: psql exits 0, EXIT_CODE_LIED', async () => {
    const text = await readFile(plain, 'utf8');
    const copy = text.indexOf('COPY public.einwohner');
    const end = text.indexOf('\n\\.\n', copy) + 4;
    const cut = join(dir, 'cut-after-copy.sql');
    await writeFile(cut, text.slice(0, end));
    const run = await runPlan('lied', cut, { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 2000' }] });
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toEqual(expect.arrayContaining(['EXIT_CODE_LIED', 'ARCHIVE_TRUNCATED']));
    expect(run.restore.tool.exitCode).toBe(0);
  });

  it('SQL errors during the restore: RESTORE_ERROR, failed, without row data in the message', async () => {
    const text = await readFile(plain, 'utf8');
    const broken = join(dir, 'broken-stmt.sql');
    await writeFile(broken, text.replace('COPY public.einwohner', "INSERT INTO public.einwohner VALUES (1, 'Doppelt Datensatz', 'Köln', '1970-01-01');\nCOPY public.einwohner"));
    const run = await runPlan('sql-error', broken);
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toContain('RESTORE_ERROR');
    expect(JSON.stringify(run.findings)).not.toMatch(/Key \(id\)|Jürgen|Käthe/);
  });

  it('a file of random bytes: ARCHIVE_UNREADABLE, failed, no sandbox started', async () => {
    const junk = join(dir, 'junk.dump');
    await writeFile(junk, randomBytes(64 * 1024));
    const run = await runPlan('junk', junk);
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toEqual(['ARCHIVE_UNREADABLE']);
    expect(run.sandbox).toBeNull();
  });

  it('a dump of an empty database: EMPTY_RESTORE, failed', async () => {
    const run = await runPlan('empty-db', await dumpHost(EMPTY, 'custom', join(dir, 'empty.dump')));
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toContain('EMPTY_RESTORE');
  });

  it('a dump without an expected table: the check fails with what it found', async () => {
    await hostPsql('drop table meldung', SRC);
    const noTable = await dumpHost(SRC, 'custom', join(dir, 'no-meldung.dump'));
    await hostPsql('create table meldung (id int)', SRC);
    const run = await runPlan('no-table', noTable, { checks: [{ tableExists: { table: 'meldung' } }, { tableRows: { table: 'meldung', min: 1 } }] });
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toContain('CHECK_FAILED');
    expect(run.checks[0]).toMatchObject({ status: 'failed', actual: 'fehlt' });
    expect(run.checks[1].status).toBe('error');
  });

  it('a dump from a newer PostgreSQL than any image: VERSION_UNSUPPORTED, error', async () => {
    const newer = join(dir, 'newer.sql');
    const text = (await readFile(plain, 'utf8')).replace(/Dumped by pg_dump version [0-9.]+/, 'Dumped by pg_dump version 99.1').replace(/Dumped from database version [0-9.]+/, 'Dumped from database version 99.1');
    await writeFile(newer, text);
    const run = await runPlan('newer-pg', newer);
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('VERSION_UNSUPPORTED');
    expect(run.findings.find((f: { code: string }) => f.code === 'VERSION_UNSUPPORTED').message).toMatch(/99/);
  });

  it('a source outside the allowed roots is refused when the plan is stored (the worker refuses it again: sandbox-policy.test.ts)', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'ef-outside-'));
    const res = await h.request('PUT', '/api/v1/plans/outside', pgPlan('outside', join(outside, 'x.dump')));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(join(outside, 'x.dump'));
    await rm(outside, { recursive: true, force: true });
  });

  it('an expected SHA-256 that does not match fails before anything is restored', async () => {
    const run = await runPlan('wrong-sha', custom, { source: { path: custom, sha256: 'a'.repeat(64) } });
    expect(run.verdict).toBe('failed');
    expect(codes(run)).toContain('BACKUP_CHECKSUM_MISMATCH');
    expect(run.sandbox).toBeNull();
  });
});

describe('images shaped like the official postgres:N ones', () => {
  it('bypass their entrypoint, find the binaries, and leave no anonymous volume behind', async () => {
    const { execFileSync } = await import('node:child_process');
    const ctx = await mkdtemp(join(tmpdir(), 'ef-official-'));
    // --force-rm: a failed build leaves no intermediate container behind. FROM a local image: no registry; PATH without the PostgreSQL bin dir, a VOLUME, an entrypoint that would fail
    await writeFile(join(ctx, 'Dockerfile'), [
      'FROM ernstfall/sandbox-postgres:15',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      "RUN printf '#!/bin/sh\\nexit 1\\n' > /usr/local/bin/docker-entrypoint.sh && chmod +x /usr/local/bin/docker-entrypoint.sh",
      'VOLUME /var/lib/postgresql/data',
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["postgres"]',
    ].join('\n'));
    execFileSync('docker', ['build', '-q', '--force-rm', '-t', 'ef-test/official-shape:15', ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: 'ignore' });
    await rm(ctx, { recursive: true, force: true });
    // dangling ones only: volumes of sandboxes that other test files run meanwhile are in use, not left behind
    const volumes = () => execFileSync('docker', ['volume', 'ls', '-q', '--filter', 'dangling=true']).toString().split('\n').filter(Boolean).length;
    const before = volumes();
    const run = await runPlan('official-shape', custom, {
      restore: { driver: 'postgres', database: 'app', image: 'ef-test/official-shape:15' },
      checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 2000' }],
    });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox.image).toBe('ef-test/official-shape:15');
    expect(volumes()).toBe(before);
  });
});

describe('dump shapes and backup identity', () => {
  it('a plain `pg_dump --create` dump restores into its own database; the checks run there', async () => {
    const created = await dumpHost(SRC, 'plain', join(dir, 'create.sql'), { extraArgs: ['--create'] });
    const run = await runPlan('create-db', created, { restore: { driver: 'postgres', database: 'anders' }, checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 2000' }] });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.restore.database).toBe(SRC);
  });

  it('pg_dumpall output is refused with a clear finding, not a false alarm', async () => {
    const file = join(dir, 'cluster.sql');
    const r = await asPostgres('bash', ['-c', `pg_dumpall --globals-only > ${file}`]);
    expect(r.code).toBe(0);
    const run = await runPlan('dumpall', file);
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('DUMP_UNSUPPORTED');
  });

  it('a backup of the wrong size fails before restoring; the right size passes', async () => {
    const size = await fileSize(custom);
    const wrong = await runPlan('wrong-size', custom, { source: { path: custom, size: size + 1 } });
    expect(wrong.verdict).toBe('failed');
    expect(codes(wrong)).toContain('BACKUP_SIZE_MISMATCH');
    const right = await runPlan('right-size', custom, { source: { path: custom, size }, checks: [{ tableExists: { table: 'einwohner' } }] });
    expect(right.verdict).toBe('passed');
    expect(codes(right)).not.toContain('BACKUP_SIZE_MISMATCH');
    // an archive dump has its own creation time: the file time is not needed
    expect(codes(right)).not.toContain('BACKUP_TIME_FROM_FILE');
    expect(right.backup.createdAtSource).toBe('header');
  });

  it('a dump written on a UTC host is not reported an hour too old: the file time decides the zone, both readings are kept', async () => {
    const utcDump = await dumpHost(SRC, 'custom', join(dir, 'utc-host.dump'), { env: { TZ: 'UTC' } });
    const run = await runPlan('utc-host', utcDump, { checks: [{ tableExists: { table: 'einwohner' } }] });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.backup.createdAtZone).toBe('UTC');
    expect(Math.abs(Date.parse(run.backup.createdAt) - Date.parse(run.startedAt))).toBeLessThan(10 * 60_000);
    expect(run.rpo.backupAgeSeconds).toBeLessThan(600);
    expect(codes(run)).toContain('BACKUP_TIME_AMBIGUOUS');
    // written in Berlin and read in Berlin: one possible reading, nothing ambiguous
    const berlin = await runPlan('berlin-host', custom, { checks: [{ tableExists: { table: 'einwohner' } }] });
    expect(berlin.backup.createdAtZone).toBe('Europe/Berlin');
    expect(codes(berlin)).not.toContain('BACKUP_TIME_AMBIGUOUS');
  });

  it('a plain dump has no creation time in its header: the file time is used and said so', async () => {
    const run = await runPlan('plain-time', plain, { checks: [{ tableExists: { table: 'einwohner' } }] });
    expect(run.verdict).toBe('passed');
    expect(codes(run)).toContain('BACKUP_TIME_FROM_FILE');
    expect(run.backup.createdAtSource).toBe('file');
  });

  it('a plan without checks is flagged NO_CHECKS (a restore that exits 0 proves little)', async () => {
    const run = await runPlan('no-checks', custom, { checks: [] });
    expect(codes(run)).toContain('NO_CHECKS');
    expect(run.findings.find((f: { code: string }) => f.code === 'NO_CHECKS').severity).toBe('warning');
  });

  it('a backup whose name contains ":" is mounted and restored', async () => {
    const colon = join(dir, 'ewo-2026-11-28T01:39:12.dump');
    await copyFile(custom, colon);
    const run = await runPlan('colon', colon, { checks: [{ tableExists: { table: 'einwohner' } }] });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
  });
});

describe('targets and repeats', () => {
  it('an RTO shorter than the restore: failed with rto.met false', async () => {
    const run = await runPlan('short-rto', custom, { targets: { rto: '1ms', rpo: '26h' }, checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 2000' }] });
    expect(run.verdict).toBe('failed');
    expect(run.rto.met).toBe(false);
    expect(run.rto.measuredSeconds).toBeGreaterThan(0.001);
    expect(run.findings.filter((f: { severity: string }) => f.severity !== 'info').map((f: { code: string }) => f.code)).toEqual(['RTO_EXCEEDED']);
    expect(run.checks[0].status).toBe('passed');
  });

  it('a backup older than the RPO: failed with rpo.met false', async () => {
    const old = join(dir, 'old.sql');
    await writeFile(old, await readFile(plain));
    const t = new Date(Date.now() - 3 * 86_400_000);
    await utimes(old, t, t); // plain dumps have no creation time in the header: the file time counts
    const run = await runPlan('old-backup', old, { targets: { rto: '1h', rpo: '26h' } });
    expect(run.verdict).toBe('failed');
    expect(run.rpo.met).toBe(false);
    expect(run.rpo.backupAgeSeconds).toBeGreaterThan(3 * 86_400 - 60);
    expect(codes(run)).toContain('RPO_EXCEEDED');
  });

  it('the same backup twice: BACKUP_NOT_NEW on the second run, and the first run does not get it', async () => {
    await h.putPlan(pgPlan('twice', custom));
    const first = await h.waitForRun(await h.trigger('twice'));
    expect(first.verdict).toBe('passed');
    expect(codes(first)).not.toContain('BACKUP_NOT_NEW');
    const second = await h.waitForRun(await h.trigger('twice'));
    expect(codes(second)).toContain('BACKUP_NOT_NEW');
    expect(second.findings.find((f: { code: string }) => f.code === 'BACKUP_NOT_NEW').severity).toBe('warning');
    expect(second.verdict).toBe('passed');
  });
});
