import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';

import { Redis } from 'ioredis';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { enrol, login, send, sessionCookie, someIp, type Session } from '../helpers/session.js';
import { totpCode } from '../../services/auth/crypto.js';
import { appDeps, buildApp } from '../../services/api/app.js';
import { PROVIDER_TENANT_ID } from '../../services/audit/audit.service.js';
import { AccountService } from '../../services/auth/account.service.js';
import { LOGIN_LIMITS } from '../../services/auth/login-limits.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';

let h: Harness;
let logs = '';
/** every secret the test sees: none may reach the log or the audit trail */
const secrets: string[] = [];
const keep = (s: string): string => (secrets.push(s), s);

const PROV = { email: 'Chef@Dienstleister.example', name: 'Chefin Provider', password: keep('Provider-Passwort-2026!') };
const OPER = { email: 'operator@stadt.example', name: 'Olaf Operator', password: keep('Betriebs-Kennwort-2026!') };
let provSecret = '';
let provRecovery: string[] = [];
let prov: Session;
let operId = '';

const bootstrap = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) =>
  send(h, undefined, method, url, body, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
const bearer = (token: string, method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) =>
  send(h, undefined, method, url, body, { headers: { authorization: `Bearer ${token}` } });
const userRow = (email: string) => h.tdb.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirstOrThrow();
async function audit(tenantId: string) {
  const rows = await h.tdb.db.selectFrom('ledger_records').select(['canonical']).where('tenant_id', '=', tenantId).where('kind', '=', 'audit').orderBy('seq').execute();
  return rows.map((r) => JSON.parse(r.canonical).payload as { action: string; actor: { name: string; viaProviderGrant?: boolean }; subject?: { id: string }; details?: Record<string, unknown> });
}
/** Invites (with the given admin) and accepts; returns the user's id. */
async function inviteAndAccept(as: (m: 'POST', u: string, b: unknown) => Promise<{ status: number; body: any }>, u: { email: string; name: string; password: string }, role: string) {
  const inv = await as('POST', '/api/v1/users', { email: u.email, name: u.name, role });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  keep(inv.body.inviteToken);
  const acc = await send(h, undefined, 'POST', '/auth/invite', { token: inv.body.inviteToken, password: u.password });
  expect(acc.status, JSON.stringify(acc.body)).toBe(200);
  return acc.body.user.id as string;
}

beforeAll(async () => {
  h = await startHarness({
    worker: false,
    env: { ERNSTFALL_SECRET_KEY: randomBytes(24).toString('hex'), ERNSTFALL_LOGIN_MAX_FAILURES: '3', ERNSTFALL_LOGIN_LOCK: 'PT60S', LOG_LEVEL: 'debug' },
    logSink: { write: (s: string) => { logs += s; } },
  });
});
afterAll(async () => {
  await h?.close();
});

describe('first set-up, invitations, second factor', () => {
  it('the bootstrap token invites the first provider admin, once; nobody else may', async () => {
    const svc = await bootstrap('POST', '/api/v1/tokens', { name: 'ci-admin', role: 'admin' });
    expect(svc.status).toBe(201);
    keep(svc.body.token);
    expect((await bearer(svc.body.token, 'POST', '/api/v1/setup/provider-admin', { email: PROV.email, name: PROV.name })).status).toBe(403);

    const inv = await bootstrap('POST', '/api/v1/setup/provider-admin', { email: PROV.email, name: PROV.name });
    expect(inv.status, JSON.stringify(inv.body)).toBe(201);
    expect(inv.body.user).toMatchObject({ email: 'chef@dienstleister.example', role: 'provider-admin', tenantId: null, mfa: false });
    expect(inv.body.inviteToken).toMatch(/^efi_/);
    expect(inv.body.inviteUrl).toBe(`/invite/${inv.body.inviteToken}`);
    keep(inv.body.inviteToken as string);
    // not accepted yet: the invitation may be sent again (the first link stops working)
    const again = await bootstrap('POST', '/api/v1/setup/provider-admin', { email: PROV.email, name: PROV.name });
    expect(again.status).toBe(201);
    const token = keep(again.body.inviteToken as string);
    expect((await send(h, undefined, 'POST', '/auth/invite/info', { token: inv.body.inviteToken })).status).toBe(404);

    expect((await send(h, undefined, 'POST', '/auth/invite/info', { token })).body).toEqual({ email: 'chef@dienstleister.example', name: PROV.name });
    const weak = await send(h, undefined, 'POST', '/auth/invite', { token, password: 'kurz' });
    expect(weak.status).toBe(400);
    expect(weak.body.details[0].path).toBe('password');
    expect((await send(h, undefined, 'POST', '/auth/invite', { token, password: PROV.password })).status).toBe(200);
    expect((await bootstrap('POST', '/api/v1/setup/provider-admin', { email: 'zweite@dienstleister.example', name: 'Zweite' })).status).toBe(409);
    // an invitation works once
    expect((await send(h, undefined, 'POST', '/auth/invite', { token, password: PROV.password })).status).toBe(404);
    expect((await send(h, undefined, 'POST', '/auth/invite/info', { token })).status).toBe(404);
    const row = await userRow(PROV.email);
    expect(row.password_hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(row.invite_token_hash).toBeNull();
    expect(JSON.stringify(row)).not.toContain(PROV.password);
  });

  it('an admin must set up a second factor before anything else; the secret is stored only sealed', async () => {
    const s = await login(h, PROV.email, PROV.password);
    expect(s.stage).toBe('enrol');
    // half signed in: neither the API nor a code entry
    expect((await send(h, s, 'GET', '/api/v1/tenants')).status).toBe(401);
    expect((await send(h, s, 'POST', '/auth/code', { code: '123456' })).status).toBe(409);
    expect((await send(h, s, 'POST', '/auth/enrol/start', undefined, { csrf: false })).status).toBe(403);

    const start = await send(h, s, 'POST', '/auth/enrol/start');
    expect(start.status).toBe(200);
    provSecret = keep(start.body.secret as string);
    expect(start.body.otpauthUri).toMatch(/^otpauth:\/\/totp\/ernstfall:chef%40dienstleister\.example\?/);
    expect(start.body.qrSvg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    let row = await userRow(PROV.email);
    expect(row.totp_enabled_at).toBeNull();
    expect(row.totp_secret_enc).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(provSecret);

    const halfCookie = s.cookie;
    expect((await send(h, s, 'POST', '/auth/enrol/confirm', { code: String((Number(totpCode(provSecret, h.c.clock())) + 500_000) % 1_000_000).padStart(6, '0') })).status).toBe(400);
    const done = await send(h, s, 'POST', '/auth/enrol/confirm', { code: totpCode(provSecret, h.c.clock()) });
    expect(done.status).toBe(200);
    expect(done.body.recoveryCodes).toHaveLength(10);
    done.body.recoveryCodes.forEach((c: string) => keep(c));
    // a new session token with every stage: the half-signed-in cookie is worthless now
    expect(s.cookie).not.toBe(halfCookie);
    expect((await send(h, { cookie: halfCookie, csrf: s.csrf }, 'GET', '/auth/me')).status).toBe(401);
    const me = await send(h, s, 'GET', '/auth/me');
    expect(me.body).toMatchObject({ stage: 'full', role: 'provider-admin', tenant: null, user: { mfa: true } });
    row = await userRow(PROV.email);
    expect(row.totp_enabled_at).not.toBeNull();
    expect(row.recovery_codes.every((c) => /^[0-9a-f]{64}$/.test(c.hash) && c.usedAt === null)).toBe(true);
    const stored = JSON.stringify(row);
    for (const c of done.body.recoveryCodes) expect(stored).not.toContain(c);
    prov = s;
    provRecovery = done.body.recoveryCodes;
  });

  it('a TOTP code is accepted once only, even sent by several sessions at the same moment; recovery codes work once each', async () => {
    const half = async (): Promise<Session> => {
      const res = await send(h, undefined, 'POST', '/auth/login', { email: PROV.email, password: PROV.password }, { ip: someIp() });
      expect(res.body.stage).toBe('password');
      return { cookie: sessionCookie(res.headers)!, csrf: res.body.csrfToken as string };
    };
    const sessions: Session[] = [];
    for (let i = 0; i < 6; i++) sessions.push(await half());
    const a = sessions[0]!;
    expect((await send(h, a, 'GET', '/api/v1/tenants')).status).toBe(401);
    // the code that confirmed the enrolment is spent
    const last = Number((await userRow(PROV.email)).totp_last_step);
    expect((await send(h, a, 'POST', '/auth/code', { code: totpCode(provSecret, new Date(last * 30_000)) })).body).toMatchObject({ reason: 'reused' });
    // a session that owes its code cannot set up a new authenticator app instead
    expect((await send(h, a, 'POST', '/auth/enrol/start')).status).toBe(403);
    expect((await send(h, a, 'POST', '/auth/enrol/confirm', { code: totpCode(provSecret, h.c.clock()) })).status).toBe(403);
    expect((await userRow(PROV.email)).totp_pending_enc).toBeNull();

    // the next code, from six sessions at once (the row lock lets exactly one through)
    const step = Math.max(Math.floor(Date.now() / 30_000), last + 1);
    if (step > Math.floor(Date.now() / 30_000) + 1) await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 50));
    const code = totpCode(provSecret, new Date(step * 30_000));
    const answers = await Promise.all(sessions.map((s) => send(h, s, 'POST', '/auth/code', { code }, { ip: someIp() })));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 401, 401, 401, 401, 401]);
    expect(answers.filter((r) => r.status === 401).every((r) => r.body.reason === 'reused')).toBe(true);

    const b = sessions[answers.findIndex((r) => r.status === 401)]!;
    const rc = await send(h, b, 'POST', '/auth/code', { code: provRecovery[0]!.toUpperCase().replace(/-/g, ' ') });
    expect(rc.status).toBe(200);
    expect(rc.body).toMatchObject({ usedRecoveryCode: true, recoveryCodesLeft: 9 });
    const c = sessions.find((s) => s !== b && answers[sessions.indexOf(s)]!.status === 401)!;
    expect((await send(h, c, 'POST', '/auth/code', { code: provRecovery[0]! })).body.reason).toBe('reused');
    expect((await send(h, c, 'POST', '/auth/code', { code: 'aaaa-bbbb-cccc' })).body.reason).toBe('invalid');
    const events = (await audit(PROVIDER_TENANT_ID)).map((e) => e.action);
    expect(events).toContain('mfa.enrolled');
    expect(events).toContain('mfa.recovery-code-used');
    expect(events.filter((e) => e === 'login.succeeded')).toHaveLength(3);
    await h.tdb.db.updateTable('users').set({ failed_logins: 0 }).where('email', '=', PROV.email.toLowerCase()).execute();
  });

  it('an operator invited by the tenant admin signs in with the password alone; a missing CSRF token is refused', async () => {
    operId = await inviteAndAccept((m, u, b) => bootstrap(m, u, b), OPER, 'operator');
    const s = await login(h, OPER.email, OPER.password);
    expect(s.stage).toBe('full');
    expect((await send(h, s, 'GET', '/api/v1/plans')).status).toBe(200);
    const noCsrf = await send(h, s, 'POST', '/api/v1/tokens', { name: 'cli', role: 'operator' }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect((await send(h, s, 'POST', '/api/v1/tokens', { name: 'cli', role: 'operator' }, { csrf: false, headers: { 'x-csrf-token': 'wrong' } })).status).toBe(403);
    const withCsrf = await send(h, s, 'POST', '/api/v1/tokens', { name: 'cli', role: 'operator' });
    expect(withCsrf.status).toBe(201);
    keep(withCsrf.body.token);
  });
});

