import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startTestIdp, type IdpAccount, type TestIdp } from '../helpers/oidc-idp.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { OidcService, SsoError } from '../../services/auth/oidc.service.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';

const PUBLIC_URL = 'http://ernstfall.test';
const CALLBACK = `${PUBLIC_URL}/auth/oidc/callback`;
const OTHER_TENANT = '00000000-0000-4000-8000-0000000c1d00';
const T = 30_000;

let idp: TestIdp;
let h: Harness;

interface Login { status: number; location?: string; session?: string; body: string; json?: any }

function cookieOf(res: { cookies: { name: string; value: string }[] }, name: string): string | undefined {
  return res.cookies.find((c) => c.name === name && c.value !== '')?.value;
}

/** The whole browser round trip: start at ernstfall, sign in at the IdP as `sub`, come back to the callback. */
async function login(sub: string, o: { next?: string; tamper?: (callback: URL) => void; cookie?: string | null; accept?: string } = {}): Promise<Login> {
  const start = await h.app.inject({ method: 'GET', url: `/auth/oidc/start${o.next ? `?next=${encodeURIComponent(o.next)}` : ''}` });
  expect(start.statusCode).toBe(302);
  const state = cookieOf(start, 'ef_oidc');
  expect(state).toBeTruthy();
  const callback = await idp.authorize(start.headers.location as string, sub, CALLBACK);
  o.tamper?.(callback);
  const cookie = o.cookie === undefined ? state : o.cookie;
  const res = await h.app.inject({
    method: 'GET', url: callback.pathname + callback.search,
    ...(cookie !== null && { cookies: { ef_oidc: cookie! } }),
    headers: { accept: o.accept ?? 'application/json' },
  });
  let json: unknown;
  try { json = JSON.parse(res.body); } catch { /* a page */ }
  return { status: res.statusCode, location: res.headers.location as string | undefined, session: cookieOf(res, SESSION_COOKIE), body: res.body, json };
}

const userBySub = (sub: string) => h.tdb.db.selectFrom('users').selectAll().where('oidc_subject', '=', sub).executeTakeFirst();

/** The audit records of a tenant's chain, oldest first. */
async function audits(tenantId = DEFAULT_TENANT_ID): Promise<{ action: string; actor: { name: string }; details?: Record<string, any> }[]> {
  const rows = await h.tdb.db.selectFrom('ledger_records').select('canonical').where('tenant_id', '=', tenantId).where('kind', '=', 'audit').orderBy('seq').execute();
  return rows.map((r) => JSON.parse(r.canonical).payload);
}

const plansWith = (session: string) => h.app.inject({ method: 'GET', url: '/api/v1/plans', cookies: { [SESSION_COOKIE]: session } });

beforeAll(async () => {
  idp = await startTestIdp({ redirectUri: CALLBACK });
  h = await startHarness({
    worker: false,
    env: {
      ERNSTFALL_PUBLIC_URL: PUBLIC_URL,
      ERNSTFALL_OIDC_ISSUER: idp.issuer,
      ERNSTFALL_OIDC_CLIENT_ID: idp.clientId,
      ERNSTFALL_OIDC_CLIENT_SECRET: idp.clientSecret,
      ERNSTFALL_OIDC_ROLES_CLAIM: 'groups',
      ERNSTFALL_OIDC_ROLE_MAP: 'ef-admins=admin,ef-operators=operator,ef-reviewers=reviewer,ef-auditors=auditor',
      ERNSTFALL_OIDC_MFA_AMR: 'otp,mfa',
    },
  });
  const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
  await owner.connect();
  await owner.query(`insert into tenants (id, slug, name, created_at) values ($1, 'nachbarstadt', 'Nachbarstadt', $2)`, [OTHER_TENANT, h.c.clock()]);
  await owner.query(`insert into tenants (slug, name, disabled_at, created_at) values ('altstadt', 'Altstadt (gekündigt)', $1, $1)`, [h.c.clock()]);
  await owner.end();
}, 120_000);

afterAll(async () => {
  await h?.close();
  await idp?.close();
});

