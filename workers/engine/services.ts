import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Clock } from '../../services/clock.js';
import type { PullPolicy } from '../../services/config.js';
import { finding, type Finding } from '../../services/findings.js';
import { DB_ALIAS, startOrder, type DbPlaceholder } from '../../services/plans/plan-services.js';
import type { PlanService, ServiceProbe } from '../../services/plans/plan.types.js';
import type { DbEndpoint } from '../drivers/driver.js';
import { ensureImage, ImageError } from '../sandbox/images.js';
import type { RunLabels } from '../sandbox/network.js';
import { createServiceContainer, type ServiceContainer } from '../sandbox/service-container.js';

/**
 * An application group (decisions/021): after the restore, the plan's
 * services start on the run's internal network in dependsOn order (each
 * once everything it depends on is healthy) and are probed from inside that
 * network until their deadline. The group's time ends with the last probe
 * that succeeds: the service RTO.
 */

/** The user a service runs as when the plan names none. */
export const DEFAULT_SERVICE_USER = '65534:65534';
const PROBE_USER = '65534:65534';
const ATTEMPT_TIMEOUT_MS = 5_000;
const INTERVAL_MS = 1_000;
/** Without a probe, a service counts as up when it still runs this long after its start. */
const SETTLE_MS = 1_000;
const LOG_LINES = 50;
const MESSAGE_LOG_CHARS = 400;

/**
 * The probe's program: a constant, run by node in ernstfall's probe container;
 * what to ask comes as argv from the plan (a service name, a port, a path),
 * never as code. It prints one JSON line; an HTTP answer's body (its first
 * 64 KiB) goes back to the worker for the plan's match and is never kept.
 */
const PROBE_SCRIPT = String.raw`const [kind, host, port, path, ms] = process.argv.slice(1);
const done = (o) => { process.stdout.write(JSON.stringify(o) + '\n'); process.exit(0); };
setTimeout(() => done({ error: 'timeout' }), Number(ms)).unref();
if (kind === 'tcp') {
  const s = require('net').connect({ host, port: Number(port) }, () => { s.destroy(); done({ ok: true }); });
  s.on('error', (e) => done({ error: e.code || e.message }));
} else {
  const req = require('http').get({ host, port: Number(port), path, timeout: Number(ms), headers: { 'user-agent': 'ernstfall-probe' } }, (res) => {
    const parts = []; let n = 0;
    res.on('data', (c) => { if (n < 65536) { parts.push(c.subarray(0, 65536 - n)); n += c.length; } });
    res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(parts).toString('utf8') }));
    res.on('error', (e) => done({ error: e.code || e.message }));
  });
  req.on('error', (e) => done({ error: e.code || e.message }));
}`;

export interface ServiceFacts {
  name: string;
  image: string;
  imageId?: string;
  user: string;
  containerId?: string;
  /** Business time of the container's start. */
  startedAt?: string;
  /** Creating and starting the container. */
  startMs?: number;
  /** From the start until the probe first succeeded. */
  probeMs?: number;
  probe: { kind: ServiceProbe['kind'] | 'none'; attempts: number; last?: string };
  status: 'healthy' | 'unhealthy' | 'exited' | 'not-started';
  exitCode?: number | null;
}

export interface GroupResult {
  findings: Finding[];
  services: ServiceFacts[];
  /** Monotonic time when the last service answered healthy; undefined when one never did. */
  healthyAt?: number;
  /** Each service's last log lines, secrets redacted: prunable attachments. */
  logs: { name: string; content: string }[];
}

export interface GroupContext {
  docker: Docker;
  clock: Clock;
  log: Logger;
  pull: PullPolicy;
  probeImage: string;
  allowedImages: string[];
  run: RunLabels;
  network: string;
  services: PlanService[];
  access: GroupAccess;
  limits: { memoryBytes: number; cpus: number; pids: number };
  signal: AbortSignal;
}

/** The placeholders of a database restore's services. */
export function dbValues(endpoint: DbEndpoint): Record<DbPlaceholder, string> {
  return { 'db.host': DB_ALIAS, 'db.port': String(endpoint.port), 'db.user': endpoint.user, 'db.password': endpoint.password, 'db.name': endpoint.database };
}

/** `${db.host}` and friends (or `${files.path}`) filled in; nothing else is touched. */
export function resolveEnv(env: Record<string, string> | undefined, values: Record<string, string>): string[] {
  return Object.entries(env ?? {}).map(([k, v]) => `${k}=${v.replace(/\$\{([^}]*)\}/g, (m, p: string) => values[p] ?? m)}`);
}

/** What the group's services get of the restore: placeholder values, secrets to redact from their logs, the sandbox's data read-only (file trees), their default user. */
export interface GroupAccess {
  values: Record<string, string>;
  secrets: string[];
  volumesFrom?: string;
  defaultUser?: string;
}

