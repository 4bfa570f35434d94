import { execFile, type ExecFileOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvFile, repoRoot } from '../../services/config.js';

/**
 * Issue #13: ernstfall's own container image builds and runs without any
 * registry. The base (Debian bookworm by debootstrap, Node 24 from the npm
 * registry) is built once and kept; the app image is built from this
 * checkout under a tag of its own and removed again. A migrate one-shot runs
 * against a fresh, empty database on the local PostgreSQL (secrets as files,
 * as Compose mounts them), then the api role starts in a container as locked
 * down as compose.yaml runs it (read-only root, no capabilities, no new
 * privileges) and must answer /readyz with 200, as user ernstfall owning the
 * state folder, with no plan loaded.
 */
const BASE = process.env.ERNSTFALL_NODE_BASE ?? 'ernstfall/node-base:24';
const id = `${process.pid}-${randomBytes(3).toString('hex')}`;
const IMAGE = `ernstfall-test/app:${id}`;
const CONTAINER = `ef-image-test-${id}`;
const PREFIX = `ef-image-test-${id}`;

interface Out { stdout: string; stderr: string; code: number }
/** Runs a command to its end within `timeoutMs` (then it is killed); never throws on a non-zero exit. */
function run(cmd: string, args: string[], timeoutMs: number, opts: ExecFileOptions = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, cwd: repoRoot, ...opts }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : ''), code });
    });
  });
}
const tail = (o: Out) => `${o.stdout}\n${o.stderr}`.trim().split('\n').slice(-30).join('\n');
const docker = (args: string[], timeoutMs = 60_000) => run('docker', args, timeoutMs);

