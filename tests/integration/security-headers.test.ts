import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { appDeps, buildApp } from '../../services/api/app.js';

let h: Harness;
const CHROMIUM = process.env.ERNSTFALL_CHROMIUM ?? '/usr/bin/chromium';
const CSP = "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;object-src 'none';base-uri 'none';frame-ancestors 'none';form-action 'self'";

beforeAll(async () => {
  h = await startHarness({ worker: false });
  await h.putPlan(pgPlan('headers-plan', 'x.dump'));
});
afterAll(async () => {
  await h?.close();
});

function expectSecurityHeaders(headers: Record<string, unknown>) {
  expect(headers['content-security-policy']).toBe(CSP);
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['cross-origin-opener-policy']).toBe('same-origin');
  expect(headers['x-frame-options']).toBe('DENY');
  expect(headers['permissions-policy']).toBe('camera=(), microphone=(), geolocation=()');
  // the test config serves plain http: no HSTS
  expect(headers['strict-transport-security']).toBeUndefined();
}

describe('security headers', () => {
  it('are on API answers, which are never cached', async () => {
    const res = await h.request('GET', '/api/v1/plans');
    expect(res.status).toBe(200);
    expectSecurityHeaders(res.headers);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('are on the OpenAPI document, on errors and on unknown routes', async () => {
    const doc = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    expectSecurityHeaders(doc.headers);
    const unauth = await h.app.inject({ method: 'GET', url: '/api/v1/runs' });
    expect(unauth.statusCode).toBe(401);
    expectSecurityHeaders(unauth.headers);
    expect(unauth.headers['cache-control']).toBe('no-store');
    const missing = await h.request('GET', '/no/such/route');
    expect(missing.status).toBe(404);
    expectSecurityHeaders(missing.headers);
    expect(missing.headers['cache-control']).toBe('no-store');
    const invalid = await h.request('PUT', '/api/v1/plans/headers-plan', { id: 'headers-plan' });
    expect(invalid.status).toBe(400);
    expectSecurityHeaders(invalid.headers);
  });

  it('keep the calendar feed\'s own caching', async () => {
    const feed = (await h.request('POST', '/api/v1/calendar-feeds', { name: 'Kalender' })).body;
    const res = await h.app.inject({ method: 'GET', url: `/calendar/${feed.token}.ics` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('private, max-age=300');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('send Strict-Transport-Security only when served over HTTPS', async () => {
    const app = await buildApp({ ...appDeps(h.c, ['api']), hsts: true });
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    await app.close();
  });

  it('leave /docs working under the same policy', async () => {
    const docs = await h.app.inject({ method: 'GET', url: '/docs' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-security-policy']).toBe(CSP);
    expect(docs.body).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i);
    for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-initializer.js']) {
      expect((await h.app.inject({ method: 'GET', url: `/docs/static/${file}` })).statusCode).toBe(200);
    }
  });

  it.skipIf(!existsSync(CHROMIUM))('let a browser render /docs and try an operation without any CSP violation', async () => {
    const { chromium } = await import('playwright-core');
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const violations: string[] = [];
      page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
      page.on('pageerror', (e) => violations.push(e.message));
      await page.goto(`http://127.0.0.1:${port}/docs`, { waitUntil: 'networkidle' });
      await page.locator('.opblock-summary', { hasText: '/healthz' }).first().click();
      await page.locator('.try-out__btn').first().click();
      await page.locator('.execute').first().click();
      await page.locator('.live-responses-table .response-col_status', { hasText: '200' }).first().waitFor({ timeout: 10_000 });
      expect(await page.locator('.opblock').count()).toBeGreaterThan(10);
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
