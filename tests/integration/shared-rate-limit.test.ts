import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startHarness, type Harness } from '../helpers/harness.js';
import { someIp } from '../helpers/session.js';
import { appDeps, buildApp } from '../../services/api/app.js';

/**
 * Several API processes behind one load balancer: the sign-in limit per
 * client address is counted in Redis, so two app instances (as two
 * processes would) share it, and an attacker gains nothing by spreading
 * guesses over them.
 */
let h: Harness;
let a: FastifyInstance;
let b: FastifyInstance;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const deps = { ...appDeps(h.c, ['api']), authRateLimit: { max: 4, timeWindowMs: 60_000 } };
  a = await buildApp(deps);
  b = await buildApp(deps);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await h?.close();
});

const jsonLogin = (app: FastifyInstance, ip: string) => app.inject({
  method: 'POST', url: '/auth/login', remoteAddress: ip,
  headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: 'niemand@example.org', password: 'falsch-falsch' }),
});
const pageLogin = (app: FastifyInstance, ip: string) => app.inject({
  method: 'POST', url: '/login', remoteAddress: ip,
  headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' }, payload: 'email=niemand%40example.org&password=falsch-falsch',
});

describe('sign-in limits shared by all API processes', () => {
  it('attempts on two app instances count against one limit (JSON sign-in)', async () => {
    const ip = someIp();
    // 4 attempts, alternating instances: each one alone has seen only 2
    for (const app of [a, b, a, b]) expect((await jsonLogin(app, ip)).statusCode).toBe(401);
    for (const app of [a, b]) {
      const limited = await jsonLogin(app, ip);
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    }
    // another address is not affected, on either instance
    expect((await jsonLogin(b, someIp())).statusCode).toBe(401);
  });

  it('the sign-in page shares its limit across instances too', async () => {
    const ip = someIp();
    for (const app of [b, a, b, a]) expect((await pageLogin(app, ip)).statusCode).not.toBe(429);
    expect((await pageLogin(b, ip)).statusCode).toBe(429);
    expect((await pageLogin(a, ip)).statusCode).toBe(429);
  });

  it('the counters are in Redis under the installation prefix, with the window as expiry', async () => {
    const ip = someIp();
    await jsonLogin(a, ip);
    const r = new Redis(h.config.redis.url);
    try {
      const keys = await r.keys(`${h.config.redis.prefix}:sign-in-limit:*${ip}`);
      expect(keys).toEqual([`${h.config.redis.prefix}:sign-in-limit:POST/auth/login-${ip}`]);
      expect(await r.get(keys[0]!)).toBe('1');
      const ttl = await r.pttl(keys[0]!);
      expect(ttl).toBeGreaterThan(50_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      r.disconnect();
    }
  });
});
