import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

/** Behind a reverse proxy the audit trail and the sign-in limits need the client's address, not the proxy's. */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function auditedIp(env: Record<string, string>): Promise<string> {
  h = await startHarness({ worker: false, env });
  const res = await h.request('POST', '/api/v1/tokens', { name: 'proxy-test', role: 'auditor' }, { 'x-forwarded-for': '203.0.113.7' });
  expect(res.status).toBe(201);
  const rows = await h.tdb.db.selectFrom('ledger_records').select('canonical').where('kind', '=', 'audit').execute();
  const rec = rows.map((r) => JSON.parse(r.canonical).payload).find((p) => p.action === 'token.created');
  return rec.ip;
}

describe('ERNSTFALL_TRUST_PROXY', () => {
  it('takes the address from X-Forwarded-For only from a trusted proxy', async () => {
    expect(await auditedIp({ ERNSTFALL_TRUST_PROXY: '127.0.0.1' })).toBe('203.0.113.7');
  });
  it('ignores X-Forwarded-For by default (anyone could send it)', async () => {
    expect(await auditedIp({})).toBe('127.0.0.1');
  });
  it('refuses a value that is not an address list, a hop count or true', async () => {
    await expect(startHarness({ worker: false, env: { ERNSTFALL_TRUST_PROXY: 'proxy.example; rm -rf' } })).rejects.toThrow(/ERNSTFALL_TRUST_PROXY/);
  });
});
