import { describe, expect, it } from 'vitest';
import { parsePlanText, type TenantPlanPolicy } from '../../services/plans/plan.parser.js';
import { startOrder } from '../../services/plans/plan-services.js';
import { dbValues, redact, resolveEnv } from '../../workers/engine/services.js';

const head = (driver = 'postgres') => `id: ewo-app
title: EWO mit Fachanwendung
targets: { rto: 4h, rpo: 26h }
source: { type: file, path: /srv/backups/ewo.dump }
restore: { driver: ${driver}${driver === 'files' ? '' : ', database: ewo'} }
sandbox: { memory: 1g, timeout: 10m }
`;
const policy: TenantPlanPolicy = {
  tenant: 'default', roots: ['/srv/backups'], allowedImages: ['registry.local/ewo-app:3'],
  max: { memoryBytes: 8 * 2 ** 30, cpus: 4, pids: 4096, timeoutSeconds: 86_400, diskBytes: 2 ** 40 }, pools: ['default'],
};
const parse = (services: string, driver?: string, p: TenantPlanPolicy | null = policy) => parsePlanText(`${head(driver)}services:\n${services}`, { policy: p ?? undefined });
const issues = (r: ReturnType<typeof parsePlanText>) => ('issues' in r ? r.issues.map((i) => `${i.line} ${i.path}: ${i.message}`) : []);

