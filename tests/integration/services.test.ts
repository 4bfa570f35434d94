import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dockerLeftovers, startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { touchNow } from '../fixtures/test-clock.js';

/**
 * Application groups (issue 15 item 1, decisions/021): the test application
 * (tests/fixtures/test-app, built offline FROM ernstfall/node-base:24) reads
 * the restored database over the run's internal network and answers /health.
 */
const SRC = 'ef_rt_services';
const APP = 'ernstfall/test-app:1';
let h: Harness;
let dir: string;

beforeAll(async () => {
  // CI builds it in deploy/setup.sh; here too, so the file runs on a machine set up before the image existed
  execFileSync('bash', [join(__dirname, '../../deploy/build-test-app-image.sh'), APP], { stdio: ['ignore', 'ignore', 'inherit'] });
  dir = await makeTempDir('ef-services-');
  await makeHostDatabase(SRC, { rows: 300 });
  await dumpHost(SRC, 'custom', join(dir, 'app.dump'));
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_WORKER_CONCURRENCY: '1', ERNSTFALL_SANDBOX_IMAGES: `${APP},ernstfall/test-app:missing` } });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

const DB_ENV = { PGHOST: '${db.host}', PGPORT: '${db.port}', PGUSER: '${db.user}', PGPASSWORD: '${db.password}', PGDATABASE: '${db.name}' };
const web = (env: Record<string, string> = {}, deadline = '30s') => ({
  name: 'web', image: APP, env: { ...DB_ENV, APP_TABLE: 'einwohner', ...env },
  probe: { http: { port: 8080, path: '/health', status: 200, body: 'ok einwohner' }, deadline },
});
const groupPlan = (id: string, services: unknown[]) => pgPlan(id, 'app.dump', {
  sandbox: { memory: '512m', cpus: 1, timeout: '4m' },
  checks: [{ name: 'Einwohner', sql: 'select count(*) from einwohner', expect: '== 300' }],
  services,
});
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

const leftovers = () => dockerLeftovers(h);
const NONE = { containers: 0, networks: 0, volumes: 0 };