/** Every appearance of a secret (also URL-encoded) replaced: for log lines kept as evidence. */
export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets.filter((x) => x.length >= 4)) {
    for (const form of new Set([s, encodeURIComponent(s), Buffer.from(s).toString('base64')])) out = out.split(form).join('[redacted]');
  }
  return out;
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export class ServiceGroup {
  private readonly containers: ServiceContainer[] = [];
  private probe?: ServiceContainer;
  private destroyed = false;

  constructor(private readonly ctx: GroupContext) {}

  /** Every container of the group (services and probe), for teardown's proof. */
  get ids(): string[] {
    return this.containers.map((c) => c.id);
  }

  /** Removes every container of the group; safe to call concurrently and more than once. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await Promise.all(this.containers.map((c) => c.destroy()));
  }

  /** Images allowed and present (the plan was checked when stored; the operator may have withdrawn one since). */
  private async images(): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const s of this.ctx.services) {
      if (!this.ctx.allowedImages.includes(s.image)) {
        throw new ImageError('IMAGE_NOT_ALLOWED', `service ${s.name} names image ${s.image}, which the operator does not allow (ERNSTFALL_SANDBOX_IMAGES)`);
      }
      ids.set(s.image, await this.image(s.image, `service ${s.name}'s image`));
    }
    ids.set(this.ctx.probeImage, await this.image(this.ctx.probeImage, 'the probe image (ERNSTFALL_PROBE_IMAGE)'));
    return ids;
  }

  private async image(image: string, what: string): Promise<string> {
    try {
      return (await ensureImage(this.ctx.docker, image, this.ctx.pull)).id;
    } catch (err) {
      if (err instanceof ImageError) throw new ImageError(err.code, `${what} ${image} is not on this Docker host and pulling is off (ERNSTFALL_SANDBOX_PULL=${this.ctx.pull})`);
      throw err;
    }
  }

  private async create(spec: Parameters<typeof createServiceContainer>[1]): Promise<ServiceContainer> {
    const c = await createServiceContainer(this.ctx.docker, spec);
    this.containers.push(c);
    // a stop while Docker created it: the container it made after all goes at once
    if (this.destroyed) await c.destroy().catch(() => undefined);
    this.ctx.signal.throwIfAborted();
    return c;
  }

  async run(): Promise<GroupResult> {
    const { ctx } = this;
    const ids = await this.images();
    const base = { run: ctx.run, network: ctx.network, ...ctx.limits };
    this.probe = await this.create({ ...base, name: 'probe', image: ctx.probeImage, user: PROBE_USER, env: [], command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] });
    await this.probe.start();

    const secrets = ctx.access.secrets;
    const facts = new Map<string, ServiceFacts>(ctx.services.map((s) => [s.name, {
      name: s.name, image: s.image, imageId: ids.get(s.image), user: s.user ?? ctx.access.defaultUser ?? DEFAULT_SERVICE_USER,
      probe: { kind: s.probe?.kind ?? 'none', attempts: 0 }, status: 'not-started',
    }]));
    const findings: Finding[] = [];
    const logs: GroupResult['logs'] = [];
    const byName = new Map<string, ServiceContainer>();
    const healthy = new Map<string, Promise<number | undefined>>();

    const fail = async (s: PlanService, c: ServiceContainer, code: 'SERVICE_UNHEALTHY' | 'SERVICE_EXITED', why: string) => {
      const tail = redact(await c.logsTail(LOG_LINES), secrets).trimEnd();
      if (tail) logs.push({ name: `service-${s.name}.log`, content: tail });
      const last = tail.split('\n').slice(-5).join('\n').slice(-MESSAGE_LOG_CHARS);
      findings.push(finding(code, `service ${s.name}: ${why}${last ? `; its last log lines: ${last}` : '; it wrote no log'}`));
    };

    for (const s of startOrder(ctx.services)) {
      healthy.set(s.name, (async () => {
        const deps = await Promise.all((s.dependsOn ?? []).map((d) => healthy.get(d)!));
        if (deps.some((d) => d === undefined) || ctx.signal.aborted) return undefined;
        const f = facts.get(s.name)!;
        const t0 = performance.now();
        f.startedAt = ctx.clock().toISOString();
        const c = await this.create({ ...base, name: s.name, image: s.image, user: f.user, env: resolveEnv(s.env, ctx.access.values), command: s.command, ...(ctx.access.volumesFrom && { volumesFrom: ctx.access.volumesFrom }) });
        byName.set(s.name, c);
        f.containerId = c.id;
        await c.start();
        const started = performance.now();
        f.startMs = Math.round(started - t0);
        const r = await this.waitHealthy(s, c, f, started);
        if (r.ok) {
          f.status = 'healthy';
          f.probeMs = Math.round(r.at - started);
          return r.at;
        }
        if (ctx.signal.aborted) return undefined;
        f.status = r.exited ? 'exited' : 'unhealthy';
        if (r.exited) f.exitCode = r.exitCode;
        await fail(s, c, r.exited ? 'SERVICE_EXITED' : 'SERVICE_UNHEALTHY', r.why);
        return undefined;
      })());
    }
    const times = await Promise.all([...healthy.values()]);
    ctx.signal.throwIfAborted();
    let healthyAt = times.every((t) => t !== undefined) ? Math.max(...(times as number[])) : undefined;
    // healthy once is not enough: a service that died meanwhile is not up
    for (const s of ctx.services) {
      const f = facts.get(s.name)!;
      const c = byName.get(s.name);
      if (f.status !== 'healthy' || !c) continue;
      const st = await c.state();
      if (st && !st.running) {
        f.status = 'exited';
        f.exitCode = st.exitCode;
        healthyAt = undefined;
        await fail(s, c, 'SERVICE_EXITED', `exited with code ${st.exitCode}${st.oomKilled ? ' (out of memory)' : ''} after it answered healthy`);
      }
    }
    for (const f of facts.values()) {
      if (f.status === 'not-started') findings.push(finding('SERVICE_UNHEALTHY', `service ${f.name} was not started: a service it depends on did not become healthy`));
    }
    return { findings, services: [...facts.values()], healthyAt, logs };
  }

  private async waitHealthy(s: PlanService, c: ServiceContainer, f: ServiceFacts, started: number): Promise<{ ok: true; at: number } | { ok: false; exited: boolean; exitCode?: number | null; why: string }> {
    const { signal } = this.ctx;
    const p = s.probe;
    const deadline = started + (p ? p.deadlineSeconds * 1000 : SETTLE_MS);
    for (;;) {
      if (signal.aborted) return { ok: false, exited: false, why: 'stopped' };
      const st = await c.state();
      if (!st || !st.running) {
        return { ok: false, exited: true, exitCode: st?.exitCode ?? null, why: `exited with code ${st?.exitCode ?? '?'}${st?.oomKilled ? ' (out of memory)' : ''} ${p ? `before its probe succeeded (${f.probe.attempts} attempt(s))` : 'right after its start'}` };
      }
      if (!p) {
        if (performance.now() >= deadline) return { ok: true, at: performance.now() };
      } else {
        f.probe.attempts++;
        // every attempt gets its full time, also the last one before the deadline: a cut-short last attempt
        // would report "no answer" where the service in fact answers wrong (the run's timeout still bounds it)
        const answer = await this.ask(p, s.name, c, ATTEMPT_TIMEOUT_MS);
        const at = performance.now();
        if (answer.ok) return { ok: true, at };
        f.probe.last = answer.text;
        if (at >= deadline) {
          return { ok: false, exited: false, why: `did not answer healthy within ${p.deadlineSeconds}s (${f.probe.attempts} attempt(s); last: ${answer.text})` };
        }
      }
      await sleep(Math.min(INTERVAL_MS, Math.max(0, deadline - performance.now())), signal);
    }
  }

  /** One attempt: HTTP and TCP from ernstfall's probe container, a command in the service's own. */
  private async ask(p: ServiceProbe, host: string, c: ServiceContainer, timeoutMs: number): Promise<{ ok: boolean; text: string }> {
    try {
      if (p.kind === 'command') {
        const r = await c.exec(p.command, timeoutMs);
        return { ok: r.exitCode === 0, text: `command exit ${r.exitCode ?? '?'}` };
      }
      const args = p.kind === 'http' ? ['http', host, String(p.port), p.path] : ['tcp', host, String(p.port), '-'];
      const r = await this.probe!.exec(['node', '-e', PROBE_SCRIPT, ...args, String(timeoutMs)], timeoutMs + 2_000);
      const a = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as { ok?: boolean; status?: number; body?: string; error?: string };
      if (a.error) return { ok: false, text: a.error };
      if (p.kind === 'tcp') return { ok: a.ok === true, text: a.ok ? 'connected' : 'no answer' };
      if (a.status !== p.status) return { ok: false, text: `HTTP ${a.status ?? '?'} (expected ${p.status})` };
      if (p.body !== undefined && !(a.body ?? '').includes(p.body)) return { ok: false, text: `HTTP ${a.status}, body without the expected text` };
      return { ok: true, text: `HTTP ${a.status}` };
    } catch (err) {
      return { ok: false, text: (err as Error).message.slice(0, 100) };
    }
  }
}
