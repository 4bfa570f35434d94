import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * What the operator allows, and a tenant cannot change: where each tenant's
 * backups may be read, which sandbox images may run, and the upper bounds of
 * every sandbox limit. Plans are checked against it when they are stored
 * (400 naming the path) and again by the worker when they run, because the
 * operator may tighten the policy after a plan was stored.
 */
export interface SandboxPolicy {
  /** Backup roots by tenant slug; `default` comes from ERNSTFALL_BACKUP_ROOTS. */
  tenantRoots: Map<string, string[]>;
  /** Images a plan may name in `restore.image`, besides the driver's own images. */
  allowedImages: string[];
  max: SandboxMax;
  /** Worker pools a plan may name in `sandbox.pool` (ERNSTFALL_POOLS); always includes `default`. */
  pools: string[];
}

/** A worker pool's name: a queue name part and a metric label. */
export const POOL_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const DEFAULT_POOL = 'default';

/** A comma-separated list of pool names, checked. */
export function poolList(raw: string | undefined, name: string, problems: string[]): string[] {
  const pools = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of pools) if (!POOL_NAME.test(p)) problems.push(`${name}: "${p}" is not a pool name (lower-case letters, digits and -, at most 32)`);
  return [...new Set(pools.filter((p) => POOL_NAME.test(p)))];
}

export interface SandboxMax {
  memoryBytes: number;
  cpus: number;
  pids: number;
  timeoutSeconds: number;
  /** Size of the sandbox's writable data area. */
  diskBytes: number;
}

type Env = Record<string, string | undefined>;

export const BYTE_UNITS = 'written like 512m, 2g or 1536M (k, m, g, t are binary units; a bare number means bytes)';

/** Docker's convention: k/m/g/t are binary units; a bare number is bytes. NaN when unreadable. */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?$/i.exec(s.trim());
  if (!m) return NaN;
  return Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] ?? ' ').toLowerCase()));
}

export function formatBytes(n: number): string {
  for (const [unit, f] of [['t', 1024 ** 4], ['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (n >= f && n % f === 0) return `${n / f}${unit}`;
  }
  return String(n);
}

export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function rootList(value: unknown, where: string, problems: string[]): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (!list || list.some((r) => typeof r !== 'string')) {
    problems.push(`${where}: a root folder or a list of them`);
    return [];
  }
  const out: string[] = [];
  for (const r of list as string[]) {
    if (!isAbsolute(r)) problems.push(`${where}: "${r}" is not an absolute path`);
    else out.push(resolve(r));
  }
  return out;
}

/**
 * Reads the sandbox policy from the environment:
 *   ERNSTFALL_BACKUP_ROOTS         roots of the default tenant (colon-separated)
 *   ERNSTFALL_TENANT_ROOTS_FILE    YAML: `<tenant slug>: [/root, …]` for the other tenants
 *   ERNSTFALL_SANDBOX_IMAGES       comma-separated images plans may name (restore.image)
 *   ERNSTFALL_SANDBOX_MAX_MEMORY / _MAX_CPUS / _MAX_PIDS / _MAX_TIMEOUT / _MAX_DISK
 *   ERNSTFALL_POOLS                comma-separated worker pools plans may name (sandbox.pool); `default` always
 * Roots of two tenants may not overlap: a folder belongs to one tenant.
 */
export function loadSandboxPolicy(env: Env, problems: string[], durationSeconds: (name: string, def: number, min: number, max: number) => number): SandboxPolicy {
  const tenantRoots = new Map<string, string[]>();
  const defaults = (env.ERNSTFALL_BACKUP_ROOTS ?? '').split(':').filter(Boolean);
  tenantRoots.set('default', rootList(defaults, 'ERNSTFALL_BACKUP_ROOTS', problems));
  const file = env.ERNSTFALL_TENANT_ROOTS_FILE;
  if (file) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push(`ERNSTFALL_TENANT_ROOTS_FILE: cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (doc !== undefined && doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) {
      problems.push(`ERNSTFALL_TENANT_ROOTS_FILE: ${file} must map tenant slugs to root folders, e.g. "musterstadt: [/srv/backups/musterstadt]"`);
    } else if (doc) {
      for (const [slug, value] of Object.entries(doc as Record<string, unknown>)) {
        if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(slug)) {
          problems.push(`ERNSTFALL_TENANT_ROOTS_FILE: "${slug}" is not a tenant slug`);
          continue;
        }
        const roots = rootList(value, `ERNSTFALL_TENANT_ROOTS_FILE ${slug}`, problems);
        tenantRoots.set(slug, [...(tenantRoots.get(slug) ?? []), ...roots]);
      }
    }
  }
  const all = [...tenantRoots].flatMap(([slug, roots]) => roots.map((r) => ({ slug, r })));
  for (const a of all) {
    for (const b of all) {
      if (a.slug < b.slug && (isInside(a.r, b.r) || isInside(b.r, a.r))) {
        problems.push(`backup roots overlap: ${a.r} (tenant ${a.slug}) and ${b.r} (tenant ${b.slug}); a folder belongs to one tenant`);
      }
    }
  }

  const allowedImages = (env.ERNSTFALL_SANDBOX_IMAGES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of allowedImages) {
    if (!/^[a-z0-9][a-z0-9._/:@-]*$/i.test(i)) problems.push(`ERNSTFALL_SANDBOX_IMAGES: "${i}" is not an image reference`);
  }

  const bytes = (name: string, def: string, min: number): number => {
    const raw = env[name] || def;
    const n = parseBytes(raw);
    if (!(n >= min)) {
      problems.push(`${name}: "${raw}" must be at least ${formatBytes(min)}, ${BYTE_UNITS}`);
      return parseBytes(def);
    }
    return n;
  };
  const cpus = Number(env.ERNSTFALL_SANDBOX_MAX_CPUS || '4');
  if (!(cpus > 0 && cpus <= 256)) problems.push(`ERNSTFALL_SANDBOX_MAX_CPUS: "${env.ERNSTFALL_SANDBOX_MAX_CPUS}" must be a number above 0, at most 256`);
  const pidsRaw = env.ERNSTFALL_SANDBOX_MAX_PIDS || '4096';
  const pids = Number(pidsRaw);
  if (!(Number.isInteger(pids) && pids >= 16 && pids <= 1_000_000)) problems.push(`ERNSTFALL_SANDBOX_MAX_PIDS: "${pidsRaw}" must be a whole number from 16 to 1000000`);
  const pools = [DEFAULT_POOL, ...poolList(env.ERNSTFALL_POOLS, 'ERNSTFALL_POOLS', problems).filter((p) => p !== DEFAULT_POOL)];
  return {
    tenantRoots,
    allowedImages,
    pools,
    max: {
      memoryBytes: bytes('ERNSTFALL_SANDBOX_MAX_MEMORY', '8g', 64 * 1024 ** 2),
      cpus: cpus > 0 && cpus <= 256 ? cpus : 4,
      pids: Number.isInteger(pids) && pids >= 16 ? pids : 4096,
      timeoutSeconds: durationSeconds('ERNSTFALL_SANDBOX_MAX_TIMEOUT', 86_400, 60, 86_400),
      diskBytes: bytes('ERNSTFALL_SANDBOX_MAX_DISK', '200g', 64 * 1024 ** 2),
    },
  };
}
