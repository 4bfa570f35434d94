import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';

/** Secrets that travel in URLs (invitation links) never reach the access log. */
let h: Harness;
const logs: string[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false, env: { LOG_LEVEL: 'info' }, logSink: { write: (s: string) => void logs.push(s) } });
});
afterAll(async () => {
  await h?.close();
});

describe('secret URLs', () => {
  it('an invitation link works, and its token appears in no log line', async () => {
    const inv = await h.c.accounts.invite({ tenantId: DEFAULT_TENANT_ID, name: 'bootstrap-token', role: 'admin', kind: 'bootstrap' },
      { email: 'neu@musterstadt.de', name: 'Neue Kollegin', role: 'auditor' }, {});
    expect(inv.inviteToken).toMatch(/^efi_/);
    const page = await h.app.inject({ method: 'GET', url: `/invite/${inv.inviteToken}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('neu@musterstadt.de');
    const post = await h.app.inject({
      method: 'POST', url: `/invite/${inv.inviteToken}`, headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      payload: new URLSearchParams({ password: 'ein langes Passwort 2026!', confirm: 'ein langes Passwort 2026!' }).toString(),
    });
    expect(post.statusCode).toBeLessThan(500);
    const wrong = await h.app.inject({ method: 'GET', url: '/invite/efi_not-a-real-token' });
    expect(wrong.statusCode).toBe(404);
    const all = logs.join('');
    expect(all).toContain('/invite/[redacted]'); // the requests were logged, just without the token
    expect(all).not.toContain(inv.inviteToken);
    expect(all).not.toContain('efi_not-a-real-token');
  });
});
