import { isMap, isScalar, isSeq } from 'yaml';
import { openMap, resolve, type Obj } from './plan.reader.js';
import type { PlanService, ServiceProbe } from './plan.types.js';

/**
 * `services:` of a plan: an application group started next to the restored
 * database on an internal network of its own (decisions/021). Images come
 * from the operator's allowlist; the database's endpoint reaches a service
 * only through placeholders in its `env` (never argv).
 */

/** What a service's env may name; the worker fills them in per run. */
export const DB_PLACEHOLDERS = ['db.host', 'db.port', 'db.user', 'db.password', 'db.name'] as const;
export type DbPlaceholder = typeof DB_PLACEHOLDERS[number];
/** A file restore's services: the restored tree's root (the sandbox's data, read-only at the same paths). */
export const FILES_PLACEHOLDERS = ['files.path'] as const;
/** The restored database's name on the run's network; no service may take it. */
export const DB_ALIAS = 'db';
export const MAX_SERVICES = 8;
const DEFAULT_DEADLINE_SECONDS = 120;
const SERVICE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const PLACEHOLDER = /\$\{([^}]*)\}/g;
/** Drivers whose restore an application can use, and what their services' env may name. */
const SERVICE_DRIVERS: Record<string, readonly string[]> = { postgres: DB_PLACEHOLDERS, mariadb: DB_PLACEHOLDERS, files: FILES_PLACEHOLDERS };

function argv(o: Obj, k: string): string[] | undefined {
  const node = resolve(o.ctx, o.entries.get(k)!.node);
  const items = isSeq(node) ? node.items.map((i) => resolve(o.ctx, i)) : undefined;
  const out = items?.map((i) => (isScalar(i) && (typeof i.value === 'string' || typeof i.value === 'number') ? String(i.value) : undefined));
  if (!out || out.length === 0 || out.length > 64 || out.some((x) => x === undefined || x.includes('\0') || x.length > 4096)) {
    return void o.issue(k, `"${k}" is a list of arguments (argv, no shell), e.g. ["node", "server.js"]`);
  }
  if (out.some((x) => x!.includes('${'))) return void o.issue(k, `"${k}" cannot use placeholders: the database's endpoint reaches a service through "env" only (never its command line)`);
  return out as string[];
}

function envOf(o: Obj, known: readonly string[]): Record<string, string> | undefined {
  const node = resolve(o.ctx, o.entries.get('env')!.node);
  if (!isMap(node)) return void o.issue('env', '"env" is a mapping NAME: value');
  const e = openMap(o.ctx, node, `${o.path}.env`, o.entries.get('env')!.line, node.items.map((p) => String(isScalar(p.key) ? p.key.value : '')));
  if (!e) return undefined;
  const out: Record<string, string> = {};
  if (e.entries.size > 64) e.issue('', 'at most 64 variables');
  for (const [name, entry] of e.entries) {
    if (!ENV_NAME.test(name)) { e.issue(name, `"${name}" is not a variable name (letters, digits, _)`); continue; }
    const v = resolve(o.ctx, entry.node);
    if (!isScalar(v) || v.value === null || typeof v.value === 'object') { e.issue(name, `"${name}" must be a text or a number`); continue; }
    const value = String(v.value);
    if (value.includes('\0') || value.length > 4096) { e.issue(name, `"${name}" is at most 4096 characters`); continue; }
    const unknown = [...value.matchAll(PLACEHOLDER)].map((m) => m[1]!).filter((p) => !known.includes(p));
    if (unknown.length) { e.issue(name, `unknown placeholder \${${unknown[0]}}; known: ${known.map((p) => `\${${p}}`).join(', ')}`); continue; }
    out[name] = value;
  }
  return out;
}

function parseProbe(s: Obj, timeoutSeconds: number | undefined): ServiceProbe | undefined {
  const p = s.obj('probe', ['http', 'tcp', 'command', 'deadline']);
  if (!p) return undefined;
  const kinds = (['http', 'tcp', 'command'] as const).filter((k) => p.has(k));
  if (kinds.length !== 1) return void p.issue(kinds[1] ?? 'http', 'a probe has exactly one of "http", "tcp" or "command"', p.line);
  const d = p.duration('deadline');
  const deadlineSeconds = d?.seconds ?? Math.min(DEFAULT_DEADLINE_SECONDS, timeoutSeconds ?? DEFAULT_DEADLINE_SECONDS);
  if (d && (d.seconds < 1 || (timeoutSeconds !== undefined && d.seconds > timeoutSeconds))) {
    p.issue('deadline', `"deadline" is from 1s up to the sandbox's timeout (${timeoutSeconds ?? '?'}s)`);
  }
  const port = (o: Obj) => {
    const n = o.num('port', { int: true, min: 1, max: 65_535 });
    if (!o.has('port')) o.issue('port', 'missing required key "port"');
    return n;
  };
  if (kinds[0] === 'tcp') {
    const t = p.obj('tcp', ['port']);
    const n = t && port(t);
    return n === undefined ? undefined : { kind: 'tcp', port: n, deadlineSeconds };
  }
  if (kinds[0] === 'command') {
    const command = argv(p, 'command');
    return command && { kind: 'command', command, deadlineSeconds };
  }
  const h = p.obj('http', ['port', 'path', 'status', 'body']);
  if (!h) return undefined;
  const n = port(h);
  const path = h.str('path', false, /^\/[\x21-\x7e]{0,1023}$/, '"path" starts with "/" and has no spaces, e.g. /health') ?? '/';
  const status = h.num('status', { int: true, min: 100, max: 599 }) ?? 200;
  const body = h.str('body');
  if (body !== undefined && body.length > 1024) h.issue('body', '"body" is at most 1024 characters');
  return n === undefined ? undefined : { kind: 'http', port: n, path, status, ...(body !== undefined && { body }), deadlineSeconds };
}