describe('single sign-on over OpenID Connect (real provider)', () => {
  it('an admin by group is provisioned just in time and signed in fully; the cookie opens the API', async () => {
    idp.accounts.set('alice-sub', { email: 'Alice.Admin@Musterstadt.example', name: 'Alice Admin', groups: ['staff', 'ef-admins'], amr: ['pwd', 'otp'] });
    const r = await login('alice-sub');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/');
    expect(r.session).toMatch(/^efs_/);

    const u = await userBySub('alice-sub');
    expect(u).toMatchObject({ email: 'alice.admin@musterstadt.example', name: 'Alice Admin', role: 'admin', tenant_id: DEFAULT_TENANT_ID, oidc_issuer: idp.issuer, password_hash: null });
    const s = await h.tdb.db.selectFrom('sessions').selectAll().where('user_id', '=', u!.id).execute();
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ method: 'oidc', stage: 'full' });

    expect((await plansWith(r.session!)).statusCode).toBe(200);
    expect((await plansWith('efs_not-a-session')).statusCode).toBe(401);

    const a = await audits();
    expect(a.find((x) => x.action === 'user.created')?.details).toMatchObject({ method: 'oidc', role: 'admin' });
    const ok = a.find((x) => x.action === 'login.succeeded');
    expect(ok).toMatchObject({ actor: { name: 'alice.admin@musterstadt.example' }, details: { method: 'oidc', issuer: idp.issuer, role: 'admin' } });
  }, T);

  it('an operator by another claim value (a comma/space separated string); `next` is honoured only as a same-site path', async () => {
    idp.accounts.set('bob-sub', { email: 'bob@musterstadt.example', name: 'Bob Betrieb', groups: 'staff, ef-operators', amr: ['pwd'] });
    const r = await login('bob-sub', { next: '/plans/ewo-db?tab=runs' });
    expect(r.status).toBe(303);
    expect(r.location).toBe('/plans/ewo-db?tab=runs');
    expect((await userBySub('bob-sub'))?.role).toBe('operator');
    expect((await plansWith(r.session!)).statusCode).toBe(200);

    for (const evil of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
      expect((await login('bob-sub', { next: evil })).location).toBe('/');
    }
  }, T);

  it('several mapped groups: the highest role wins (admin > reviewer > operator > auditor)', async () => {
    idp.accounts.set('carol-sub', { email: 'carol@musterstadt.example', name: 'Carol', groups: ['ef-auditors', 'ef-operators', 'ef-reviewers'], amr: ['pwd', 'mfa'] });
    expect((await login('carol-sub')).status).toBe(303);
    expect((await userBySub('carol-sub'))?.role).toBe('reviewer');
  }, T);

  it('groups only at the userinfo endpoint (ID token without them) still map', async () => {
    idp.accounts.set('heidi-sub', { email: 'heidi@musterstadt.example', name: 'Heidi', groups: ['ef-auditors'], groupsOnlyInUserinfo: true });
    expect((await login('heidi-sub')).status).toBe(303);
    expect((await userBySub('heidi-sub'))?.role).toBe('auditor');
  }, T);

  it('no mapped group: refused with a clear message, no session, no user, login.failed audited; a browser gets a page', async () => {
    idp.accounts.set('dave-sub', { email: 'dave@musterstadt.example', name: 'Dave', groups: ['staff', 'kantine'], amr: ['pwd', 'otp'] });
    const r = await login('dave-sub');
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: 'Forbidden', reason: 'SSO_NO_ROLE' });
    expect(r.json.message).toContain('no ernstfall role for your account');
    expect(r.json.message).toContain('ef-admins');
    expect(r.session).toBeUndefined();
    expect(await userBySub('dave-sub')).toBeUndefined();
    expect(await h.tdb.db.selectFrom('users').select('id').where('email', '=', 'dave@musterstadt.example').executeTakeFirst()).toBeUndefined();
    const failed = (await audits()).filter((x) => x.action === 'login.failed');
    expect(failed.at(-1)).toMatchObject({ actor: { name: 'anonymous' }, details: { method: 'oidc', issuer: idp.issuer, subject: 'dave-sub', email: 'dave@musterstadt.example', reason: 'sso-no-role' } });

    const page = await login('dave-sub', { accept: 'text/html,application/xhtml+xml' });
    expect(page.status).toBe(403);
    expect(page.body).toContain('<a href="/login">');
    expect(page.body).toContain('no ernstfall role for your account');
  }, T);

  it('a tampered state, a missing or forged login cookie and a replayed callback are refused', async () => {
    idp.accounts.set('eve-sub', { email: 'eve@musterstadt.example', name: 'Eve', groups: ['ef-operators'] });
    const tampered = await login('eve-sub', { tamper: (u) => u.searchParams.set('state', `${u.searchParams.get('state')}x`) });
    expect(tampered.status).toBe(400);
    expect(tampered.json).toMatchObject({ reason: 'SSO_STATE_INVALID' });
    expect(tampered.session).toBeUndefined();

    expect((await login('eve-sub', { cookie: null })).json).toMatchObject({ reason: 'SSO_STATE_INVALID' });
    expect((await login('eve-sub', { cookie: 'v1.AAAA.BBBB.CCCC' })).json).toMatchObject({ reason: 'SSO_STATE_INVALID' });

    // a code is good once: the same callback again (same cookie) is refused by the IdP
    const start = await h.app.inject({ method: 'GET', url: '/auth/oidc/start' });
    const state = cookieOf(start, 'ef_oidc')!;
    const cb = await idp.authorize(start.headers.location as string, 'eve-sub', CALLBACK);
    const first = await h.app.inject({ method: 'GET', url: cb.pathname + cb.search, cookies: { ef_oidc: state } });
    expect(first.statusCode).toBe(303);
    const again = await h.app.inject({ method: 'GET', url: cb.pathname + cb.search, cookies: { ef_oidc: state } });
    expect(again.statusCode).toBe(403);
    expect(JSON.parse(again.body)).toMatchObject({ reason: 'SSO_IDP_ERROR' });
    expect(cookieOf(again, SESSION_COOKIE)).toBeUndefined();
  }, T);

  it('MFA: an admin whose amr lacks a configured second factor is refused; with otp in amr it works', async () => {
    idp.accounts.set('erin-sub', { email: 'erin@musterstadt.example', name: 'Erin', groups: ['ef-admins'], amr: ['pwd'] });
    const refused = await login('erin-sub');
    expect(refused.status).toBe(403);
    expect(refused.json).toMatchObject({ reason: 'SSO_MFA_MISSING' });
    expect(refused.json.message).toContain('second factor');
    expect(await userBySub('erin-sub')).toBeUndefined();

    idp.accounts.get('erin-sub')!.amr = ['pwd', 'otp'];
    const ok = await login('erin-sub');
    expect(ok.status).toBe(303);
    expect((await userBySub('erin-sub'))?.role).toBe('admin');
  }, T);

  it('the next login takes the role from the IdP again; losing every mapped group ends open sessions', async () => {
    idp.accounts.set('frank-sub', { email: 'frank@musterstadt.example', name: 'Frank', groups: ['ef-operators'] });
    const first = await login('frank-sub');
    const before = await userBySub('frank-sub');
    expect(before?.role).toBe('operator');

    idp.accounts.set('frank-sub', { email: 'frank@musterstadt.example', name: 'Frank Fischer', groups: ['ef-auditors'] });
    expect((await login('frank-sub')).status).toBe(303);
    const after = await userBySub('frank-sub');
    expect(after).toMatchObject({ id: before!.id, role: 'auditor', name: 'Frank Fischer' });
    const changed = (await audits()).filter((x) => x.action === 'user.changed').at(-1);
    expect(changed?.details).toMatchObject({ method: 'oidc', role: { from: 'operator', to: 'auditor' } });

    expect((await plansWith(first.session!)).statusCode).toBe(200);
    idp.accounts.get('frank-sub')!.groups = ['staff'];
    expect((await login('frank-sub')).json).toMatchObject({ reason: 'SSO_NO_ROLE' });
    expect((await plansWith(first.session!)).statusCode).toBe(401);
  }, T);

  it('a disabled SSO user is refused, and the old session no longer works', async () => {
    idp.accounts.set('grace-sub', { email: 'grace@musterstadt.example', name: 'Grace', groups: ['ef-operators'] });
    const ok = await login('grace-sub');
    expect(ok.status).toBe(303);
    await h.tdb.db.updateTable('users').set({ disabled_at: new Date() }).where('oidc_subject', '=', 'grace-sub').execute();
    const r = await login('grace-sub');
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ reason: 'SSO_USER_DISABLED' });
    expect(r.session).toBeUndefined();
    expect((await plansWith(ok.session!)).statusCode).toBe(401);
  }, T);

  it('a password user with the same e-mail in the same tenant is linked (password off); one in another tenant is refused', async () => {
    const local = await h.tdb.db.insertInto('users').values({
      tenant_id: DEFAULT_TENANT_ID, email: 'ivan@musterstadt.example', name: 'Ivan', role: 'auditor', password_hash: 'scrypt$32768$8$1$AAAA$BBBB', created_by: 'test', created_at: h.c.clock(), sessions_valid_after: h.c.clock(),
    }).returning('id').executeTakeFirstOrThrow();
    idp.accounts.set('ivan-sub', { email: 'ivan@musterstadt.example', name: 'Ivan Iwanow', groups: ['ef-operators'] });
    expect((await login('ivan-sub')).status).toBe(303);
    const linked = await userBySub('ivan-sub');
    expect(linked).toMatchObject({ id: local.id, role: 'operator', oidc_issuer: idp.issuer, password_hash: null });

    await h.tdb.db.insertInto('users').values({ tenant_id: OTHER_TENANT, email: 'judy@musterstadt.example', name: 'Judy', role: 'admin', created_by: 'test', created_at: h.c.clock(), sessions_valid_after: h.c.clock() }).execute();
    idp.accounts.set('judy-sub', { email: 'judy@musterstadt.example', name: 'Judy', groups: ['ef-operators'] });
    const r = await login('judy-sub');
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ reason: 'SSO_EMAIL_TAKEN' });
    expect(await userBySub('judy-sub')).toBeUndefined();
  }, T);

  it('a local account is linked only by an address the IdP verified (not an unverified email, preferred_username or upn); a stored subject signs in whatever the address claims say', async () => {
    const HASH = 'scrypt$32768$8$1$AAAA$BBBB';
    const local = (email: string) => h.tdb.db.insertInto('users').values({ tenant_id: DEFAULT_TENANT_ID, email, name: 'Lokal', role: 'admin', password_hash: HASH, created_by: 'test', created_at: h.c.clock(), sessions_valid_after: h.c.clock() }).returning('id').executeTakeFirstOrThrow();
    const byEmail = (email: string) => h.tdb.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow();

    // failing input: someone else's address as an unverified email, as preferred_username, as upn
    const victim = 'kaemmerer@musterstadt.example';
    await local(victim);
    const claims: [string, IdpAccount][] = [
      ['mallory-1', { email: victim, emailVerified: false, name: 'Mallory', groups: ['ef-operators'] }],
      ['mallory-2', { email: 'x@x.example', noEmailClaim: true, preferredUsername: victim, name: 'Mallory', groups: ['ef-operators'] }],
      ['mallory-3', { email: 'x@x.example', noEmailClaim: true, upn: 'Kaemmerer@Musterstadt.example', name: 'Mallory', groups: ['ef-operators'] }],
    ];
    for (const [sub, acc] of claims) {
      idp.accounts.set(sub, acc);
      const r = await login(sub);
      expect(r.status, sub).toBe(403);
      expect(r.json, sub).toMatchObject({ reason: 'SSO_EMAIL_UNVERIFIED' });
      expect(r.session).toBeUndefined();
      expect(await userBySub(sub)).toBeUndefined();
    }
    expect(await byEmail(victim)).toMatchObject({ oidc_subject: null, role: 'admin', password_hash: HASH });
    expect((await audits()).filter((x) => x.action === 'login.failed' && x.details?.reason === 'sso-email-unverified').map((x) => x.details?.subject))
      .toEqual(['mallory-1', 'mallory-2', 'mallory-3']);

    // healthy input: a verified address links (the password goes) ...
    const kasse = 'stadtkasse@musterstadt.example';
    const kasseId = (await local(kasse)).id;
    idp.accounts.set('sabine-sub', { email: kasse, name: 'Sabine', groups: ['ef-operators'] });
    expect((await login('sabine-sub')).status).toBe(303);
    expect(await userBySub('sabine-sub')).toMatchObject({ id: kasseId, email: kasse, password_hash: null });
    // ... the stored subject signs in later even without a verified address, which the account then does not follow ...
    idp.accounts.set('sabine-sub', { email: 'sabine@anderswo.example', emailVerified: false, name: 'Sabine', groups: ['ef-operators'] });
    expect((await login('sabine-sub')).status).toBe(303);
    expect((await userBySub('sabine-sub'))?.email).toBe(kasse);
    // ... but a verified new address it does
    idp.accounts.set('sabine-sub', { email: 'sabine.neu@musterstadt.example', name: 'Sabine', groups: ['ef-operators'] });
    expect((await login('sabine-sub')).status).toBe(303);
    expect((await userBySub('sabine-sub'))?.email).toBe('sabine.neu@musterstadt.example');
    // an address from upn that no account has yet: a new user, nobody's account is taken over
    idp.accounts.set('uwe-sub', { email: 'x@x.example', noEmailClaim: true, upn: 'Uwe@Musterstadt.example', name: 'Uwe', groups: ['ef-auditors'] });
    expect((await login('uwe-sub')).status).toBe(303);
    expect(await userBySub('uwe-sub')).toMatchObject({ email: 'uwe@musterstadt.example', role: 'auditor' });
  }, T);

  it('the tenant from a claim: known tenant ok, unknown or disabled tenant refused', async () => {
    const svc = new OidcService(h.c.db, h.c.sessions, h.c.audit, { ...h.config.auth.oidc!, tenantClaim: 'tenant' }, PUBLIC_URL, { clock: h.c.clock });
    const viaClaim = async (sub: string) => {
      const { url, cookie } = await svc.start();
      return svc.callback(await idp.authorize(url, sub, CALLBACK), cookie, {});
    };
    idp.accounts.set('ken-sub', { email: 'ken@nachbarstadt.example', name: 'Ken', groups: ['ef-operators'], tenant: 'nachbarstadt' });
    const done = await viaClaim('ken-sub');
    expect(done.user).toMatchObject({ tenant_id: OTHER_TENANT, role: 'operator' });
    expect((await audits(OTHER_TENANT)).some((x) => x.action === 'login.succeeded')).toBe(true);

    for (const [sub, tenant] of [['lea-sub', 'nirgendwo'], ['max-sub', 'altstadt'], ['nina-sub', undefined], ['otto-sub', '_provider']] as const) {
      idp.accounts.set(sub, { email: `${sub}@example.org`, name: sub, groups: ['ef-operators'], ...(tenant && { tenant }) });
      await expect(viaClaim(sub)).rejects.toMatchObject({ reason: 'SSO_TENANT_UNKNOWN', statusCode: 403 });
      expect(await userBySub(sub)).toBeUndefined();
    }
  }, T);

  it('a broken IdP answers 503, and discovery is tried again on the next login (not cached as broken)', async () => {
    let hits = 0;
    const broken = createServer((_req, res) => {
      hits++;
      res.statusCode = 500;
      res.end('down for maintenance');
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
      const svc = new OidcService(h.c.db, h.c.sessions, h.c.audit, { ...h.config.auth.oidc!, issuer }, PUBLIC_URL, { clock: h.c.clock });
      for (let i = 1; i <= 2; i++) {
        const err = await svc.start().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SsoError);
        expect(err).toMatchObject({ reason: 'SSO_UNAVAILABLE', statusCode: 503 });
        expect(hits).toBe(i);
      }
    } finally {
      broken.closeAllConnections();
      await new Promise((resolve) => broken.close(resolve));
    }
    // plain HTTP only to a loopback IdP
    expect(() => new OidcService(h.c.db, h.c.sessions, h.c.audit, { ...h.config.auth.oidc!, issuer: 'http://idp.musterstadt.example' }, PUBLIC_URL, { clock: h.c.clock }))
      .toThrow(/must be https/);
  }, T);
});