function withDb(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let dbName = '';
let ownerAdminUrl = '';
let secretsDir = '';
let appUrl = '';
let ownerUrl = '';
let port = 0;
let built = false;

beforeAll(async () => {
  loadEnvFile(process.env, { owner: true });
  ownerAdminUrl = process.env.DATABASE_OWNER_URL!;
  // a fresh, empty database (not the migrated template): the one-shot must migrate it from nothing.
  // Named like tests/helpers/db.ts's, so a crashed run's database is dropped by the next test run.
  dbName = `ernstfall_test_${process.env.ERNSTFALL_TEST_RUN ?? process.ppid}_img${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ownerAdminUrl });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  await admin.end();
  ownerUrl = withDb(ownerAdminUrl, dbName);
  appUrl = withDb(process.env.DATABASE_URL!, dbName);
  // secrets as files, readable by the image's user (uid 10001), as compose `secrets:` mounts them
  secretsDir = await mkdtemp(join(tmpdir(), 'ef-image-secrets-'));
  await chmod(secretsDir, 0o755);
  await writeFile(join(secretsDir, 'database-url'), `${appUrl}\n`, { mode: 0o444 });
  await writeFile(join(secretsDir, 'database-owner-url'), `${ownerUrl}\n`, { mode: 0o444 });
  port = await freePort();

  // the base is kept between runs (setup.sh builds it too); build it only if it is missing
  if ((await docker(['image', 'inspect', BASE])).code !== 0) {
    const b = await run('bash', ['deploy/build-node-base.sh', BASE], 12 * 60_000);
    if (b.code !== 0) throw new Error(`deploy/build-node-base.sh failed:\n${tail(b)}`);
  }
  // --network none: the build needs nothing from outside (and no bridge on the host)
  const b = await docker(['build', '--network', 'none', '--build-arg', `BASE=${BASE}`, '--build-arg', `BUILD_ID=${id}`, '-t', IMAGE, '.'], 12 * 60_000);
  built = true;
  if (b.code !== 0) throw new Error(`docker build failed:\n${tail(b)}`);
}, 26 * 60_000);

afterAll(async () => {
  await docker(['rm', '-f', '-v', CONTAINER]);
  if (built) {
    await docker(['rmi', '-f', IMAGE]);
    // the build stage's untagged image, marked with this build's id
    const stages = await docker(['images', '-q', '--filter', `label=org.ernstfall.build-id=${id}`]);
    const ids = [...new Set(stages.stdout.split('\n').map((s) => s.trim()).filter(Boolean))];
    if (ids.length) await docker(['rmi', '-f', ...ids]);
  }
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  if (dbName) {
    const admin = new pg.Client({ connectionString: ownerAdminUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
    await admin.end();
  }
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await redis.keys(`${PREFIX}:*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}, 120_000);

const secretMounts = () => ['-v', `${join(secretsDir, 'database-url')}:/run/secrets/database-url:ro`, '-v', `${join(secretsDir, 'database-owner-url')}:/run/secrets/database-owner-url:ro`];
const lockedDown = ['--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true'];

describe('the container image (built offline from the checkout)', () => {
  it('has no plans (the operator mounts theirs) and runs as ernstfall', async () => {
    const r = await docker(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c',
      'id -un; ls -A /app/restore-plans | wc -l; find / -xdev \\( -name "demo-*.yaml" -o -name "restore-plans" \\) 2>/dev/null; node --version']);
    expect(r.code, tail(r)).toBe(0);
    const [user, count, ...rest] = r.stdout.trim().split('\n');
    expect(user).toBe('ernstfall');
    expect(count).toBe('0');
    expect(rest.filter((l) => !l.startsWith('v'))).toEqual(['/app/restore-plans']);
    expect(rest.at(-1)).toMatch(/^v24\./);
  });

  it('migrates a fresh database as a one-shot with the owner role, URLs from files', async () => {
    const r = await docker(['run', '--rm', '--network', 'host', ...lockedDown, ...secretMounts(),
      '-e', 'DATABASE_URL_FILE=/run/secrets/database-url', '-e', 'DATABASE_OWNER_URL_FILE=/run/secrets/database-owner-url', IMAGE, 'migrate'], 120_000);
    expect(r.code, tail(r)).toBe(0);
    expect(r.stdout).toMatch(/migrations: applied .*_initial/);
    const again = await docker(['run', '--rm', '--network', 'host', ...secretMounts(),
      '-e', 'DATABASE_URL_FILE=/run/secrets/database-url', '-e', 'DATABASE_OWNER_URL_FILE=/run/secrets/database-owner-url', IMAGE, 'migrate'], 120_000);
    expect(again.code, tail(again)).toBe(0);
    expect(again.stdout).toContain('migrations: up to date');
  });

  it('starts the api role: /readyz 200, the state folder owned by ernstfall with the keys made at first start, no plan loaded', async () => {
    const start = await docker(['run', '-d', '--name', CONTAINER, '--network', 'host', ...lockedDown, ...secretMounts(),
      '-e', 'DATABASE_URL_FILE=/run/secrets/database-url', '-e', `REDIS_URL=${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}`,
      '-e', `ERNSTFALL_QUEUE_PREFIX=${PREFIX}`, '-e', 'HOST=127.0.0.1', '-e', `PORT=${port}`, '-e', `ERNSTFALL_INSTANCE=${PREFIX}`,
      IMAGE, 'serve', 'api']);
    expect(start.code, tail(start)).toBe(0);

    let status = 0;
    let body = '';
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      if (res) {
        status = res.status;
        body = await res.text();
        if (status === 200) break;
      }
      const state = await docker(['inspect', '-f', '{{.State.Running}}', CONTAINER]);
      if (state.stdout.trim() !== 'true') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const logs = await docker(['logs', CONTAINER]);
    expect(status, `readyz ${status} ${body}\n${tail(logs)}`).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    const st = await docker(['exec', CONTAINER, 'stat', '-c', '%U:%G %u %a %n', '/var/lib/ernstfall', '/var/lib/ernstfall/secrets/signing-key.pem', '/var/lib/ernstfall/secrets/secret-key']);
    expect(st.code, tail(st)).toBe(0);
    const lines = st.stdout.trim().split('\n');
    expect(lines[0]).toBe('ernstfall:ernstfall 10001 750 /var/lib/ernstfall');
    expect(lines[1]).toBe('ernstfall:ernstfall 10001 600 /var/lib/ernstfall/secrets/signing-key.pem');
    expect(lines[2]).toBe('ernstfall:ernstfall 10001 600 /var/lib/ernstfall/secrets/secret-key');
    // PID 1 (tini, and the service it started) runs as the service user, not root
    const who = await docker(['exec', CONTAINER, 'sh', '-c', 'for p in /proc/[0-9]*; do awk \'/^Uid:/ { print $2 }\' $p/status; done | sort -u']);
    expect(who.stdout.trim()).toBe('10001');

    expect(logs.stdout).toMatch(/"loaded":0,"invalid":0,"dir":"\/app\/restore-plans"/);
    const db = new pg.Client({ connectionString: appUrl });
    await db.connect();
    try {
      const plans = await db.query<{ n: string }>('select count(*)::text as n from plans');
      expect(plans.rows[0]!.n).toBe('0');
      const keys = await db.query<{ n: string }>('select count(*)::text as n from signing_keys');
      expect(keys.rows[0]!.n).toBe('1');
    } finally {
      await db.end();
    }
  });
});
