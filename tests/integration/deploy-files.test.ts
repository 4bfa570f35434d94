import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../services/config.js';

/**
 * Issue #13: the on-prem deployment files. compose.yaml is checked for its
 * invariants (read as YAML, anchors merged) and, where a Compose is installed,
 * by `docker compose config` / Debian's `docker-compose config`; the systemd
 * units are rendered for this checkout by deploy/install-systemd.sh --render
 * and checked for content and, where systemd-analyze exists, with
 * `systemd-analyze verify` (offline: nothing is installed or started here).
 */
const COMPOSE_DIR = join(repoRoot, 'deploy', 'compose');
const ERNSTFALL = ['migrate', 'api', 'worker', 'scheduler'];

interface Out { stdout: string; stderr: string; code: number }
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}
const has = (cmd: string) => (process.env.PATH ?? '').split(':').some((d) => {
  try {
    accessSync(join(d, cmd), constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

interface Service {
  image?: string;
  command?: string[];
  restart?: string;
  healthcheck?: { test?: string[]; disable?: boolean };
  environment?: Record<string, string>;
  secrets?: (string | { source: string })[];
  volumes?: string[];
  ports?: string[];
  group_add?: string[];
  depends_on?: Record<string, { condition: string }>;
  cap_drop?: string[];
  security_opt?: string[];
  read_only?: boolean;
}
const composeText = readFileSync(join(COMPOSE_DIR, 'compose.yaml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; secrets: Record<string, { file?: string }>; volumes: Record<string, unknown> };
const svc = (name: string): Service => compose.services[name]!;
const secretNames = (s: Service) => (s.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));
const mounts = (s: Service) => (s.volumes ?? []).map((v) => {
  const [source, target, mode] = v.split(':');
  return { source: source!, target: target!, mode };
});

describe('deploy/compose/compose.yaml', () => {
  it('has the six services, each with a health check, or a one-shot', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'scheduler', 'worker']);
    for (const [name, s] of Object.entries(compose.services)) {
      const oneShot = s.restart === 'no';
      if (oneShot) {
        expect(name).toBe('migrate');
        expect(s.healthcheck?.disable).toBe(true);
      } else {
        expect(s.healthcheck?.test?.length, name).toBeGreaterThan(1);
        expect(s.healthcheck?.disable, name).toBeFalsy();
        expect(s.restart, name).toBe('unless-stopped');
      }
    }
    // ernstfall's processes are healthy when ready (database, redis, docker for the worker, a ticking scheduler)
    for (const name of ['api', 'worker', 'scheduler']) expect(svc(name).healthcheck!.test!.join(' ')).toContain('/readyz');
  });

  it('runs the migrations first: every process waits for the one-shot to succeed', () => {
    expect(svc('migrate').command).toEqual(['migrate']);
    expect(svc('migrate').depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
    for (const name of ['api', 'worker', 'scheduler']) {
      expect(svc(name).depends_on, name).toMatchObject({ migrate: { condition: 'service_completed_successfully' }, redis: { condition: 'service_healthy' } });
      expect(svc(name).command, name).toEqual(['serve', name]);
    }
  });

  it('gives secrets only as files: no password, token or credential URL in the environment', () => {
    for (const [name, def] of Object.entries(compose.secrets)) {
      expect(def.file, name).toBe(`./secrets/${name}`);
    }
    const forbidden = /^(DATABASE_URL|DATABASE_OWNER_URL|REDIS_URL_PASSWORD|POSTGRES_PASSWORD|ERNSTFALL_SECRET_KEY|ERNSTFALL_BOOTSTRAP_TOKEN|ERNSTFALL_METRICS_TOKEN|ERNSTFALL_SMTP_URL|ERNSTFALL_OIDC_CLIENT_SECRET)$/;
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        expect(k, `${name}: ${k}`).not.toMatch(forbidden);
        expect(String(v), `${name}: ${k}`).not.toMatch(/:\/\/[^/@\s]*:[^/@\s]*@/);
        if (k.endsWith('_FILE')) {
          const m = /^\/run\/secrets\/([a-z0-9-]+)$/.exec(String(v));
          expect(m, `${name}: ${k}=${v} must name a compose secret`).not.toBeNull();
          expect(secretNames(s), `${name}: ${k} without its secret`).toContain(m![1]);
          expect(compose.secrets[m![1]!], m![1]).toBeDefined();
        }
      }
    }
    for (const name of ERNSTFALL) expect(svc(name).environment!.DATABASE_URL_FILE).toBe('/run/secrets/database-url');
  });

  it('keeps the owner role to migrate and the self-backup, and every key away from the worker', () => {
    expect(secretNames(svc('api'))).not.toContain('database-owner-url');
    expect(secretNames(svc('worker')).sort()).toEqual(['database-url']);
    expect(Object.keys(svc('worker').environment!).filter((k) => /SIGNING|SECRET_KEY|BOOTSTRAP|OWNER/.test(k))).toEqual([]);
    // the signing key lives on the `state` volume of api (which creates it) and scheduler (which signs checkpoints)
    expect(mounts(svc('worker')).map((m) => m.source)).not.toContain('state');
    expect(mounts(svc('api')).find((m) => m.target === '/var/lib/ernstfall')?.source).toBe('state');
    expect(mounts(svc('scheduler')).find((m) => m.target === '/var/lib/ernstfall')?.source).toBe('state');
    expect(svc('scheduler').depends_on).toMatchObject({ api: { condition: 'service_healthy' } });
  });

  it('mounts backups read-only at the host path, the Docker socket only into the worker, plans read-only', () => {
    const backup = mounts(svc('worker')).find((m) => m.source === '${ERNSTFALL_BACKUP_ROOT}');
    expect(backup).toEqual({ source: '${ERNSTFALL_BACKUP_ROOT}', target: '${ERNSTFALL_BACKUP_ROOT}', mode: 'ro' });
    for (const [name, s] of Object.entries(compose.services)) {
      for (const m of mounts(s)) {
        if (m.source.includes('BACKUP_ROOT')) expect(m.mode, `${name}: ${m.source}`).toBe('ro');
        if (m.source.includes('docker.sock') || m.target.includes('docker.sock')) expect(name).toBe('worker');
        if (m.target === '/app/restore-plans') expect(m.mode, name).toBe('ro');
      }
      if (name !== 'worker') expect(s.group_add, name).toBeUndefined();
    }
    expect(mounts(svc('worker')).some((m) => m.source === '/var/run/docker.sock')).toBe(true);
    expect(svc('worker').group_add).toEqual(['${DOCKER_GID:?set DOCKER_GID in .env}']);
    // the only writable folder of the backup area: the scheduler's own dump folder (inside the root)
    expect(mounts(svc('scheduler')).find((m) => m.source === '${ERNSTFALL_SELF_BACKUP_DIR}')).toEqual({ source: '${ERNSTFALL_SELF_BACKUP_DIR}', target: '${ERNSTFALL_SELF_BACKUP_DIR}', mode: undefined });
  });

  it('locks ernstfall\'s containers down and publishes only the api, on 127.0.0.1 by default', () => {
    for (const name of ERNSTFALL) {
      const s = svc(name);
      expect(s.cap_drop, name).toEqual(['ALL']);
      expect(s.security_opt, name).toContain('no-new-privileges:true');
      expect(s.read_only, name).toBe(true);
      expect(s.image, name).toBe('${ERNSTFALL_IMAGE:-ernstfall:latest}');
    }
    for (const [name, s] of Object.entries(compose.services)) if (name !== 'api') expect(s.ports, name).toBeUndefined();
    expect(svc('api').ports).toEqual(['${ERNSTFALL_HTTP_BIND:-127.0.0.1}:${ERNSTFALL_HTTP_PORT:-8080}:8080']);
  });

  it('documents every variable it uses in .env.example', () => {
    const example = readFileSync(join(COMPOSE_DIR, '.env.example'), 'utf8');
    const defined = new Set([...example.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]));
    expect([...used].filter((v) => !defined.has(v))).toEqual([]);
    expect(defined.has('COMPOSE_PROJECT_NAME')).toBe(true);
  });

  describe('make-secrets.sh', () => {
    let dir = '';
    beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'ef-compose-secrets-')); });
    afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

    it('creates every secret compose.yaml mounts, once, consistent with each other', async () => {
      const target = join(dir, 'secrets');
      const first = await run('bash', [join(COMPOSE_DIR, 'make-secrets.sh'), target]);
      expect(first.code, first.stderr).toBe(0);
      expect((await readdir(target)).sort()).toEqual(Object.keys(compose.secrets).sort());
      expect((await stat(target)).mode & 0o777).toBe(0o700);
      for (const f of await readdir(target)) expect((await stat(join(target, f))).mode & 0o777, f).toBe(0o444);
      const read = (f: string) => readFile(join(target, f), 'utf8').then((t) => t.trim());
      const app = await read('db-app-password');
      const owner = await read('db-owner-password');
      expect(await read('database-url')).toBe(`postgres://ernstfall_app:${app}@postgres:5432/ernstfall`);
      expect(await read('database-owner-url')).toBe(`postgres://ernstfall_owner:${owner}@postgres:5432/ernstfall`);
      expect((await read('secret-key')).length).toBeGreaterThanOrEqual(32);
      expect((await read('bootstrap-token')).length).toBeGreaterThanOrEqual(16);
      expect((await read('metrics-token')).length).toBeGreaterThanOrEqual(16);
      // never overwritten: a second run keeps every value
      const before = await read('secret-key');
      const again = await run('bash', [join(COMPOSE_DIR, 'make-secrets.sh'), target]);
      expect(again.code).toBe(0);
      expect(again.stdout).not.toContain('created');
      expect(await read('secret-key')).toBe(before);
    });
  });

  it('has an executable postgres init script creating the two roles from the secret files', () => {
    const f = join(COMPOSE_DIR, 'postgres-init', '10-ernstfall-roles.sh');
    expect(statSync(f).mode & 0o111).not.toBe(0);
    const text = readFileSync(f, 'utf8');
    expect(text).toContain('CREATE ROLE ernstfall_owner');
    expect(text).toContain('CREATE ROLE ernstfall_app');
    expect(text).toContain('$ERNSTFALL_OWNER_PASSWORD_FILE');
    expect(svc('postgres').environment).toMatchObject({ ERNSTFALL_OWNER_PASSWORD_FILE: '/run/secrets/db-owner-password', ERNSTFALL_APP_PASSWORD_FILE: '/run/secrets/db-app-password' });
  });

  it('is valid for Compose itself (docker compose config, or Debian\'s docker-compose), where one is installed', async (ctx) => {
    const tool = (await run('docker', ['compose', 'version'])).code === 0 ? ['docker', 'compose'] : has('docker-compose') ? ['docker-compose'] : undefined;
    if (!tool) ctx.skip();
    const dir = await mkdtemp(join(tmpdir(), 'ef-compose-env-'));
    try {
      const env = readFileSync(join(COMPOSE_DIR, '.env.example'), 'utf8').replace(/^DOCKER_GID=$/m, 'DOCKER_GID=999');
      await writeFile(join(dir, '.env'), env);
      const r = await run(tool![0]!, [...tool!.slice(1), '--project-directory', COMPOSE_DIR, '--env-file', join(dir, '.env'), '-f', join(COMPOSE_DIR, 'compose.yaml'), 'config']);
      expect(r.code, r.stderr).toBe(0);
      const resolved = parse(r.stdout) as { services: Record<string, Service> };
      expect(Object.keys(resolved.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'scheduler', 'worker']);
      expect(resolved.services.worker!.volumes!.map(String).join(' ')).toMatch(/\/srv\/backups:\/srv\/backups:ro|target: \/srv\/backups/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/systemd units', () => {
  const UNITS = ['ernstfall-migrate', 'ernstfall-api', 'ernstfall-worker', 'ernstfall-scheduler'];
  const state = join(repoRoot, '.ernstfall');
  let dir = '';
  const unit = (u: string) => readFileSync(join(dir, `${u}.service`), 'utf8');
  const values = (u: string, key: string) => [...unit(u).matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-units-'));
    const r = await run('bash', [join(repoRoot, 'deploy', 'install-systemd.sh'), '--render', dir], { env: { ...process.env, ERNSTFALL_STATE_DIR: state } });
    if (r.code !== 0) throw new Error(`install-systemd.sh --render failed: ${r.stderr}`);
  });
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('renders the four units with this checkout, its state folder and node filled in', () => {
    for (const u of UNITS) {
      const text = unit(u);
      expect(text, u).not.toMatch(/@[A-Z]+@/);
      expect(values(u, 'User'), u).toEqual(['ernstfall']);
      expect(values(u, 'WorkingDirectory'), u).toEqual([repoRoot]);
      expect(values(u, 'EnvironmentFile'), u).toContain(`${state}/env`);
      const [exe, ...args] = values(u, 'ExecStart')[0]!.split(' ');
      expect(() => accessSync(exe!, constants.X_OK), exe).not.toThrow();
      // node --import tsx <script> [role]: the script exists in the checkout, tsx is a runtime dependency
      expect(args.slice(0, 2)).toEqual(['--import', 'tsx']);
      expect(existsSync(join(repoRoot, args[2]!)), args[2]).toBe(true);
      expect(existsSync(join(repoRoot, 'node_modules', 'tsx'))).toBe(true);
      for (const k of ['NoNewPrivileges=yes', 'ProtectSystem=strict', `ReadWritePaths=${state}`, 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'Restart=on-failure']) {
        expect(text.split('\n'), `${u}: ${k}`).toContain(k);
      }
    }
  });

  it('runs migrate once before the three processes, which require it; each process its own port and role', () => {
    expect(values('ernstfall-migrate', 'Type')).toEqual(['oneshot']);
    expect(values('ernstfall-migrate', 'RemainAfterExit')).toEqual(['yes']);
    expect(values('ernstfall-migrate', 'ExecStart')[0]).toMatch(/ --import tsx db\/migrate\.ts$/);
    const ports = new Set<string>();
    for (const role of ['api', 'worker', 'scheduler']) {
      const u = `ernstfall-${role}`;
      expect(values(u, 'Requires'), u).toEqual(['ernstfall-migrate.service']);
      expect(values(u, 'After')[0], u).toContain('ernstfall-migrate.service');
      expect(values(u, 'ExecStart')[0], u).toMatch(new RegExp(` services/main\\.ts ${role}$`));
      expect(values(u, 'WantedBy'), u).toEqual(['multi-user.target']);
      ports.add(/PORT=(\d+)/.exec(values(u, 'Environment').join(' '))![1]!);
    }
    expect(ports.size).toBe(3);
  });

  it('gives the owner role only to migrate, and the Docker socket\'s group only to the worker', () => {
    expect(values('ernstfall-migrate', 'EnvironmentFile')).toContain(`${state}/owner.env`);
    for (const role of ['api', 'worker', 'scheduler']) {
      expect(unit(`ernstfall-${role}`), role).not.toContain('owner.env');
      if (role !== 'worker') expect(values(`ernstfall-${role}`, 'SupplementaryGroups'), role).toEqual([]);
    }
    const hasDockerGroup = readFileSync('/etc/group', 'utf8').split('\n').some((l) => l.startsWith('docker:'));
    expect(values('ernstfall-worker', 'SupplementaryGroups')).toEqual(hasDockerGroup ? ['docker'] : []);
  });

  it('passes systemd-analyze verify (offline, where it exists)', async (ctx) => {
    if (!has('systemd-analyze')) ctx.skip();
    const r = await run('systemd-analyze', ['verify', ...UNITS.map((u) => `${u}.service`)], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    // warnings come on stderr with exit 0; none are expected for these units
    expect(r.stderr.trim()).toBe('');
  });

  it('is what npm run setup -- --systemd installs', () => {
    const setup = readFileSync(join(repoRoot, 'deploy', 'setup.sh'), 'utf8');
    expect(setup).toContain('--systemd) SYSTEMD=1');
    expect(setup).toContain('deploy/install-systemd.sh');
  });
});
