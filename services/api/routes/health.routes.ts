import type { FastifyInstance } from 'fastify';

/** A dependency this process's role needs; `check` throws or returns false when it is down. */
export interface ReadinessProbe {
  name: 'database' | 'redis' | 'docker' | string;
  check: () => Promise<unknown>;
}

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), ms).unref())]);

export async function healthRoutes(app: FastifyInstance, opts: { probes: ReadinessProbe[] }) {
  app.get('/healthz', { config: { public: true }, schema: { tags: ['health'], summary: 'The process is alive' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    config: { public: true },
    schema: { tags: ['health'], summary: 'Every dependency this process needs is reachable (503 names the failing ones)' },
  }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    await Promise.all(opts.probes.map(async (p) => {
      try {
        const ok = await withTimeout(p.check(), 3000);
        checks[p.name] = ok === false ? 'failing' : 'ok';
      } catch (err) {
        checks[p.name] = `failing: ${(err as Error).message.slice(0, 100)}`;
      }
    }));
    const failing = Object.keys(checks).filter((k) => checks[k] !== 'ok');
    if (failing.length) return reply.status(503).send({ status: 'unavailable', failing, checks });
    return { status: 'ready', checks };
  });
}
