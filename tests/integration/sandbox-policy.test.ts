import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { copyFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir, run as sh } from '../fixtures/host-dumps.js';
import { planContentHash, parsePlanText } from '../../services/plans/plan.parser.js';

/**
 * The operator's policy holds against a tenant: each tenant reads only its
 * own backup roots (checked when a plan is stored and again when it runs),
 * plans name only allowed images and stay within the operator's bounds, and
 * a backup path that is not a regular file is refused before anything opens it.
 */
const SRC = 'ef_policy_src';
const OTHER_TENANT = '00000000-0000-4000-8000-00000000b0b0';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let h: Harness;
let base: string;
let rootA: string; // the default tenant's
let rootB: string; // Nachbarstadt's
let secretDump: string;
let otherToken: string;

const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);
const asOther = (method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${otherToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, payload: body ? JSON.stringify(body) : undefined })
    .then((r) => ({ status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined }));

beforeAll(async () => {
  base = await makeTempDir('ef-policy-');
  rootA = await makeTempDir('ef-policy-musterstadt-');
  rootB = await makeTempDir('ef-policy-nachbarstadt-');
  await makeHostDatabase(SRC, { rows: 500 });
  secretDump = await dumpHost(SRC, 'custom', join(rootA, 'einwohner.dump'));
  await copyFile(secretDump, join(rootB, 'eigene.dump'));
  const rootsFile = join(base, 'tenant-roots.yaml');
  await writeFile(rootsFile, `# operator: which folders each tenant may read\nnachbarstadt: [${rootB}]\n`);
  h = await startHarness({
    backupRoot: rootA,
    env: { ERNSTFALL_TENANT_ROOTS_FILE: rootsFile, ERNSTFALL_SANDBOX_MAX_MEMORY: '2g', ERNSTFALL_SANDBOX_MAX_PIDS: '1024', ERNSTFALL_SANDBOX_IMAGES: 'ernstfall/sandbox-postgres:17' },
  });
  const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
  await owner.connect();
  otherToken = `ef_${randomBytes(32).toString('base64url')}`;
  await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbarstadt', 'Nachbarstadt', $2)`, [OTHER_TENANT, h.c.clock()]);
  await owner.query(`insert into api_tokens (id, tenant_id, name, role, token_hash, created_by, created_at) values ($1, $2, 'Nachbar Admin', 'admin', $3, 'test', $4)`,
    [randomUUID(), OTHER_TENANT, sha256(otherToken), h.c.clock()]);
  await owner.end();
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  for (const d of [base, rootB]) await rm(d, { recursive: true, force: true });
});

/** A plan stored as if the policy had allowed it when it was written (the operator tightened it since). */
async function storeBehindThePolicy(tenantId: string, plan: Record<string, unknown>): Promise<void> {
  const parsed = parsePlanText(JSON.stringify(plan), { contentType: 'json' });
  if ('issues' in parsed) throw new Error(JSON.stringify(parsed.issues));
  await h.c.plans.repo.upsert({
    tenantId, id: parsed.plan.id, title: parsed.plan.title, origin: 'api', sourceFile: null,
    versionHash: planContentHash(parsed.plan), definition: parsed.plan, at: new Date(),
  });
}