describe('application groups', () => {
  it('a group whose app reads the restored database and answers healthy passes, with the service RTO and each service\'s times', async () => {
    await h.putPlan(groupPlan('group-ok', [
      web(),
      // started only once web is healthy; probed by a command in its own container, with its own env
      { name: 'report', image: APP, env: { ...DB_ENV, PORT: '8081' }, dependsOn: ['web'], probe: { command: ['psql', '-X', '-A', '-t', '-c', 'select count(*) from meldung'], deadline: '30s' } },
      { name: 'cache', image: APP, env: { ...DB_ENV, PORT: '6379' }, probe: { tcp: { port: 6379 } } },
    ]));
    const run = await h.waitForRun(await h.trigger('group-ok'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run).filter((c: string) => c.startsWith('SERVICE_'))).toEqual([]);
    expect(run.sandbox).toMatchObject({ network: 'internal', teardown: { verified: true, networkRemoved: true } });

    const phase = run.phases.find((p: { name: string }) => p.name === 'services');
    expect(phase.status).toBe('ok');
    const steps = Object.fromEntries(phase.steps.map((s: { name: string }) => [s.name, s]));
    for (const name of ['web', 'report', 'cache']) {
      expect(steps[name].status).toBe('healthy');
      expect(steps[name].startMs).toBeGreaterThanOrEqual(0);
      expect(steps[name].probeMs).toBeGreaterThanOrEqual(0);
    }
    // dependsOn: report started after web answered healthy
    const webHealthy = Date.parse(steps.web.startedAt) + steps.web.startMs + steps.web.probeMs;
    expect(Date.parse(steps.report.startedAt)).toBeGreaterThanOrEqual(webHealthy - 5);

    // the service RTO runs until the last probe succeeded; it is the run's measured RTO
    expect(run.restore.serviceRtoSeconds).toBeGreaterThan(0);
    expect(run.rto.measuredSeconds).toBeCloseTo(run.restore.serviceRtoSeconds, 0);
    const services = Object.fromEntries(run.restore.services.map((s: { name: string }) => [s.name, s]));
    expect(services.web).toMatchObject({ image: APP, user: '65534:65534', status: 'healthy', probe: { kind: 'http' } });
    expect(services.report.probe.kind).toBe('command');
    expect(services.cache.probe.kind).toBe('tcp');
    // the endpoint is recorded without its password
    expect(run.restore.endpoint).toEqual({ host: 'db', port: 5432, user: 'ernstfall_app', database: 'app' });
    expect(JSON.stringify(run)).not.toMatch(/password/i);
    expect(await leftovers()).toEqual(NONE);
  });

  it('an app started against a restore without its table answers an error and fails (SERVICE_UNHEALTHY)', async () => {
    await h.putPlan(groupPlan('group-missing-table', [web({ APP_TABLE: 'buerger' }, '10s')]));
    const run = await h.waitForRun(await h.trigger('group-missing-table'));
    expect(run.verdict).toBe('failed');
    const f = run.findings.find((x: { code: string }) => x.code === 'SERVICE_UNHEALTHY');
    expect(f.message).toContain('service web: did not answer healthy within 10s');
    expect(f.message).toContain('HTTP 500 (expected 200)');
    // its own last log lines as evidence
    expect(f.message).toContain('relation "buerger" does not exist');
    expect(codes(run)).not.toContain('SERVICE_EXITED');
    // the data itself was fine: its checks passed
    expect(run.checks[0].status).toBe('passed');
    expect(run.phases.find((p: { name: string }) => p.name === 'services')).toMatchObject({ status: 'failed' });
    expect(run.rto.measuredSeconds).toBeNull();
    expect(await leftovers()).toEqual(NONE);
  });

  it('an app that exits fails (SERVICE_EXITED), with its last log lines and the password redacted; services depending on it never start', async () => {
    await h.putPlan(groupPlan('group-exits', [
      web({ APP_MODE: 'exit' }),
      { name: 'report', image: APP, env: DB_ENV, dependsOn: ['web'] },
    ]));
    const run = await h.waitForRun(await h.trigger('group-exits'));
    expect(run.verdict).toBe('failed');
    const f = run.findings.find((x: { code: string }) => x.code === 'SERVICE_EXITED');
    expect(f.message).toContain('service web: exited with code 3');
    expect(f.message).toContain('fatal: configuration incomplete');
    expect(f.message).toContain('with password [redacted]');
    expect(f.message).not.toMatch(/password [0-9a-f]{8}/);
    expect(run.findings.find((x: { code: string }) => x.code === 'SERVICE_UNHEALTHY').message).toContain('service report was not started');
    // the log tail kept as an attachment is redacted as well
    const att = await h.c.db.selectFrom('ledger_attachments').select(['name', 'content']).where('name', '=', 'service-web.log').execute();
    const texts = att.map((a) => a.content!.toString('utf8'));
    expect(texts.filter((t) => t.includes('with password [redacted]'))).toHaveLength(1);
    for (const t of texts) expect(t).not.toMatch(/password [0-9a-f]{8}/);
    expect(await leftovers()).toEqual(NONE);
  });

  it('a service image missing on the Docker host is an error, not a failure of the backup', async () => {
    await h.putPlan(groupPlan('group-no-image', [{ ...web(), image: 'ernstfall/test-app:missing' }]));
    const run = await h.waitForRun(await h.trigger('group-no-image'));
    expect(run.verdict).toBe('error');
    expect(codes(run)).toContain('IMAGE_MISSING');
    expect(run.findings.find((x: { code: string }) => x.code === 'IMAGE_MISSING').message).toContain("service web's image ernstfall/test-app:missing");
    expect(await leftovers()).toEqual(NONE);
  });

  it('the run\'s network reaches nothing but itself: not the host, although a container on Docker\'s default bridge does', async () => {
    // a server of the host's on every address; the host's address on docker0 is the one a container would try
    const server: Server = createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = String((server.address() as { port: number }).port);
    const hostAddress = ((await h.c.docker.getNetwork('bridge').inspect()) as { IPAM: { Config: { Gateway: string }[] } }).IPAM.Config[0]!.Gateway;
    const reach = ['node', '-e', "require('net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 2000 }).on('connect', () => process.exit(0)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))", hostAddress, port];
    try {
      // the control: from Docker's default bridge the host answers, so a failure below is the network's doing
      const control = await h.c.docker.run(APP, reach, process.stderr, { User: '65534:65534', HostConfig: { AutoRemove: false, NetworkMode: 'bridge' } });
      await (control[1] as { remove(): Promise<void> }).remove();
      expect((control[0] as { StatusCode: number }).StatusCode).toBe(0);

      await h.putPlan(groupPlan('group-isolated', [{ ...web(), probe: { command: reach, deadline: '8s' } }]));
      const run = await h.waitForRun(await h.trigger('group-isolated'));
      expect(run.verdict).toBe('failed');
      // refused or unanswered: either way nothing of the host's was reached
      expect(run.findings.find((x: { code: string }) => x.code === 'SERVICE_UNHEALTHY').message).toMatch(/last: (command exit 1|no answer within)/);
    } finally {
      server.close();
    }
    expect(await leftovers()).toEqual(NONE);
  });

  it('a service image outside the operator\'s allowlist is refused when the plan is stored', async () => {
    const res = await h.request('PUT', '/api/v1/plans/group-evil', groupPlan('group-evil', [{ ...web(), image: 'alpine:latest' }]));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('services[0].image');
    expect(JSON.stringify(res.body)).toContain('not among the images the operator allows');
  });
});

