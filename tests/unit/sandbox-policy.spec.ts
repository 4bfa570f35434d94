import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSandboxPolicy, parseBytes } from '../../services/sandbox-policy.js';
import { effectiveLimits } from '../../workers/sandbox/limits.js';
import { parsePlanText, type TenantPlanPolicy } from '../../services/plans/plan.parser.js';

const seconds = (_n: string, def: number) => def;
const load = (env: Record<string, string>) => {
  const problems: string[] = [];
  return { policy: loadSandboxPolicy(env, problems, seconds), problems };
};
const rootsFile = (text: string) => {
  const f = join(mkdtempSync(join(tmpdir(), 'ef-roots-')), 'roots.yaml');
  writeFileSync(f, text);
  return f;
};

describe('sandbox policy from the environment', () => {
  it('reads the default tenant\'s roots and the other tenants\' from the file', () => {
    const { policy, problems } = load({ ERNSTFALL_BACKUP_ROOTS: '/srv/a:/srv/a2', ERNSTFALL_TENANT_ROOTS_FILE: rootsFile('nachbarstadt: [/srv/b]\ndorf: /srv/c\n') });
    expect(problems).toEqual([]);
    expect(Object.fromEntries(policy.tenantRoots)).toEqual({ default: ['/srv/a', '/srv/a2'], nachbarstadt: ['/srv/b'], dorf: ['/srv/c'] });
    expect(policy.max).toMatchObject({ memoryBytes: 8 * 1024 ** 3, cpus: 4, pids: 4096 });
  });

  it('refuses roots of two tenants that overlap, relative roots, a bad file and bad bounds, all at once', () => {
    const { problems } = load({
      ERNSTFALL_BACKUP_ROOTS: '/srv/all',
      ERNSTFALL_TENANT_ROOTS_FILE: rootsFile('nachbarstadt: [/srv/all/nachbar]\nrel: [srv/x]\n'),
      ERNSTFALL_SANDBOX_MAX_MEMORY: 'viel', ERNSTFALL_SANDBOX_MAX_PIDS: '3',
    });
    expect(problems.join('\n')).toContain('backup roots overlap: /srv/all (tenant default) and /srv/all/nachbar (tenant nachbarstadt)');
    expect(problems.join('\n')).toContain('"srv/x" is not an absolute path');
    expect(problems.join('\n')).toContain('ERNSTFALL_SANDBOX_MAX_MEMORY');
    expect(problems.join('\n')).toContain('ERNSTFALL_SANDBOX_MAX_PIDS');
    expect(load({ ERNSTFALL_TENANT_ROOTS_FILE: '/nonexistent/roots.yaml' }).problems[0]).toContain('cannot read /nonexistent/roots.yaml');
    expect(load({ ERNSTFALL_TENANT_ROOTS_FILE: rootsFile('- /srv/a\n') }).problems[0]).toContain('must map tenant slugs');
  });

  it('parses sizes as Docker does', () => {
    expect(parseBytes('512m')).toBe(512 * 1024 ** 2);
    expect(parseBytes('2G')).toBe(2 * 1024 ** 3);
    expect(parseBytes('1536')).toBe(1536);
    expect(parseBytes('zwei')).toBeNaN();
  });
});

describe('limits: the lower of plan and operator', () => {
  const max = { memoryBytes: 2 * 1024 ** 3, cpus: 2, pids: 512, timeoutSeconds: 3600, diskBytes: 1024 ** 4 };
  it('caps what is above, and names it', () => {
    const l = effectiveLimits({ network: 'none', memoryBytes: 4 * 1024 ** 3, cpus: 1, pids: 512, timeoutSeconds: 7200 }, max);
    expect(l).toMatchObject({ memoryBytes: 2 * 1024 ** 3, cpus: 1, pids: 512, timeoutSeconds: 3600 });
    expect(l.capped).toEqual([`memoryBytes ${4 * 1024 ** 3} -> ${2 * 1024 ** 3}`, 'timeoutSeconds 7200 -> 3600']);
  });
  it('leaves a plan within the bounds as it is', () => {
    expect(effectiveLimits({ network: 'none', memoryBytes: 1024 ** 3, cpus: 2, pids: 100, timeoutSeconds: 60 }, max).capped).toEqual([]);
  });
});

describe('plans against a tenant\'s policy', () => {
  const policy: TenantPlanPolicy = { tenant: 'nachbarstadt', roots: ['/srv/b'], allowedImages: ['postgis/postgis:16'], max: { memoryBytes: 2 * 1024 ** 3, cpus: 2, pids: 512, timeoutSeconds: 3600, diskBytes: 1024 ** 4 }, pools: ['default', 'rz2'] };
  const plan = (source: string, extra = '') => `id: p1\ntitle: T\ntargets: { rto: 1h, rpo: 1d }\nsource: { type: file, path: ${source} }\nrestore: { driver: postgres, database: app${extra} }\n`;
  it('accepts paths under the tenant\'s roots, relative paths, and allowed images', () => {
    for (const text of [plan('/srv/b/x.dump'), plan('x.dump'), plan('/srv/b/x.dump', ', image: "postgis/postgis:16"')]) {
      expect('plan' in parsePlanText(text, { policy }), text).toBe(true);
    }
  });
  it('refuses with line and path: another root, a foreign image', () => {
    const r = parsePlanText(plan('/srv/a/x.dump', ', image: "evil/img:1"'), { policy });
    expect('issues' in r && r.issues).toEqual([
      { path: 'source.path', line: 4, message: expect.stringContaining('outside the backup roots of tenant nachbarstadt (/srv/b)') },
      { path: 'restore.image', line: 5, message: expect.stringContaining('"evil/img:1" is not among the images the operator allows') },
    ]);
  });
  it('a plan names a worker pool the operator set up; default is the default pool and is not stored', () => {
    const r = parsePlanText(`${plan('x.dump')}sandbox: { pool: rz2 }\n`, { policy });
    expect('plan' in r && r.plan.sandbox?.pool).toBe('rz2');
    const d = parsePlanText(plan('x.dump'), { policy });
    expect('plan' in d && d.plan.sandbox?.pool).toBeUndefined();
    // naming the default explicitly changes nothing (the same version hash as leaving it out)
    const e = parsePlanText(`${plan('x.dump')}sandbox: { pool: default }\n`, { policy });
    expect('normalized' in e && e.normalized).toEqual('normalized' in d && d.normalized);
  });
  it('refuses an unknown pool and a malformed pool name, with line and path', () => {
    const r = parsePlanText(`${plan('x.dump')}sandbox: { pool: rz3 }\n`, { policy });
    expect('issues' in r && r.issues).toEqual([{ path: 'sandbox.pool', line: 6, message: expect.stringContaining('"rz3" is not a worker pool the operator set up (ERNSTFALL_POOLS: default, rz2)') }]);
    const m = parsePlanText(`${plan('x.dump')}sandbox: { pool: "RZ 2" }\n`);
    expect('issues' in m && m.issues[0]).toMatchObject({ path: 'sandbox.pool', message: expect.stringContaining('pool name') });
  });
  it('without a policy (plans:check) only the shape counts', () => {
    expect('plan' in parsePlanText(plan('/srv/a/x.dump', ', image: "evil/img:1"'))).toBe(true);
  });
});
