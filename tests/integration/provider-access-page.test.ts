import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { UserRepository } from '../../db/repositories/user.repository.js';

/** A tenant's admin grants and ends the service provider's access in the web interface. */
let h: Harness;
let cookie = '';
let csrf = '';

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const admin = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'it-leitung@musterstadt.de', name: 'IT-Leitung', role: 'admin', created_by: 'test' });
  const s = await h.c.sessions.start(admin, { stage: 'full', method: 'password' });
  cookie = `ef_session=${s.token}`;
  csrf = s.session.csrf_token;
});
afterAll(async () => {
  await h?.close();
});

const post = (url: string, fields: Record<string, string>) => h.app.inject({
  method: 'POST', url, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ _csrf: csrf, ...fields }).toString(),
});

describe('provider access page', () => {
  it('grants access with role, reason and end date; refuses a date beyond 90 days with the reason next to the field; revokes', async () => {
    const until = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    const far = new Date(Date.now() + 120 * 86_400_000).toISOString().slice(0, 10);
    const bad = await post('/admin/provider-access', { role: 'auditor', reason: 'Ticket 4711', expiresAt: far });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('90');
    expect((await post('/admin/provider-access', { role: 'auditor', reason: '', expiresAt: until })).statusCode).toBe(400);
    const ok = await post('/admin/provider-access', { role: 'auditor', reason: 'Ticket 4711: Prüfung der Nachweise', expiresAt: until });
    expect(ok.statusCode).toBe(303);
    const grant = await h.tdb.db.selectFrom('provider_grants').selectAll().where('tenant_id', '=', DEFAULT_TENANT_ID).executeTakeFirstOrThrow();
    expect(grant).toMatchObject({ role: 'auditor', reason: 'Ticket 4711: Prüfung der Nachweise', granted_by: 'it-leitung@musterstadt.de', revoked_at: null });
    const page = await h.app.inject({ method: 'GET', url: '/admin/provider-access', headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Ticket 4711');
    expect(page.body).toContain(`/admin/provider-access/${grant.id}/revoke`);
    expect((await post(`/admin/provider-access/${grant.id}/revoke`, {})).statusCode).toBe(303);
    expect((await h.tdb.db.selectFrom('provider_grants').select('revoked_at').where('id', '=', grant.id).executeTakeFirstOrThrow()).revoked_at).not.toBeNull();
    const audit = await h.tdb.db.selectFrom('ledger_records').select('canonical').where('kind', '=', 'audit').execute();
    const actions = audit.map((r) => JSON.parse(r.canonical).payload.action);
    expect(actions).toEqual(expect.arrayContaining(['grant.created', 'grant.revoked']));
  });
});