/** Every name a service depends on, directly or not, is started before it: a cycle is refused. */
function cycleOf(services: PlanService[]): string[] | undefined {
  const by = new Map(services.map((s) => [s.name, s]));
  const state = new Map<string, 'open' | 'done'>();
  const walk = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'open') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'open');
    for (const d of by.get(name)?.dependsOn ?? []) {
      const c = walk(d, [...path, name]);
      if (c) return c;
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const s of services) {
    const c = walk(s.name, []);
    if (c) return c;
  }
  return undefined;
}

/** Services in an order that starts each after everything it depends on. */
export function startOrder(services: PlanService[]): PlanService[] {
  const done = new Set<string>();
  const out: PlanService[] = [];
  while (out.length < services.length) {
    const next = services.find((s) => !done.has(s.name) && (s.dependsOn ?? []).every((d) => done.has(d)));
    if (!next) throw new Error('services depend on each other in a cycle');
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/** `services:` of a sandbox plan, checked against the operator's image allowlist when it is given (a policy). */
export function parseServices(top: Obj, opts: { allowedImages?: string[]; driver?: string; timeoutSeconds?: number }): PlanService[] | undefined {
  const items = top.list('services');
  if (!items) return undefined;
  if (opts.driver && !SERVICE_DRIVERS[opts.driver]) {
    return void top.issue('services', `services need a restored database or file tree the application can use; the ${opts.driver} driver offers neither (only ${Object.keys(SERVICE_DRIVERS).join(', ')})`);
  }
  const known = opts.driver ? SERVICE_DRIVERS[opts.driver]! : [...DB_PLACEHOLDERS, ...FILES_PLACEHOLDERS];
  if (items.length === 0 || items.length > MAX_SERVICES) return void top.issue('services', `a group has 1 to ${MAX_SERVICES} services`);
  const out: PlanService[] = [];
  const seen = new Map<string, string>();
  const depsAt: { s: Obj; deps: string[] }[] = [];
  for (const item of items) {
    const s = openMap(top.ctx, item.node, item.path, item.line, ['name', 'image', 'env', 'command', 'dependsOn', 'user', 'probe']);
    if (!s) continue;
    const name = s.str('name', true, SERVICE_NAME, '"name" is 1 to 31 characters: a-z, 0-9 and "-", starting with a letter (the service\'s host name on the run\'s network)');
    if (name === DB_ALIAS) s.issue('name', `"${DB_ALIAS}" is the restored database's name on the run's network; choose another`);
    else if (name && seen.has(name)) s.issue('name', `service name "${name}" is already used by ${seen.get(name)}`);
    if (name) seen.set(name, item.path);
    const image = s.str('image', true);
    const allowed = opts.allowedImages;
    if (allowed && image !== undefined && !allowed.includes(image)) {
      s.issue('image', allowed.length
        ? `"${image}" is not among the images the operator allows (ERNSTFALL_SANDBOX_IMAGES: ${allowed.join(', ')})`
        : `"${image}": the operator allows no images of the plan's choosing (ERNSTFALL_SANDBOX_IMAGES)`);
    }
    const env = s.has('env') ? envOf(s, known) : undefined;
    const command = s.has('command') ? argv(s, 'command') : undefined;
    const user = s.str('user', false, /^\d{1,10}(:\d{1,10})?$/, '"user" is a numeric uid or uid:gid, e.g. 1000:1000');
    if (user !== undefined && user.split(':').some((x) => Number(x) === 0)) s.issue('user', '"user" is never 0 (root): a service runs unprivileged');
    const deps: string[] = [];
    for (const d of s.list('dependsOn') ?? []) {
      const n = resolve(top.ctx, d.node);
      if (isScalar(n) && typeof n.value === 'string') deps.push(n.value);
      else top.ctx.issues.push({ path: d.path, line: d.line, message: 'dependsOn lists service names' });
    }
    depsAt.push({ s, deps });
    const probe = s.has('probe') ? parseProbe(s, opts.timeoutSeconds) : undefined;
    if (name && image !== undefined) {
      out.push({
        name, image, ...(env && Object.keys(env).length && { env }), ...(command && { command }),
        ...(deps.length && { dependsOn: deps }), ...(user !== undefined && { user }), ...(probe && { probe }),
      });
    }
  }
  for (const { s, deps } of depsAt) {
    for (const d of deps) {
      if (d === DB_ALIAS) s.issue('dependsOn', `"${DB_ALIAS}" is always there first: the services start after the restore`);
      else if (!seen.has(d)) s.issue('dependsOn', `"${d}" is not a service of this plan`);
    }
  }
  const cycle = out.length === items.length ? cycleOf(out) : undefined;
  if (cycle) top.issue('services', `services depend on each other in a cycle: ${cycle.join(' -> ')}`);
  return out;
}
