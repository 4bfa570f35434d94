import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { localWallTime, touchNow } from '../fixtures/test-clock.js';

/**
 * Issue #11: restic and borg repositories, made here with the real tools,
 * checked and restored in the files sandbox; their passwords only in files.
 */
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
let h: Harness;
let dir: string;
let tree: string;
let logs = '';
const FILES: Record<string, Buffer> = {
  'Bauamt/Anträge/Bauantrag Müller.pdf': Buffer.from('%PDF-1.4\n%%EOF\n'),
  'Kämmerei/Haushalt 2026.csv': Buffer.from('Konto;Betrag\n4711;1200,50\n'),
  'Standesamt/Geburt Ä Ö Ü ß.txt': Buffer.from('Urkunde\n'),
  'Archiv/daten.bin': randomBytes(3 * 1024 * 1024),
};

function tool(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string): string {
  return execFileSync(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

beforeAll(async () => {
  dir = await makeTempDir('ef-repos-');
  tree = join(dir, 'share');
  for (const [rel, content] of Object.entries(FILES)) {
    await mkdir(join(tree, rel, '..'), { recursive: true });
    await writeFile(join(tree, rel), content);
  }
  await writeFile(join(dir, 'restic.pw'), `${PASSWORD}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'wrong.pw'), 'not-the-password\n', { mode: 0o600 });
  const restic = (args: string[]) => tool('restic', ['-r', join(dir, 'restic'), '--password-file', join(dir, 'restic.pw'), '-q', ...args]);
  restic(['init']);
  // restic (Go) reads the kernel's clock, which npm run test:date-ahead does not move: the snapshot's time and the
  // files' times are the tests' clock, as if the backup had run by it
  await touchNow(tree);
  // the weekly snapshot an hour before the nightly one: --time has whole seconds, and both are made within one
  restic(['backup', '--tag', 'weekly', '--host', 'fileserver', '--time', localWallTime(new Date(Date.now() - 3_600_000)), tree]);
  await writeFile(join(tree, 'Kämmerei/Nachtrag.csv'), 'neu\n');
  await touchNow(join(tree, 'Kämmerei/Nachtrag.csv'));
  restic(['backup', '--tag', 'nightly', '--host', 'fileserver', '--time', localWallTime(new Date()), tree]);
  await rm(join(tree, 'Kämmerei/Nachtrag.csv'));
  // borg reads the passphrase from the environment here, as a backup job would
  const borgEnv = { BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: join(dir, 'borg-home') };
  tool('borg', ['init', '-e', 'repokey', join(dir, 'borg')], borgEnv);
  tool('borg', ['create', `${join(dir, 'borg')}::share-2026-12-05`, '.'], borgEnv, tree);
  tool('borg', ['create', `${join(dir, 'borg')}::other-2026-12-06`, 'Standesamt'], borgEnv, tree);
  await writeFile(join(dir, 'borg.pw'), PASSWORD, { mode: 0o600 });
  h = await startHarness({ backupRoot: dir, env: { LOG_LEVEL: 'debug' }, logSink: { write: (s: string) => { logs += s; } } });
});
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

const count = Object.keys(FILES).length;
const checks = [
  { files: { min: count } },
  { exists: { path: ['Standesamt/Geburt Ä Ö Ü ß.txt', 'Kämmerei/Haushalt 2026.csv'] } },
];
async function run(id: string, source: Record<string, unknown>, over: Record<string, unknown> = {}) {
  await h.putPlan({
    id, title: `Repo ${id}`, targets: { rto: '1h', rpo: '26h' }, source, restore: { driver: 'files' },
    sandbox: { memory: '512m', cpus: 1, timeout: '10m' }, checks, ...over,
  });
  // restic retries a missing pack for about a minute before it gives up
  return h.waitForRun(await h.trigger(id), 240_000);
}
const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);
const restic = (repo: string, over: Record<string, unknown> = {}) => ({ type: 'restic', repository: join(dir, repo), passwordFile: join(dir, 'restic.pw'), ...over });
const borg = (repo: string, over: Record<string, unknown> = {}) => ({ type: 'borg', repository: join(dir, repo), passphraseFile: join(dir, 'borg.pw'), ...over });

async function copyRepo(from: string, to: string): Promise<string> {
  await cp(join(dir, from), join(dir, to), { recursive: true });
  return to;
}
/** The repository's files under `sub`, biggest first (packs, segments). */
async function dataFiles(repo: string, sub: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(join(dir, repo, sub));
  return out;
}
async function flipBytes(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  const b = Buffer.alloc(64);
  await fh.read(b, 0, 64, at);
  for (let i = 0; i < b.length; i++) b[i] = b[i]! ^ 0xff;
  await fh.write(b, 0, 64, at);
  await fh.close();
}

describe('restic repositories', () => {
  it('the newest snapshot (by tag and host) is checked (all packs read) and restored: passed, its own time is the backup time', async () => {
    const r = await run('restic-ok', restic('restic', { tags: ['nightly'], host: 'fileserver', readData: '100%' }), {
      checks: [{ files: { min: count + 1 } }, { exists: { path: 'Kämmerei/Nachtrag.csv' } }],
    });
    expect(r.verdict, JSON.stringify(r.findings)).toBe('passed');
    expect(r.backup, JSON.stringify(r.backup)).toMatchObject({ format: 'restic', createdAtSource: 'snapshot', snapshotHost: 'fileserver', snapshotTags: 'nightly', snapshots: 1 });
    expect(r.backup.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(r.restore).toMatchObject({ tool: { name: 'restic', exitCode: 0 }, files: count + 1, check: { exitCode: 0, readData: '100%' } });
    const weekly = await run('restic-weekly', restic('restic', { tags: ['weekly'] }));
    expect(weekly.verdict, JSON.stringify(weekly.findings)).toBe('passed');
    expect(weekly.restore.files).toBe(count);
    expect(Date.parse(weekly.backup.createdAt)).toBeLessThan(Date.parse(r.backup.createdAt));
  });

  it('a deleted pack, a damaged pack, a wrong password, an unknown snapshot: never passed, each with its finding', async () => {
    const gone = await copyRepo('restic', 'restic-gone');
    const packs = await dataFiles(gone, 'data');
    await rm(packs[0]!);
    const r1 = await run('restic-gone', restic(gone));
    expect(r1.verdict).not.toBe('passed');
    expect(codes(r1)).toContain('REPOSITORY_DAMAGED');

    const bad = await copyRepo('restic', 'restic-bad');
    for (const p of await dataFiles(bad, 'data')) await flipBytes(p, 200);
    const r2 = await run('restic-bad', restic(bad, { readData: '100%' }));
    expect(r2.verdict).not.toBe('passed');
    expect(codes(r2)).toContain('REPOSITORY_DAMAGED');

    const r3 = await run('restic-pw', restic('restic', { passwordFile: join(dir, 'wrong.pw') }));
    expect(r3.verdict).toBe('failed');
    expect(codes(r3)).toContain('REPOSITORY_KEY_REJECTED');

    const r4 = await run('restic-none', restic('restic', { tags: ['monthly'] }));
    expect(r4.verdict).toBe('failed');
    expect(codes(r4)).toContain('SNAPSHOT_NOT_FOUND');
  }, 600_000);
});

describe('borg repositories', () => {
  it('the newest archive matching the pattern is checked (--verify-data) and extracted: passed, the archive time is the backup time', async () => {
    const r = await run('borg-ok', borg('borg', { match: 'share-*', verifyData: true }));
    expect(r.verdict, JSON.stringify(r.findings)).toBe('passed');
    expect(r.backup).toMatchObject({ format: 'borg', createdAtSource: 'archive', archive: 'share-2026-12-05', archives: 2 });
    expect(r.restore).toMatchObject({ tool: { name: 'borg', exitCode: 0 }, files: count, check: { exitCode: 0, verifyData: true } });
    // the copy was the sandbox user's; the original repository is untouched by borg's check
    expect(r.sandbox.backupMount).toBe('copy-writable-by-sandbox-user');
  });

  it('a damaged segment, a wrong passphrase: never passed, each with its finding', async () => {
    const bad = await copyRepo('borg', 'borg-bad');
    const segments = (await dataFiles(bad, 'data')).filter((f) => /\/\d+$/.test(f));
    for (const s of segments) await flipBytes(s, 100);
    const r1 = await run('borg-bad', borg(bad, { verifyData: true }));
    expect(r1.verdict).not.toBe('passed');
    expect(codes(r1)).toContain('REPOSITORY_DAMAGED');

    await writeFile(join(dir, 'wrong-borg.pw'), 'falsch');
    const r2 = await run('borg-pw', borg('borg', { passphraseFile: join(dir, 'wrong-borg.pw') }));
    expect(r2.verdict).toBe('failed');
    expect(codes(r2)).toContain('REPOSITORY_KEY_REJECTED');
  });
});

describe('secrets and plans', () => {
  it('the password is in no run, evidence record, attachment or log line', async () => {
    const runs = await h.c.db.selectFrom('runs').selectAll().execute();
    expect(runs.length).toBeGreaterThan(0);
    expect(JSON.stringify(runs)).not.toContain(PASSWORD);
    const ledger = await h.c.db.selectFrom('ledger_records').selectAll().execute();
    expect(ledger.length).toBeGreaterThan(0);
    expect(JSON.stringify(ledger)).not.toContain(PASSWORD);
    const attachments = await h.c.db.selectFrom('ledger_attachments').selectAll().execute();
    expect(JSON.stringify(attachments)).not.toContain(PASSWORD);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(PASSWORD);
  });

  it('a password file outside the tenant\'s roots is refused when the plan is stored and again by the worker', async () => {
    const outside = await h.request('PUT', '/api/v1/plans/restic-etc', {
      id: 'restic-etc', title: 'x', targets: { rto: '1h', rpo: '1d' }, restore: { driver: 'files' },
      source: { type: 'restic', repository: join(dir, 'restic'), passwordFile: '/etc/shadow' },
    });
    expect(outside.status).toBe(400);
    expect(JSON.stringify(outside.body)).toContain('the password file must be inside them');
    const pgRestic = await h.request('PUT', '/api/v1/plans/restic-pg', {
      id: 'restic-pg', title: 'x', targets: { rto: '1h', rpo: '1d' }, restore: { driver: 'postgres', database: 'app' },
      source: { type: 'restic', repository: join(dir, 'restic'), passwordFile: join(dir, 'restic.pw') },
    });
    expect(pgRestic.status).toBe(400);
    expect(JSON.stringify(pgRestic.body)).toContain('restored by the files driver');
  });
});