describe('plan services (application groups)', () => {
  it('parses a group with env placeholders, dependsOn and the three probe kinds; defaults filled in', () => {
    const r = parse(`  - name: api
    image: registry.local/ewo-app:3
    env: { PGHOST: "\${db.host}", PGPASSWORD: "\${db.password}", URL: "postgres://\${db.user}@\${db.host}:\${db.port}/\${db.name}", WORKERS: 2 }
    probe: { http: { port: 8080, path: /health, body: ok } }
  - name: web
    image: registry.local/ewo-app:3
    dependsOn: [api]
    user: "1000:1000"
    command: [node, web.js]
    probe: { tcp: { port: 80 }, deadline: 5m }
  - name: jobs
    image: registry.local/ewo-app:3
    probe: { command: [pgrep, worker] }
`);
    expect(issues(r)).toEqual([]);
    const s = 'plan' in r ? r.plan.services! : [];
    expect(s[0]).toEqual({
      name: 'api', image: 'registry.local/ewo-app:3',
      env: { PGHOST: '${db.host}', PGPASSWORD: '${db.password}', URL: 'postgres://${db.user}@${db.host}:${db.port}/${db.name}', WORKERS: '2' },
      probe: { kind: 'http', port: 8080, path: '/health', status: 200, body: 'ok', deadlineSeconds: 120 },
    });
    expect(s[1]).toMatchObject({ dependsOn: ['api'], user: '1000:1000', command: ['node', 'web.js'], probe: { kind: 'tcp', port: 80, deadlineSeconds: 300 } });
    expect(s[2]!.probe).toEqual({ kind: 'command', command: ['pgrep', 'worker'], deadlineSeconds: 120 });
    expect(startOrder([s[1]!, s[0]!, s[2]!]).map((x) => x.name)).toEqual(['api', 'web', 'jobs']);
  });

  it('a plan without services has none (its version hash does not change)', () => {
    const r = parsePlanText(head(), { policy });
    expect('plan' in r && r.plan.services).toBeUndefined();
  });

  it('refuses what must not run, each with its line and path', () => {
    const r = parse(`  - name: db
    image: alpine:latest
    user: "0"
    env: { PGPASSWORD: "\${db.secret}", "bad name": x }
    command: [sh, -c, "echo \${db.password}"]
    probe: { http: { port: 99999 }, tcp: { port: 1 } }
  - name: web
    image: registry.local/ewo-app:3
    dependsOn: [web2]
  - name: web2
    image: registry.local/ewo-app:3
    dependsOn: [web]
    probe: { tcp: { port: 1 }, deadline: 1h }
`);
    const text = issues(r).join('\n');
    expect(text).toContain('8 services[0].name: "db" is the restored database\'s name');
    expect(text).toContain('9 services[0].image: "alpine:latest" is not among the images the operator allows');
    expect(text).toContain('services[0].user: "user" is never 0 (root)');
    expect(text).toContain('services[0].env.PGPASSWORD: unknown placeholder ${db.secret}');
    expect(text).toContain('services[0].env.bad name: "bad name" is not a variable name');
    expect(text).toContain('services[0].command: "command" cannot use placeholders');
    expect(text).toContain('a probe has exactly one of "http", "tcp" or "command"');
    expect(text).toContain('services: services depend on each other in a cycle: web -> web2 -> web');
    expect(text).toContain('services[2].probe.deadline: "deadline" is from 1s up to the sandbox\'s timeout (600s)');
  });

  it('names a dependency that is not there; a MariaDB restore\'s services get the same database placeholders', () => {
    expect(issues(parse(`  - { name: web, image: registry.local/ewo-app:3, dependsOn: [api] }\n`)).join('\n')).toContain('services[0].dependsOn: "api" is not a service of this plan');
    expect(issues(parse(`  - { name: web, image: registry.local/ewo-app:3, env: { DB: "\${db.host}:\${db.port}" } }\n`, 'mariadb'))).toEqual([]);
    expect(issues(parse(`  - { name: web, image: registry.local/ewo-app:3, env: { ROOT: "\${files.path}" } }\n`, 'mariadb')).join('\n')).toContain('unknown placeholder ${files.path}');
  });

  it('a file restore\'s services name the restored tree (${files.path}), never a database', () => {
    const ok = parse(`  - { name: web, image: registry.local/ewo-app:3, env: { SHARE: "\${files.path}/Kämmerei" }, probe: { http: { port: 8080, path: /health } } }\n`, 'files');
    expect(issues(ok)).toEqual([]);
    expect('plan' in ok && ok.plan.services![0]!.env).toEqual({ SHARE: '${files.path}/Kämmerei' });
    expect(issues(parse(`  - { name: web, image: registry.local/ewo-app:3, env: { PGHOST: "\${db.host}" } }\n`, 'files')).join('\n'))
      .toContain('unknown placeholder ${db.host}; known: ${files.path}');
    expect(issues(parse(`  - { name: web, image: registry.local/ewo-app:3, env: { ROOT: "\${files.path}" } }\n`, 'postgres')).join('\n'))
      .toContain('unknown placeholder ${files.path}');
  });

  it('without a policy (plans:check) any image is accepted; the shape is still checked', () => {
    expect(issues(parse(`  - { name: web, image: alpine:latest }\n`, 'postgres', null))).toEqual([]);
  });

  it('external, manual and exercise plans have no services', () => {
    const r = parsePlanText(`id: x1\ntitle: X\nkind: external\ntargets: { rto: 1h, rpo: 1d }\nexternal: { tool: Veeam }\nservices: []\n`);
    expect(issues(r).join('\n')).toContain('an external plan has no "services"');
  });
});

describe('service env and redaction', () => {
  const endpoint = { port: 5432, user: 'ernstfall_app', password: 'c0ffee'.repeat(8), database: 'ewo' };
  it('fills in the placeholders, nothing else', () => {
    expect(resolveEnv({ A: 'postgres://${db.user}:${db.password}@${db.host}:${db.port}/${db.name}', B: '${HOME}' }, dbValues(endpoint)))
      .toEqual([`A=postgres://ernstfall_app:${endpoint.password}@db:5432/ewo`, 'B=${HOME}']);
  });
  it('redacts the password, also URL- and base64-encoded', () => {
    const b64 = Buffer.from(endpoint.password).toString('base64');
    expect(redact(`pw=${endpoint.password} basic ${b64}`, [endpoint.password])).toBe('pw=[redacted] basic [redacted]');
  });
});
