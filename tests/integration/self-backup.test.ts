import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { ensureSelfTestPlan, pgDumpCommand, SelfBackupSchedule, selfBackup, SELF_TEST_PLAN_ID } from '../../services/ops/self-backup.js';

/**
 * Issue #13 "ernstfall tests itself": its own database and public keys are
 * dumped into a folder inside the backup roots, and the built-in plan
 * restore-tests the newest dump in a real sandbox — its evidence in the same
 * ledger. No private key and no password leave the places they belong.
 */
let h: Harness;
let root: string;
let dir: string;

beforeAll(async () => {
  root = await makeTempDir('ef-self-');
  dir = join(root, 'ernstfall');
  h = await startHarness({ backupRoot: root });
}, 60_000);
afterAll(async () => {
  await h?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const cfg = () => ({ dir, keep: 2, databaseUrl: h.tdb.ownerUrl, trustedKeysDir: h.config.evidence.trustedKeysDir });

describe('ernstfall backs itself up and restore-tests the dump', () => {
  it('hands pg_dump the password by environment only, never in argv', () => {
    const { args, env } = pgDumpCommand('postgres://ernstfall_owner:s3cr%C3%A9t-pw@db.example:5433/ernstfall?sslmode=require', '/x/y.dump');
    expect(args.join(' ')).not.toContain('s3cr');
    expect(args).toEqual(expect.arrayContaining(['--host=db.example', '--port=5433', '--username=ernstfall_owner', '--dbname=ernstfall', '--format=custom']));
    expect(env).toMatchObject({ PGPASSWORD: 's3crét-pw', PGSSLMODE: 'require' });
  });

  it('writes a complete custom-format dump (owner-only), its sha256 line and the public keys, keeping the newest two', async () => {
    // a private key lying in the trusted folder by mistake is never copied
    await writeFile(join(h.config.evidence.trustedKeysDir, 'zz-mistake.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const first = await selfBackup(cfg(), new Date('2026-12-05T01:30:00Z'));
    const bytes = await readFile(first.file);
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('PGDMP');
    expect(first.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(await readFile(`${first.file}.sha256`, 'utf8')).toBe(`${first.sha256}  ernstfall-20261205T013000Z.dump\n`);
    expect((await stat(first.file)).mode & 0o777).toBe(0o600);
    const keys = await readdir(join(dir, 'keys'));
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(keys).not.toContain('zz-mistake.pem');
    for (const k of keys) expect(await readFile(join(dir, 'keys', k), 'utf8')).toContain('PUBLIC KEY');
    await selfBackup(cfg(), new Date('2026-12-06T01:30:00Z'));
    const third = await selfBackup(cfg(), new Date('2026-12-07T01:30:00Z'));
    expect(third.removed).toEqual(['ernstfall-20261205T013000Z.dump']);
    // an operator's own dump of that prefix is neither counted nor removed
    await writeFile(join(dir, 'ernstfall-vor-dem-upgrade.dump'), 'x');
    const fourth = await selfBackup(cfg(), new Date('2026-12-07T02:30:00Z'));
    expect(fourth.removed).toEqual(['ernstfall-20261206T013000Z.dump']);
    expect(await readdir(dir)).toContain('ernstfall-vor-dem-upgrade.dump');
    await rm(join(dir, 'ernstfall-vor-dem-upgrade.dump'));
    expect((await readdir(dir)).filter((n) => n.endsWith('.dump')).sort()).toEqual(['ernstfall-20261207T013000Z.dump', 'ernstfall-20261207T023000Z.dump']);
    await rm(join(h.config.evidence.trustedKeysDir, 'zz-mistake.pem'));
  });

  it('a failing pg_dump leaves no half-written file and says why', async () => {
    const before = await readdir(dir);
    const bad = { ...cfg(), databaseUrl: h.tdb.ownerUrl.replace(/\/[^/?]+(\?|$)/, '/gibt_es_nicht$1') };
    await expect(selfBackup(bad, new Date('2026-12-08T01:30:00Z'))).rejects.toThrow(/pg_dump failed \(exit 1\).*gibt_es_nicht/);
    expect(await readdir(dir)).toEqual(before);
  });

  it('the daily schedule runs once a day after its time', async () => {
    let now = new Date('2026-12-09T00:00:00Z'); // 01:00 Berlin: before 02:30
    const job = new SelfBackupSchedule({ ...cfg(), time: '02:30' }, () => now, h.c.log);
    expect(await job.tick()).toBeUndefined();
    now = new Date('2026-12-09T01:31:00Z'); // 02:31 Berlin
    expect((await job.tick())?.file).toContain('ernstfall-20261209T013100Z.dump');
    now = new Date('2026-12-09T05:00:00Z');
    expect(await job.tick()).toBeUndefined();
  });

  it('the built-in plan restores the newest dump in a sandbox and finds runs, plans and the evidence ledger: passed, in the same ledger', async () => {
    expect(await ensureSelfTestPlan(h.c.plans, DEFAULT_TENANT_ID, dir)).toBe('created');
    expect(await ensureSelfTestPlan(h.c.plans, DEFAULT_TENANT_ID, dir)).toBe('exists');
    // fresh now, so the backup is not older than the RPO for the run
    await selfBackup(cfg(), new Date());
    const run = await h.waitForRun(await h.trigger(SELF_TEST_PLAN_ID), 180_000);
    expect(run.verdict, JSON.stringify({ findings: run.findings, checks: run.checks })).toBe('passed');
    expect(run.backup.path).toMatch(/ernstfall-\d{8}T\d{6}Z\.dump$/);
    expect(run.checks.map((c: { status: string }) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    const ev = await h.request('GET', `/api/v1/runs/${run.id}/evidence`);
    expect(ev.body.verified).toMatchObject({ hash: true, signature: true });
  }, 240_000);
});