async function triggerAs(token: 'default' | 'other', planId: string) {
  const res = token === 'default' ? await h.request('POST', `/api/v1/plans/${planId}/runs`) : await asOther('POST', `/api/v1/plans/${planId}/runs`);
  expect(res.status).toBe(202);
  const id = res.body.id as string;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = token === 'default' ? (await h.request('GET', `/api/v1/runs/${id}`)).body : (await asOther('GET', `/api/v1/runs/${id}`)).body;
    if (r.status === 'finished') return r;
    if (Date.now() > deadline) throw new Error(`run ${id} did not finish: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe('backup roots per tenant', () => {
  it('refuses at PUT a path under another tenant\'s roots: 400 naming the path and its line', async () => {
    const res = await asOther('PUT', '/api/v1/plans/spionage', pgPlan('spionage', secretDump));
    expect(res.status).toBe(400);
    const detail = res.body.details.find((d: { path: string }) => d.path === 'source.path');
    expect(detail, JSON.stringify(res.body)).toBeDefined();
    expect(detail.message).toContain(secretDump);
    expect(detail.message).toContain('nachbarstadt');
    expect(detail.line).toBeGreaterThan(0);
    // also as YAML, with the line of the path
    const yaml = `id: spionage\ntitle: t\ntargets: { rto: 1h, rpo: 26h }\nsource:\n  type: file\n  path: ${secretDump}\nrestore: { driver: postgres, database: app }\n`;
    const y = await h.app.inject({ method: 'PUT', url: '/api/v1/plans/spionage', headers: { authorization: `Bearer ${otherToken}`, 'content-type': 'application/yaml' }, payload: yaml });
    expect(y.statusCode).toBe(400);
    expect(JSON.parse(y.body).details).toContainEqual(expect.objectContaining({ path: 'source.path', line: 6 }));
    expect((await asOther('GET', '/api/v1/plans/spionage')).status).toBe(404);
  });

  it('lets each tenant test its own backups (absolute and relative paths)', async () => {
    expect((await asOther('PUT', '/api/v1/plans/eigene', pgPlan('eigene', join(rootB, 'eigene.dump'), { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 500' }] }))).status).toBe(201);
    const theirs = await triggerAs('other', 'eigene');
    expect(theirs.verdict, JSON.stringify(theirs.findings)).toBe('passed');
    expect(theirs.backup.path).toBe(join(rootB, 'eigene.dump'));
    // a relative path is relative to the tenant's own first root
    await h.putPlan(pgPlan('ours', 'einwohner.dump', { checks: [{ name: 'n', sql: 'select count(*) from einwohner', expect: '== 500' }] }));
    const ours = await triggerAs('default', 'ours');
    expect(ours.verdict, JSON.stringify(ours.findings)).toBe('passed');
    expect(ours.backup.path).toBe(secretDump);
  });

  it('the worker refuses it again (SOURCE_REFUSED, error), also through a link in the tenant\'s own root', async () => {
    await storeBehindThePolicy(OTHER_TENANT, pgPlan('alt-plan', secretDump, { checks: [{ name: 'v', sql: 'select name from einwohner limit 1', expect: '!= x' }] }));
    const direct = await triggerAs('other', 'alt-plan');
    expect(direct.verdict).toBe('error');
    expect(codes(direct)).toContain('SOURCE_REFUSED');
    expect(direct.checks.every((c: { status: string; actual: unknown }) => c.status === 'skipped' && c.actual === null)).toBe(true);
    expect(direct.sandbox).toBeNull();

    await symlink(secretDump, join(rootB, 'link.dump'));
    expect((await asOther('PUT', '/api/v1/plans/link-plan', pgPlan('link-plan', 'link.dump'))).status).toBe(201);
    const viaLink = await triggerAs('other', 'link-plan');
    expect(viaLink.verdict).toBe('error');
    expect(codes(viaLink)).toContain('SOURCE_REFUSED');
    expect(JSON.stringify(viaLink.findings)).toContain('nachbarstadt');
    expect(await h.sandboxesLeft()).toBe(0);
  });
});

describe('file backups per tenant: restic repositories and their password files', () => {
  /** A restic repository of a small share in `root`, with its password file beside it. */
  function resticRepo(root: string, name: string): { repo: string; pw: string } {
    const share = join(root, `${name}-share`);
    execFileSync('mkdir', ['-p', join(share, 'Akten')]);
    execFileSync('sh', ['-c', 'printf "Bescheid\\n" > "$1/Akten/bescheid.txt"', 'x', share]);
    const repo = join(root, `${name}-repo`);
    const pw = join(root, `${name}.pw`);
    execFileSync('sh', ['-c', 'printf "%s" "$1" > "$2"', 'x', randomBytes(12).toString('hex'), pw]);
    execFileSync('restic', ['-r', repo, '--password-file', pw, 'init', '-q']);
    execFileSync('restic', ['-r', repo, '--password-file', pw, 'backup', '-q', share]);
    return { repo, pw };
  }
  const resticPlan = (id: string, repository: string, passwordFile: string) => ({
    id, title: id, targets: { rto: '1h', rpo: '26h' }, source: { type: 'restic', repository, passwordFile, settle: '1s' },
    restore: { driver: 'files' }, sandbox: { memory: '512m', cpus: 1, timeout: '10m' }, checks: [{ files: { min: 1 } }],
  });

  it('another tenant\'s repository or password file is refused at PUT and, behind a link, at run time; its own runs', async () => {
    const ours = resticRepo(rootA, 'musterstadt');
    const theirs = resticRepo(rootB, 'nachbarstadt');
    // past the plans' settle time of 1 s: a repository just written is SOURCE_UNSETTLED, and that is not what this tests
    await new Promise((r) => setTimeout(r, 1500));
    const repoOut = await asOther('PUT', '/api/v1/plans/fremd-repo', resticPlan('fremd-repo', ours.repo, theirs.pw));
    expect(repoOut.status).toBe(400);
    expect(repoOut.body.details.map((d: { path: string }) => d.path)).toEqual(['source.repository']);
    const pwOut = await asOther('PUT', '/api/v1/plans/fremd-pw', resticPlan('fremd-pw', theirs.repo, ours.pw));
    expect(pwOut.status).toBe(400);
    expect(pwOut.body.details.map((d: { path: string }) => d.path)).toEqual(['source.passwordFile']);

    // links in the tenant's own root pass the PUT (the path is inside) and are refused by the worker, which resolves them
    await symlink(ours.pw, join(rootB, 'geliehen.pw'));
    expect((await asOther('PUT', '/api/v1/plans/link-pw', resticPlan('link-pw', theirs.repo, join(rootB, 'geliehen.pw')))).status).toBe(201);
    const viaPw = await triggerAs('other', 'link-pw');
    expect(viaPw.verdict).toBe('error');
    expect(codes(viaPw)).toContain('SOURCE_REFUSED');
    await symlink(ours.repo, join(rootB, 'geliehen-repo'));
    expect((await asOther('PUT', '/api/v1/plans/link-repo', resticPlan('link-repo', join(rootB, 'geliehen-repo'), theirs.pw))).status).toBe(201);
    const viaRepo = await triggerAs('other', 'link-repo');
    expect(viaRepo.verdict).toBe('error');
    expect(codes(viaRepo)).toContain('SOURCE_REFUSED');
    expect(await h.sandboxesLeft()).toBe(0);

    // its own repository with its own password: restored and checked
    expect((await asOther('PUT', '/api/v1/plans/eigenes-repo', resticPlan('eigenes-repo', theirs.repo, theirs.pw))).status).toBe(201);
    const own = await triggerAs('other', 'eigenes-repo');
    expect(own.verdict, JSON.stringify(own.findings)).toBe('passed');
    expect(own.restore.files).toBe(1);
  });
});

describe('images and limits are the operator\'s', () => {
  it('refuses at PUT an image outside the allowlist and limits above the operator\'s bounds', async () => {
    const res = await h.request('PUT', '/api/v1/plans/greedy', pgPlan('greedy', 'einwohner.dump', {
      restore: { driver: 'postgres', database: 'app', image: 'evil.example/miner:latest' },
      sandbox: { memory: '64g', cpus: 64, pids: 100000, timeout: '10m' },
    }));
    expect(res.status).toBe(400);
    const byPath = Object.fromEntries((res.body as { details: { path: string; message: string }[] }).details.map((d) => [d.path, d.message]));
    expect(byPath['restore.image']).toContain('evil.example/miner:latest');
    expect(byPath['sandbox.memory']).toContain('2g');
    expect(byPath['sandbox.cpus']).toContain('4');
    expect(byPath['sandbox.pids']).toContain('1024');
    // an allowed image is accepted, and used
    await h.putPlan(pgPlan('allowed-image', 'einwohner.dump', { restore: { driver: 'postgres', database: 'app', image: 'ernstfall/sandbox-postgres:17' } }));
    const run = await triggerAs('default', 'allowed-image');
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox.image).toBe('ernstfall/sandbox-postgres:17');
  });

  it('the worker refuses a withdrawn image (IMAGE_NOT_ALLOWED) and caps limits stored before the bounds (LIMIT_CAPPED)', async () => {
    await storeBehindThePolicy('00000000-0000-4000-8000-000000000001', pgPlan('old-image', 'einwohner.dump', { restore: { driver: 'postgres', database: 'app', image: 'ernstfall/sandbox-postgres:15-custom' } }));
    const refused = await triggerAs('default', 'old-image');
    expect(refused.verdict).toBe('error');
    expect(codes(refused)).toContain('IMAGE_NOT_ALLOWED');
    expect(refused.sandbox).toBeNull();

    await storeBehindThePolicy('00000000-0000-4000-8000-000000000001', pgPlan('old-limits', 'einwohner.dump', { sandbox: { memory: '16g', pids: 9000, timeout: '10m' } }));
    const capped = await triggerAs('default', 'old-limits');
    expect(capped.verdict, JSON.stringify(capped.findings)).toBe('passed');
    expect(codes(capped)).toContain('LIMIT_CAPPED');
    expect(capped.sandbox.memoryBytes).toBe(2 * 1024 ** 3);
    expect(capped.sandbox.pids).toBe(1024);
    const inspect = capped.sandbox; // what was asked of Docker is what the evidence says
    expect(inspect.cappedByOperator).toEqual(['memoryBytes 17179869184 -> 2147483648', 'pids 9000 -> 1024']);
  });

  it('a tenant names a driver and a version, not an image: restore.version picks the operator\'s image of that major', async () => {
    await h.putPlan(pgPlan('pinned', 'einwohner.dump', { restore: { driver: 'postgres', database: 'app', version: 17 } }));
    const run = await triggerAs('default', 'pinned');
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox).toMatchObject({ image: 'ernstfall/sandbox-postgres:17', postgresMajor: 17 });
    await h.putPlan(pgPlan('pinned-missing', 'einwohner.dump', { restore: { driver: 'postgres', database: 'app', version: 16 } }));
    const missing = await triggerAs('default', 'pinned-missing');
    expect(missing.verdict).toBe('error');
    expect(codes(missing)).toContain('VERSION_UNSUPPORTED');
  });

  it('a plan within the bounds runs with exactly its own limits, and no LIMIT_CAPPED', async () => {
    await h.putPlan(pgPlan('modest', 'einwohner.dump', { sandbox: { memory: '1g', cpus: 1, pids: 256, timeout: '10m' } }));
    const run = await triggerAs('default', 'modest');
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run)).not.toContain('LIMIT_CAPPED');
    expect(run.sandbox).toMatchObject({ memoryBytes: 1024 ** 3, pids: 256 });
    expect(run.sandbox.cappedByOperator).toBeUndefined();
  });
});

describe('sources that cannot hang', () => {
  it('a FIFO named like a dump is refused before it is opened: SOURCE_NOT_REGULAR, error, quickly', async () => {
    const fifo = join(rootA, 'fifo.dump');
    expect((await sh('mkfifo', [fifo])).code).toBe(0);
    await h.putPlan(pgPlan('fifo', 'fifo.dump', { sandbox: { memory: '1g', timeout: '10m' } }));
    const run = await triggerAs('default', 'fifo');
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('SOURCE_NOT_REGULAR');
    expect(run.phases.find((p: { name: string }) => p.name === 'fetch').durationMs).toBeLessThan(60_000);
    // the newest match in a folder is a FIFO: refused too, not skipped silently
    await h.putPlan(pgPlan('fifo-match', '.', { source: { type: 'file', path: '.', match: 'fifo*.dump' } }));
    expect(codes(await triggerAs('default', 'fifo-match'))).toContain('SOURCE_NOT_REGULAR');
  });

  it('a link inside a folder dump is not followed: SOURCE_NOT_REGULAR', async () => {
    const folder = join(rootA, 'folder-dump');
    await dumpHost(SRC, 'directory', folder);
    await symlink('/etc/passwd', join(folder, 'extra.dat'));
    await h.putPlan(pgPlan('folder-link', 'folder-dump'));
    const run = await triggerAs('default', 'folder-link');
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('SOURCE_NOT_REGULAR');
    expect(JSON.stringify(run.findings)).toContain('extra.dat');
    await rm(join(folder, 'extra.dat'));
    const healthy = await triggerAs('default', 'folder-link');
    expect(healthy.verdict, JSON.stringify(healthy.findings)).toBe('passed');
    expect(codes(healthy)).not.toContain('SOURCE_NOT_REGULAR');
  });
});