describe('guessing: lockout and rate limit', () => {
  it('locks the account after N wrong passwords, refuses even the right one while locked, and doubles the lock', async () => {
    const ip = someIp();
    const attempt = (password: string) => send(h, undefined, 'POST', '/auth/login', { email: OPER.email, password }, { ip });
    expect((await attempt('falsch-1')).status).toBe(401);
    expect((await attempt('falsch-2')).status).toBe(401);
    const third = await attempt('falsch-3');
    expect(third.status).toBe(423);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(55);
    expect(Number(third.headers['retry-after'])).toBeLessThanOrEqual(60);
    const right = await attempt(OPER.password);
    expect(right.status).toBe(423);
    expect(sessionCookie(right.headers)).toBeUndefined();

    // the lock runs out; the failures go on: the next lock is twice as long
    await h.tdb.db.updateTable('users').set({ locked_until: new Date(h.c.clock().getTime() - 1000) }).where('id', '=', operId).execute();
    expect((await attempt('falsch-4')).status).toBe(401);
    expect((await attempt('falsch-5')).status).toBe(401);
    const again = await attempt('falsch-6');
    expect(again.status).toBe(423);
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(115);
    expect(Number(again.headers['retry-after'])).toBeLessThanOrEqual(120);

    await h.tdb.db.updateTable('users').set({ locked_until: new Date(h.c.clock().getTime() - 1000) }).where('id', '=', operId).execute();
    expect((await attempt(OPER.password)).status).toBe(200);
    expect((await userRow(OPER.email)).failed_logins).toBe(0);
    const events = await audit(DEFAULT_TENANT_ID);
    expect(events.filter((e) => e.action === 'login.locked').map((e) => e.details?.lockSeconds)).toEqual([60, 120]);
    expect(events.filter((e) => e.action === 'login.failed' && e.details?.reason === 'locked')).toHaveLength(1);
  });

  it('wrong TOTP codes count as failures too', async () => {
    const ip = someIp();
    const res = await send(h, undefined, 'POST', '/auth/login', { email: PROV.email, password: PROV.password }, { ip });
    const s: Session = { cookie: sessionCookie(res.headers)!, csrf: res.body.csrfToken };
    const wrong = String((Number(totpCode(provSecret, h.c.clock())) + 500_000) % 1_000_000).padStart(6, '0');
    expect((await send(h, s, 'POST', '/auth/code', { code: wrong }, { ip })).status).toBe(401);
    expect((await send(h, s, 'POST', '/auth/code', { code: wrong }, { ip })).status).toBe(401);
    const locked = await send(h, s, 'POST', '/auth/code', { code: wrong }, { ip });
    expect(locked.status).toBe(423);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // not even the right code gets through now, nor the password
    expect((await send(h, s, 'POST', '/auth/code', { code: totpCode(provSecret, new Date(h.c.clock().getTime() + 30_000)) }, { ip })).status).toBe(423);
    expect((await send(h, undefined, 'POST', '/auth/login', { email: PROV.email, password: PROV.password }, { ip: someIp() })).status).toBe(423);
    await h.tdb.db.updateTable('users').set({ locked_until: null, failed_logins: 0 }).where('email', '=', PROV.email.toLowerCase()).execute();
  });

  it('answers 429 with Retry-After once an address has used up its attempts (401s count)', async () => {
    const app = await buildApp({ ...appDeps(h.c, ['api']), authRateLimit: { max: 3, timeWindowMs: 60_000 } });
    try {
      const ip = someIp();
      const attempt = (from: string) => app.inject({ method: 'POST', url: '/auth/login', remoteAddress: from, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: 'niemand@example.org', password: 'x' }) });
      for (let i = 0; i < 3; i++) expect((await attempt(ip)).statusCode).toBe(401);
      const limited = await attempt(ip);
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(limited.body)).toMatchObject({ error: 'TooManyRequests' });
      // another address is not affected
      expect((await attempt(someIp())).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('an unknown e-mail gets the same answer as a wrong password and is recorded in the provider chain', async () => {
    const unknown = await send(h, undefined, 'POST', '/auth/login', { email: 'Niemand@Example.ORG', password: 'irgendwas-langes' }, { ip: someIp() });
    const wrong = await send(h, undefined, 'POST', '/auth/login', { email: OPER.email, password: 'irgendwas-langes' }, { ip: someIp() });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    const key = h.c.accounts.limits.accountKey('niemand@example.org');
    const rec = (await audit(PROVIDER_TENANT_ID)).filter((e) => e.action === 'login.failed' && e.details?.account === key);
    expect(rec.length).toBeGreaterThan(0);
    expect(rec[0]!.details).toEqual({ account: key, reason: 'unknown-user' });
    await h.tdb.db.updateTable('users').set({ failed_logins: 0 }).where('id', '=', operId).execute();
  });

  it('an unknown address: only a keyed hash of what was typed is recorded, one record per window, then 429 for that account key across API processes', async () => {
    // failing input: a password typed into the e-mail field, again and again, spread over two API processes
    const typed = keep('Mein-Passwort-Im-Falschen-Feld-2026!');
    const key = h.c.accounts.limits.accountKey(typed.toLowerCase());
    expect(key).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    const other = await buildApp(appDeps(h.c, ['api']));
    try {
      const attempt = (app: typeof other, email: string, password = 'irgendwas') => app.inject({ method: 'POST', url: '/auth/login', remoteAddress: someIp(), headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email, password }) });
      for (let i = 0; i < LOGIN_LIMITS.maxFailures; i++) expect((await attempt(i % 2 ? other : h.app, typed)).statusCode).toBe(401);
      for (const app of [h.app, other]) {
        const limited = await attempt(app, typed);
        expect(limited.statusCode).toBe(429);
        expect(JSON.parse(limited.body)).toMatchObject({ error: 'TooManyRequests', reason: 'throttled' });
        expect(Number(limited.headers['retry-after'])).toBeGreaterThan(LOGIN_LIMITS.windowSeconds - 60);
      }
      // the sign-in page answers the same
      const page = await h.app.inject({ method: 'POST', url: '/login', remoteAddress: someIp(), headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
        payload: `email=${encodeURIComponent(typed)}&password=irgendwas` });
      expect(page.statusCode).toBe(429);
      expect(Number(page.headers['retry-after'])).toBeGreaterThan(0);
      const records = (await audit(PROVIDER_TENANT_ID)).filter((e) => e.action === 'login.failed' && e.details?.account === key);
      expect(records).toHaveLength(1);
      expect(records[0]!.details).toEqual({ account: key, reason: 'unknown-user' });
      const ledger = (await h.tdb.db.selectFrom('ledger_records').select('canonical').execute()).map((r) => r.canonical).join('\n');
      expect(ledger).not.toContain(typed.toLowerCase());

      // healthy input: another address fails and is recorded on its own; a person who knows the password signs in;
      // a wrong password of a known account is recorded as before (under the account's address, not what was typed)
      const elseKey = h.c.accounts.limits.accountKey('jemand-anders@example.org');
      expect((await attempt(other, 'Jemand-Anders@Example.org')).statusCode).toBe(401);
      expect((await audit(PROVIDER_TENANT_ID)).filter((e) => e.details?.account === elseKey)).toHaveLength(1);
      expect((await attempt(h.app, OPER.email, 'falsch-falsch-falsch')).statusCode).toBe(401);
      expect((await audit(DEFAULT_TENANT_ID)).filter((e) => e.action === 'login.failed').at(-1)?.details).toMatchObject({ email: OPER.email, reason: 'wrong-password' });
      expect((await attempt(other, OPER.email, OPER.password)).statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('a flood of one account key: the next window\'s record carries how many failures got no record of their own (counted in Redis)', async () => {
    const accounts = new AccountService(h.c.db, h.c.sessions, h.c.audit, h.config.auth, { clock: h.c.clock, loginLimits: { maxFailures: 3, windowSeconds: 4, auditWindowSeconds: 4 } });
    const counters = { redis: h.c.redis, nameSpace: `${h.prefix}:flood-test:` };
    const key = accounts.limits.accountKey('flut@example.org');
    const records = async () => (await audit(PROVIDER_TENANT_ID)).filter((e) => e.details?.account === key).map((e) => e.details);
    for (let i = 0; i < 3; i++) expect(await accounts.login('Flut@Example.org', 'x', { ip: '10.9.9.9', counters })).toEqual({ ok: false, reason: 'invalid' });
    expect(await accounts.login('flut@example.org', 'x', { counters })).toMatchObject({ ok: false, reason: 'throttled' });
    expect(await records()).toEqual([{ account: key, reason: 'unknown-user' }]);
    // both windows over (4 s: long enough for three sign-ins under load): one record more, with the two aggregated failures and the throttled attempt
    await new Promise((r) => setTimeout(r, 4100));
    expect(await accounts.login('flut@example.org', 'x', { counters })).toEqual({ ok: false, reason: 'invalid' });
    expect(await records()).toEqual([{ account: key, reason: 'unknown-user' }, { account: key, reason: 'unknown-user', unrecordedBefore: 3 }]);
    expect(await h.c.redis.get(`${counters.nameSpace}account-failures:${key.slice('hmac-sha256:'.length)}`)).toBe('1');
  });

  it('while Redis is unreachable the counts fall back to the process\'s memory: sign-in still answers, records and throttles', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    down.on('error', () => undefined);
    try {
      const accounts = new AccountService(h.c.db, h.c.sessions, h.c.audit, h.config.auth, { clock: h.c.clock, loginLimits: { maxFailures: 2, windowSeconds: 60, auditWindowSeconds: 60 } });
      const counters = { redis: down, nameSpace: `${h.prefix}:down:` };
      const key = accounts.limits.accountKey('ohne-redis@example.org');
      expect(await accounts.login('ohne-redis@example.org', 'x', { counters })).toEqual({ ok: false, reason: 'invalid' });
      expect(await accounts.login('ohne-redis@example.org', 'x', { counters })).toEqual({ ok: false, reason: 'invalid' });
      expect(await accounts.login('ohne-redis@example.org', 'x', { counters })).toMatchObject({ ok: false, reason: 'throttled' });
      expect((await audit(PROVIDER_TENANT_ID)).filter((e) => e.details?.account === key)).toHaveLength(1);
      // a person with the right password is not held up
      expect(await accounts.login(OPER.email, OPER.password, { counters })).toMatchObject({ ok: true });
    } finally {
      down.disconnect();
    }
  });

  it('a login form posted cross-site (not JSON) is refused', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/auth/login', remoteAddress: someIp(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=${encodeURIComponent(OPER.email)}&password=${encodeURIComponent(OPER.password)}` });
    expect(res.statusCode).toBe(415);
    expect(sessionCookie(res.headers as Record<string, unknown>)).toBeUndefined();
  });
});

describe('sessions', () => {
  it('logout ends the session; logout everywhere voids every other session too', async () => {
    const a = await login(h, OPER.email, OPER.password);
    const b = await login(h, OPER.email, OPER.password);
    const c = await login(h, OPER.email, OPER.password);
    const out = await send(h, c, 'POST', '/auth/logout');
    expect(out.status).toBe(204);
    expect(sessionCookie(out.headers)).toBe('');
    expect((await send(h, c, 'GET', '/auth/me')).status).toBe(401);
    expect((await send(h, b, 'GET', '/auth/me')).status).toBe(200);
    const all = await send(h, a, 'POST', '/auth/logout-all');
    expect(all.status).toBe(200);
    expect(all.body.ended).toBeGreaterThanOrEqual(2);
    expect((await send(h, a, 'GET', '/auth/me')).status).toBe(401);
    expect((await send(h, b, 'GET', '/auth/me')).status).toBe(401);
    expect((await send(h, b, 'GET', '/api/v1/plans')).status).toBe(401);
  });

  it('a session idle too long or past its maximum age is over', async () => {
    const idle = await login(h, OPER.email, OPER.password);
    const old = await login(h, OPER.email, OPER.password);
    expect((await send(h, idle, 'GET', '/auth/me')).status).toBe(200);
    await h.tdb.db.updateTable('sessions').set({ last_seen_at: new Date(h.c.clock().getTime() - (h.config.auth.sessionIdleSeconds + 5) * 1000) })
      .where('user_id', '=', operId).where('revoked_at', 'is', null).execute();
    expect((await send(h, idle, 'GET', '/auth/me')).status).toBe(401);
    const fresh = await login(h, OPER.email, OPER.password);
    await h.tdb.db.updateTable('sessions').set({ expires_at: new Date(h.c.clock().getTime() - 1000) }).where('user_id', '=', operId).where('revoked_at', 'is', null).execute();
    expect((await send(h, fresh, 'GET', '/auth/me')).status).toBe(401);
    expect((await send(h, old, 'GET', '/auth/me')).status).toBe(401);
  });

  it('changing the password needs the current one, keeps this session and ends the others', async () => {
    const a = await login(h, OPER.email, OPER.password);
    const b = await login(h, OPER.email, OPER.password);
    const wrong = await send(h, a, 'POST', '/auth/password', { current: 'nicht-das-passwort', next: 'Neues-Passwort-2026!' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.details[0].path).toBe('current');
    const weak = await send(h, a, 'POST', '/auth/password', { current: OPER.password, next: 'aaaaaaaaaaaaaaa' });
    expect(weak.status).toBe(400);
    expect(weak.body.details[0].path).toBe('next');
    const next = keep('Neues-Betriebs-Kennwort-2026!');
    expect((await send(h, a, 'POST', '/auth/password', { current: OPER.password, next })).status).toBe(204);
    expect((await send(h, a, 'GET', '/auth/me')).status).toBe(200);
    expect((await send(h, b, 'GET', '/auth/me')).status).toBe(401);
    await expect(login(h, OPER.email, OPER.password)).rejects.toThrow(/401/);
    OPER.password = next;
    await login(h, OPER.email, OPER.password);
    expect((await userRow(OPER.email)).failed_logins).toBe(0);
  });
});

describe('users and API tokens', () => {
  it('a disabled user cannot sign in, their sessions end and their API tokens stop working; enabling restores access', async () => {
    const s = await login(h, OPER.email, OPER.password);
    const tok = await send(h, s, 'POST', '/api/v1/tokens', { name: 'nightly script', role: 'operator' });
    expect(tok.status).toBe(201);
    const token = keep(tok.body.token as string);
    expect((await bearer(token, 'GET', '/api/v1/plans')).status).toBe(200);
    const off = await bootstrap('PATCH', `/api/v1/users/${operId}`, { disabled: true });
    expect(off.status).toBe(200);
    expect(off.body.disabled).toBe(true);
    expect((await bearer(token, 'GET', '/api/v1/plans')).status).toBe(401);
    expect((await send(h, s, 'GET', '/auth/me')).status).toBe(401);
    const attempt = await send(h, undefined, 'POST', '/auth/login', { email: OPER.email, password: OPER.password }, { ip: someIp() });
    expect(attempt.status).toBe(401);
    expect(attempt.body.reason).toBe('invalid');
    expect((await bootstrap('PATCH', `/api/v1/users/${operId}`, { disabled: false })).status).toBe(200);
    expect((await bearer(token, 'GET', '/api/v1/plans')).status).toBe(200);
    await login(h, OPER.email, OPER.password);
    // promoted to a role that needs a second factor: the session without one ends, the next sign-in asks for enrolment
    const before = await login(h, OPER.email, OPER.password);
    expect((await bootstrap('PATCH', `/api/v1/users/${operId}`, { role: 'reviewer' })).body.role).toBe('reviewer');
    expect((await send(h, before, 'GET', '/auth/me')).status).toBe(401);
    expect((await login(h, OPER.email, OPER.password)).stage).toBe('enrol');
    expect((await bootstrap('PATCH', `/api/v1/users/${operId}`, { role: 'operator' })).body.role).toBe('operator');
    const actions = (await audit(DEFAULT_TENANT_ID)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['user.created', 'invite.accepted', 'user.disabled', 'user.enabled', 'password.changed', 'logout', 'logout.everywhere']));
  });

  it('a user\'s API token carries at most the user\'s role; users see and revoke only their own', async () => {
    const s = await login(h, OPER.email, OPER.password);
    expect((await send(h, s, 'POST', '/api/v1/tokens', { name: 'escalate', role: 'admin' })).status).toBe(403);
    expect((await send(h, s, 'POST', '/api/v1/tokens', { name: 'sideways', role: 'auditor' })).status).toBe(403);
    const own = await send(h, s, 'POST', '/api/v1/tokens', { name: 'mein Skript', role: 'operator' });
    expect(own.status).toBe(201);
    keep(own.body.token);
    const stored = await h.tdb.db.selectFrom('api_tokens').select(['user_id', 'name']).where('id', '=', own.body.id).executeTakeFirstOrThrow();
    expect(stored).toEqual({ user_id: operId, name: 'mein Skript' });
    // acting with the token: the user's e-mail is the actor (four-eyes, "triggered by")
    await h.putPlan(pgPlan('token-plan', 'x.dump'));
    const run = await bearer(own.body.token, 'POST', '/api/v1/plans/token-plan/runs');
    expect(run.status).toBe(202);
    expect((await h.request('GET', `/api/v1/runs/${run.body.id}`)).body.triggeredBy).toBe(OPER.email);

    const mine = await send(h, s, 'GET', '/api/v1/tokens');
    expect(mine.status).toBe(200);
    expect(mine.body.items.every((t: { userId: string }) => t.userId === operId)).toBe(true);
    const others = (await bootstrap('GET', '/api/v1/tokens')).body.items.filter((t: { userId: string | null }) => t.userId !== operId);
    expect(others.length).toBeGreaterThan(0);
    expect((await send(h, s, 'POST', `/api/v1/tokens/${others[0].id}/revoke`)).status).toBe(404);
    expect((await send(h, s, 'POST', `/api/v1/tokens/${own.body.id}/revoke`)).status).toBe(204);
    expect((await bearer(own.body.token, 'GET', '/api/v1/plans')).status).toBe(401);
  });

  it('an admin demoted loses the tokens above the new role; resetting the second factor ends the sessions', async () => {
    const ADM = { email: 'admin2@stadt.example', name: 'Anna Admin', password: keep('Verwaltungs-Kennwort-2026!') };
    const id = await inviteAndAccept((m, u, b) => bootstrap(m, u, b), ADM, 'admin');
    const s = await login(h, ADM.email, ADM.password);
    expect(s.stage).toBe('enrol');
    const { secret } = await enrol(h, s);
    keep(secret);
    const adminTok = await send(h, s, 'POST', '/api/v1/tokens', { name: 'admin-skript', role: 'admin' });
    const reviewerTok = await send(h, s, 'POST', '/api/v1/tokens', { name: 'review-skript', role: 'reviewer' });
    const auditorTok = await send(h, s, 'POST', '/api/v1/tokens', { name: 'pruef-skript', role: 'auditor' });
    expect([adminTok.status, reviewerTok.status, auditorTok.status]).toEqual([201, 201, 201]);
    [adminTok, reviewerTok, auditorTok].forEach((t) => keep(t.body.token));
    // the tenant's only admin who can sign in stays admin
    expect((await bootstrap('PATCH', `/api/v1/users/${id}`, { role: 'auditor' })).status).toBe(409);
    // an invitation not yet accepted does not count as a second admin
    const pending = await bootstrap('POST', '/api/v1/users', { email: 'pending-admin@stadt.example', name: 'Noch Nicht', role: 'admin' });
    keep(pending.body.inviteToken);
    expect((await bootstrap('PATCH', `/api/v1/users/${id}`, { role: 'auditor' })).status).toBe(409);
    await inviteAndAccept((m, u, b) => bootstrap(m, u, b), { email: 'admin3@stadt.example', name: 'Arne Admin', password: keep('Dritte-Verwaltung-2026!') }, 'admin');
    expect((await bootstrap('PATCH', `/api/v1/users/${id}`, { role: 'auditor' })).body.role).toBe('auditor');
    expect((await bearer(adminTok.body.token, 'GET', '/api/v1/plans')).status).toBe(401);
    expect((await bearer(reviewerTok.body.token, 'GET', '/api/v1/plans')).status).toBe(401);
    expect((await bearer(auditorTok.body.token, 'GET', '/api/v1/plans')).status).toBe(200);

    expect((await bootstrap('PATCH', `/api/v1/users/${id}`, { resetMfa: true })).body.mfa).toBe(false);
    expect((await send(h, s, 'GET', '/auth/me')).status).toBe(401);
    const row = await userRow(ADM.email);
    expect([row.totp_secret_enc, row.totp_enabled_at, row.totp_last_step, row.recovery_codes]).toEqual([null, null, null, []]);
    expect((await audit(DEFAULT_TENANT_ID)).some((e) => e.action === 'mfa.reset' && e.subject?.id === id)).toBe(true);
  });
});

describe('tenants and provider grants', () => {
  const CITY = { email: 'it-leitung@stadt-a.example', name: 'Ida IT-Leitung', password: keep('Stadt-A-Passwort-2026!') };
  let cityId = '';
  let cityAdminId = '';
  let city: Session;
  let grantId = '';

  it('a provider admin creates a tenant with its first admin; tenant lists are for the provider only', async () => {
    const created = await send(h, prov, 'POST', '/api/v1/tenants', { slug: 'stadt-a', name: 'Stadt A', firstAdmin: { email: CITY.email, name: CITY.name } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    cityId = created.body.tenant.id;
    expect(created.body.invitation.user).toMatchObject({ role: 'admin', tenantId: cityId });
    keep(created.body.invitation.inviteToken);
    expect((await send(h, prov, 'POST', '/api/v1/tenants', { slug: 'stadt-a', name: 'Doppelt', firstAdmin: { email: 'x@y.example', name: 'X' } })).status).toBe(409);
    expect((await send(h, prov, 'POST', '/api/v1/tenants', { slug: '_provider', name: 'Nein', firstAdmin: { email: 'x@y.example', name: 'X' } })).status).toBe(400);
    const chain = await audit(cityId);
    expect(chain[0]).toMatchObject({ action: 'tenant.created', actor: { name: 'chef@dienstleister.example' }, details: { slug: 'stadt-a', firstAdmin: CITY.email } });

    const list = await bootstrap('GET', '/api/v1/tenants');
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: { slug: string }) => t.slug)).toEqual(['default', 'stadt-a']);
    const oper = await login(h, OPER.email, OPER.password);
    expect((await send(h, oper, 'GET', '/api/v1/tenants')).status).toBe(403);

    const acc = await send(h, undefined, 'POST', '/auth/invite', { token: created.body.invitation.inviteToken, password: CITY.password });
    cityAdminId = acc.body.user.id;
    city = await login(h, CITY.email, CITY.password);
    keep((await enrol(h, city)).secret);
    expect((await send(h, city, 'PUT', '/api/v1/plans/stadt-a-ewo', pgPlan('stadt-a-ewo', 'ewo.dump'))).status).toBe(201);
  });

  it('without a grant the provider sees nothing of the tenant; with one, exactly the grant\'s role; a revoked grant ends it at the next request', async () => {
    expect((await send(h, prov, 'GET', '/api/v1/plans')).status).toBe(403);
    expect((await send(h, prov, 'GET', '/api/v1/runs')).status).toBe(403);
    expect((await send(h, prov, 'GET', '/api/v1/evidence/verify')).status).toBe(403);
    expect((await send(h, prov, 'POST', '/api/v1/provider/enter', { tenantId: cityId })).status).toBe(404);
    expect((await send(h, prov, 'POST', '/api/v1/provider/enter', { tenantId: DEFAULT_TENANT_ID })).status).toBe(404);

    const tooLong = await send(h, city, 'POST', '/api/v1/grants', { role: 'auditor', reason: 'Prüfung', expiresAt: new Date(Date.now() + 91 * 86_400_000).toISOString() });
    expect(tooLong.status).toBe(400);
    const grant = await send(h, city, 'POST', '/api/v1/grants', { role: 'auditor', reason: 'Jahresprüfung 2026', expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString() });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);
    grantId = grant.body.id;
    expect((await send(h, prov, 'GET', '/api/v1/grants')).body.items.map((g: { id: string }) => g.id)).toEqual([grantId]);

    const enter = await send(h, prov, 'POST', '/api/v1/provider/enter', { tenantId: cityId });
    expect(enter.status).toBe(200);
    expect(enter.body.role).toBe('auditor');
    expect((await send(h, prov, 'GET', '/auth/me')).body).toMatchObject({ role: 'auditor', tenant: { slug: 'stadt-a' }, viaProviderGrant: true });
    const plans = await send(h, prov, 'GET', '/api/v1/plans');
    expect(plans.status).toBe(200);
    expect(plans.body.items.map((p: { id: string }) => p.id)).toEqual(['stadt-a-ewo']);
    expect((await send(h, prov, 'GET', '/api/v1/evidence/verify')).status).toBe(200);
    // the grant's role, not more: no changes, no grants to itself, no tokens that would outlive the grant
    expect((await send(h, prov, 'POST', '/api/v1/plans/stadt-a-ewo/runs')).status).toBe(403);
    expect((await send(h, prov, 'POST', '/api/v1/grants', { role: 'admin', reason: 'mehr', expiresAt: new Date(Date.now() + 86_400_000).toISOString() })).status).toBe(403);
    expect((await send(h, prov, 'POST', '/api/v1/tokens', { name: 'hintertür', role: 'auditor' })).status).toBe(403);
    const entered = (await audit(cityId)).find((e) => e.action === 'provider.entered-tenant');
    expect(entered).toMatchObject({ actor: { name: 'chef@dienstleister.example', viaProviderGrant: true }, details: { role: 'auditor' } });

    expect((await send(h, city, 'DELETE', `/api/v1/grants/${grantId}`)).status).toBe(204);
    expect((await send(h, prov, 'GET', '/api/v1/plans')).status).toBe(403);
    expect((await send(h, prov, 'POST', '/api/v1/provider/enter', { tenantId: cityId })).status).toBe(404);
    expect((await send(h, prov, 'GET', '/api/v1/grants')).body.items).toEqual([]);
    const own = await send(h, city, 'GET', '/api/v1/grants');
    expect(own.body.items[0]).toMatchObject({ id: grantId, active: false, grantedBy: CITY.email });
  });

  it('tenant admins see and change only their own tenant\'s users and grants (404 otherwise); the last admin stays', async () => {
    const users = await send(h, city, 'GET', '/api/v1/users');
    expect(users.body.items.map((u: { email: string }) => u.email)).toEqual([CITY.email]);
    expect((await send(h, city, 'PATCH', `/api/v1/users/${operId}`, { disabled: true })).status).toBe(404);
    expect((await bootstrap('PATCH', `/api/v1/users/${cityAdminId}`, { disabled: true })).status).toBe(404);
    expect((await bootstrap('GET', '/api/v1/users')).body.items.map((u: { email: string }) => u.email)).not.toContain(CITY.email);
    expect((await bootstrap('DELETE', `/api/v1/grants/${grantId}`)).status).toBe(404);
    expect((await send(h, city, 'PATCH', `/api/v1/users/${cityAdminId}`, { role: 'operator' })).status).toBe(409);
    expect((await send(h, city, 'PATCH', `/api/v1/users/${cityAdminId}`, { disabled: true })).status).toBe(409);
    expect((await userRow(CITY.email)).role).toBe('admin');
    // the provider's own user list holds provider admins only
    const provUsers = await send(h, prov, 'GET', '/api/v1/users');
    expect(provUsers.body.items.map((u: { role: string }) => u.role)).toEqual(['provider-admin']);
    expect((await send(h, prov, 'PATCH', `/api/v1/users/${cityAdminId}`, { disabled: true })).status).toBe(404);
  });

  it('a disabled tenant: its users cannot sign in and its tokens stop working', async () => {
    const tok = await send(h, city, 'POST', '/api/v1/tokens', { name: 'stadt-skript', role: 'auditor' });
    keep(tok.body.token);
    expect((await bearer(tok.body.token, 'GET', '/api/v1/plans')).status).toBe(200);
    expect((await send(h, prov, 'PATCH', `/api/v1/tenants/${cityId}`, { disabled: true })).body.disabled).toBe(true);
    expect((await bearer(tok.body.token, 'GET', '/api/v1/plans')).status).toBe(401);
    expect((await send(h, city, 'GET', '/auth/me')).status).toBe(401);
    expect((await send(h, undefined, 'POST', '/auth/login', { email: CITY.email, password: CITY.password }, { ip: someIp() })).status).toBe(401);
    expect((await send(h, prov, 'PATCH', `/api/v1/tenants/${cityId}`, { disabled: false })).status).toBe(200);
    expect((await bearer(tok.body.token, 'GET', '/api/v1/plans')).status).toBe(200);
  });
});