describe('application groups of a file restore', () => {
  // a share as a tar archive: restored by the files driver into its sandbox, owned by the sandbox's user
  const FILE = 'Kämmerei/haushalt.csv';
  const tarPlan = (id: string, services: unknown[]) => ({
    id, title: `Test ${id}`, targets: { rto: '1h', rpo: '26h' },
    source: { type: 'file', path: 'share.tar' }, restore: { driver: 'files' },
    sandbox: { memory: '512m', cpus: 1, timeout: '4m' }, checks: [{ exists: { path: FILE } }], services,
  });
  const reader = (file: string, deadline = '20s') => ({
    name: 'web', image: APP, env: { APP_FILE: `\${files.path}/${file}` },
    probe: { http: { port: 8080, path: '/health', status: 200, body: 'ok file Haushalt 2026' }, deadline },
  });

  beforeAll(async () => {
    const share = join(dir, 'share');
    await mkdir(join(share, 'Kämmerei'), { recursive: true });
    await writeFile(join(share, FILE), 'Haushalt 2026\nPosten;Betrag\n');
    await touchNow(share);
    execFileSync('tar', ['-cf', join(dir, 'share.tar'), '-C', share, '.']);
    await touchNow(join(dir, 'share.tar'));
  });

  it('the app reads the restored tree (${files.path}) as the tree\'s owner, and cannot write it: passed', async () => {
    await h.putPlan(tarPlan('files-group-ok', [
      reader(FILE),
      // healthy only when it reads the restored tree and a write into it fails (its owner could write it): the services see it read-only
      { name: 'guard', image: APP, env: { SHARE: '${files.path}' }, command: ['sleep', '600'], probe: { command: ['sh', '-c', `test -r "$SHARE/${FILE}" && ! touch "$SHARE/ef-write-probe" 2>/dev/null`], deadline: '20s' } },
    ]));
    const run = await h.waitForRun(await h.trigger('files-group-ok'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.restore.tree).toEqual({ path: '/srv/ef/restored', readOnly: true });
    expect(run.restore.endpoint).toBeUndefined();
    const services = Object.fromEntries(run.restore.services.map((s: { name: string }) => [s.name, s]));
    expect(services.web).toMatchObject({ status: 'healthy', user: '990:990' });
    expect(services.guard).toMatchObject({ status: 'healthy', probe: { kind: 'command' } });
    expect(run.restore.serviceRtoSeconds).toBeGreaterThan(0);
    expect(await leftovers()).toEqual(NONE);
  });

  it('an app that needs a file the backup lacks answers an error and fails (SERVICE_UNHEALTHY, ENOENT)', async () => {
    await h.putPlan(tarPlan('files-group-missing', [reader('Kämmerei/fehlt.csv', '8s')]));
    const run = await h.waitForRun(await h.trigger('files-group-missing'));
    expect(run.verdict).toBe('failed');
    const f = run.findings.find((x: { code: string }) => x.code === 'SERVICE_UNHEALTHY');
    expect(f.message).toContain('HTTP 500 (expected 200)');
    expect(f.message).toContain('ENOENT');
    // the data was there: the plan's own check passed
    expect(run.checks[0].status).toBe('passed');
    expect(await leftovers()).toEqual(NONE);
  });

  it('a file restore\'s services cannot name the database placeholders', async () => {
    const res = await h.request('PUT', '/api/v1/plans/files-group-db', tarPlan('files-group-db', [{ name: 'web', image: APP, env: { PGHOST: '${db.host}' } }]));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('unknown placeholder ${db.host}; known: ${files.path}');
  });
});