describe('a provider admin by grant creates nothing that outlives the grant', () => {
  const TOWN = { email: 'admin@stadt-b.example', name: 'Bea Admin', password: keep('Stadt-B-Passwort-2026!') };
  const OPER_B = { email: 'betrieb@stadt-b.example', name: 'Bernd Betrieb', password: keep('Kennwort-Stadt-B-2026!') };

  it('with an admin grant: inviting (any role), promoting to admin and resetting second factors are 403; the tenant\'s own admin does them; other changes by grant work', async () => {
    const created = await send(h, prov, 'POST', '/api/v1/tenants', { slug: 'stadt-b', name: 'Stadt B', firstAdmin: { email: TOWN.email, name: TOWN.name } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const townId = created.body.tenant.id as string;
    keep(created.body.invitation.inviteToken);
    expect((await send(h, undefined, 'POST', '/auth/invite', { token: created.body.invitation.inviteToken, password: TOWN.password })).status).toBe(200);
    const town = await login(h, TOWN.email, TOWN.password);
    keep((await enrol(h, town)).secret);
    const as = (m: 'POST', u: string, b: unknown) => send(h, town, m, u, b);
    const operBId = await inviteAndAccept(as, OPER_B, 'operator');
    // the tenant's admin holds a second factor: the one a grant must not be able to reset
    const townAdminId = (await userRow(TOWN.email)).id;

    const grant = await send(h, town, 'POST', '/api/v1/grants', { role: 'admin', reason: 'Einrichtung durch den Dienstleister', expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);
    expect((await send(h, prov, 'POST', '/api/v1/provider/enter', { tenantId: townId })).status).toBe(200);
    expect((await send(h, prov, 'GET', '/auth/me')).body).toMatchObject({ role: 'admin', viaProviderGrant: true });
    const before = (await h.tdb.db.selectFrom('users').select('id').where('tenant_id', '=', townId).execute()).length;

    // failing input: an admin (or any account) of the provider's own making, a promotion, a reset second factor
    for (const role of ['admin', 'operator']) {
      const inv = await send(h, prov, 'POST', '/api/v1/users', { email: `hintertuer-${role}@dienstleister.example`, name: 'Hintertür', role });
      expect(inv.status, JSON.stringify(inv.body)).toBe(403);
    }
    // the page's form is refused as well (same rule in the service)
    const page = await h.app.inject({ method: 'POST', url: '/admin/users/invite', headers: { cookie: `ef_session=${prov.cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${encodeURIComponent(prov.csrf)}&email=hintertuer%40dienstleister.example&name=H&role=admin` });
    expect(page.statusCode).toBe(403);
    expect((await send(h, prov, 'PATCH', `/api/v1/users/${operBId}`, { role: 'admin' })).status).toBe(403);
    expect((await send(h, prov, 'PATCH', `/api/v1/users/${townAdminId}`, { resetMfa: true })).status).toBe(403);
    expect((await send(h, prov, 'PATCH', `/api/v1/users/${operBId}`, { resetMfa: true })).status).toBe(403);
    expect((await h.tdb.db.selectFrom('users').select('id').where('tenant_id', '=', townId).execute()).length).toBe(before);
    expect((await userRow(OPER_B.email)).role).toBe('operator');
    expect((await userRow(TOWN.email)).totp_enabled_at).not.toBeNull();

    // healthy input: what does not outlive the grant still works for the provider; the tenant's own admin may do all of it
    const renamed = await send(h, prov, 'PATCH', `/api/v1/users/${operBId}`, { name: 'Bernd B. Betrieb', role: 'reviewer' });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Bernd B. Betrieb', role: 'reviewer' });
    expect((await send(h, prov, 'PATCH', `/api/v1/users/${townAdminId}`, { role: 'admin', name: TOWN.name })).status).toBe(200);
    const own = await send(h, town, 'POST', '/api/v1/users', { email: 'zweite-admin@stadt-b.example', name: 'Zweite Admin', role: 'admin' });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    keep(own.body.inviteToken);
    expect((await send(h, town, 'PATCH', `/api/v1/users/${operBId}`, { role: 'admin' })).status).toBe(200);
    expect((await send(h, town, 'PATCH', `/api/v1/users/${operBId}`, { resetMfa: true })).status).toBe(200);

    expect((await send(h, town, 'DELETE', `/api/v1/grants/${grant.body.id as string}`)).status).toBe(204);
    expect((await send(h, prov, 'POST', '/api/v1/provider/leave')).status).toBe(200);
  });
});

describe('replacing the authenticator app', () => {
  it('a new secret from a signed-in session takes over only when confirmed; the old one stops working then', async () => {
    // a code of now: the newest accepted step must still lie in the ±1-step window below, however long the tests before took
    await login(h, PROV.email, PROV.password, provSecret);
    const before = await userRow(PROV.email);
    const start = await send(h, prov, 'POST', '/auth/enrol/start');
    expect(start.status).toBe(200);
    const next = keep(start.body.secret as string);
    let row = await userRow(PROV.email);
    expect(row.totp_secret_enc).toBe(before.totp_secret_enc);
    expect(row.totp_pending_enc).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(next);
    // not yet confirmed: the old app's codes still count (its newest code is "used", not "wrong"), the new app's do not
    const pending = await send(h, undefined, 'POST', '/auth/login', { email: PROV.email, password: PROV.password }, { ip: someIp() });
    const p: Session = { cookie: sessionCookie(pending.headers)!, csrf: pending.body.csrfToken };
    expect((await send(h, p, 'POST', '/auth/code', { code: totpCode(provSecret, new Date(Number(row.totp_last_step) * 30_000)) })).body.reason).toBe('reused');
    expect((await send(h, p, 'POST', '/auth/code', { code: totpCode(next, h.c.clock()) })).body.reason).toBe('invalid');
    await h.tdb.db.updateTable('users').set({ failed_logins: 0 }).where('email', '=', PROV.email.toLowerCase()).execute();

    const done = await send(h, prov, 'POST', '/auth/enrol/confirm', { code: totpCode(next, h.c.clock()) });
    expect(done.status).toBe(200);
    done.body.recoveryCodes.forEach((c: string) => keep(c));
    row = await userRow(PROV.email);
    expect(row.totp_pending_enc).toBeNull();
    expect(row.totp_secret_enc).not.toBe(before.totp_secret_enc);
    expect(row.recovery_codes.filter((c) => c.usedAt === null)).toHaveLength(10);
    const res = await send(h, undefined, 'POST', '/auth/login', { email: PROV.email, password: PROV.password }, { ip: someIp() });
    const s: Session = { cookie: sessionCookie(res.headers)!, csrf: res.body.csrfToken };
    expect((await send(h, s, 'POST', '/auth/code', { code: totpCode(provSecret, new Date(h.c.clock().getTime() + 30_000)) })).body.reason).toBe('invalid');
    // the old recovery codes went with the old app
    expect((await send(h, s, 'POST', '/auth/code', { code: provRecovery[1]! })).body.reason).toBe('invalid');
    expect((await send(h, prov, 'GET', '/auth/me')).status).toBe(200);
    await h.tdb.db.updateTable('users').set({ failed_logins: 0 }).where('email', '=', PROV.email.toLowerCase()).execute();
  });
});

describe('secrets', () => {
  it('no password, code, token or secret reaches the log or the audit trail', async () => {
    const ledger = (await h.tdb.db.selectFrom('ledger_records').select('canonical').execute()).map((r) => r.canonical).join('\n');
    const sessions = (await h.tdb.db.selectFrom('sessions').select('token_hash').execute()).map((r) => r.token_hash);
    expect(logs.length).toBeGreaterThan(1000);
    expect(ledger).toContain('login.succeeded');
    expect(secrets.length).toBeGreaterThan(20);
    for (const s of [...secrets, prov.cookie, prov.csrf]) {
      expect(logs, 'log').not.toContain(s);
      expect(ledger, 'audit').not.toContain(s);
    }
    // session tokens are stored only as SHA-256
    expect(sessions.every((x) => /^[0-9a-f]{64}$/.test(x))).toBe(true);
    expect(logs).not.toContain(prov.cookie);
  });
});
