import { readFile, rm, mkdir, writeFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { TOTP_PERIOD, totpCode } from '../../services/auth/crypto.js';
import { repoRoot } from '../../services/config.js';
import { arrives, axe, launchChromium, sees } from '../helpers/browser.js';

/**
 * Issue #5 "Tests": a real browser (Debian's chromium driven by
 * playwright-core) against the real app, database, queue, worker and Docker
 * sandbox. Alice (admin) sets up her second factor, sees the dashboard,
 * starts a restore test and watches it finish live; Bob (reviewer) signs it
 * off; the PDF protocol is downloaded. Every main page is screenshotted and
 * checked with axe-core (WCAG 2.1 A/AA) at desktop and phone width, and no
 * page may break the Content-Security-Policy. Missing chromium fails the suite.
 */

const SRC = 'ef_browser_src';
const SHOTS = join(repoRoot, 'test-results', 'screenshots');

let h: Harness;
let dir: string;
let base = '';
let browser: Browser;
const contexts: BrowserContext[] = [];
const cspViolations: string[] = [];
const secrets: Record<string, string> = {};
/** The newest TOTP step used per person: a code works once, so the next sign-in waits for a fresh one. */
const lastStep: Record<string, number> = {};
let runUrl = '';

const USERS = {
  alice: { email: 'alice.admin@musterstadt.de', name: 'Alice Admin', role: 'admin' as const, password: 'Alice-sicheres-Passwort-2026' },
  bob: { email: 'bob.pruefer@musterstadt.de', name: 'Bob Prüfer', role: 'reviewer' as const, password: 'Bob-sicheres-Passwort-2026' },
};

/** Alice's signed-in browser state (cookies), so later tests need not wait for a fresh TOTP step to sign in again. */
let alice: Awaited<ReturnType<BrowserContext['storageState']>> | undefined;

async function newPage(width = 1280, as?: typeof alice): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true, locale: 'de-DE', ...(as && { storageState: as }) });
  contexts.push(ctx);
  // the DOM's own report as well as Chromium's console message: either one counts
  await ctx.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
  }));
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  page.setDefaultTimeout(10_000);
  return page;
}

async function freshCode(who: keyof typeof USERS): Promise<string> {
  for (;;) {
    const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD);
    if (step > (lastStep[who] ?? 0)) {
      lastStep[who] = step;
      return totpCode(secrets[who]!, new Date(step * TOTP_PERIOD * 1000 + 1000));
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Signs in through the real forms; sets up the second factor on the first sign-in. */
async function signIn(page: Page, who: keyof typeof USERS): Promise<string[] | undefined> {
  const u = USERS[who];
  await page.goto(`${base}/login`);
  await page.fill('#login-email', u.email);
  await page.fill('#login-password', u.password);
  await page.click('form[action="/login"] button[type=submit]');
  await arrives(page, /\/login\/(enrol|code)/);
  if (page.url().includes('/login/enrol')) {
    await page.locator('main svg').first().waitFor({ state: 'visible' });
    secrets[who] = (await page.locator('code.secret-key').innerText()).replace(/\s+/g, '').toUpperCase();
    await page.fill('#enrol-code', await freshCode(who));
    await page.click('form:has(#enrol-code) button[type=submit]');
    await arrives(page, /\/login\/recovery-codes/);
    const codes = await page.locator('ol.codes code').allInnerTexts();
    await page.getByRole('link', { name: 'Weiter' }).click();
    await arrives(page, `${base}/`);
    return codes;
  }
  await page.fill('#code-code', await freshCode(who));
  await page.click('form:has(#code-code) button[type=submit]');
  await arrives(page, `${base}/`);
  return undefined;
}


/** The dashboard row of a plan: its traffic light (kind and text) and last verdict. */
async function dashboardRow(page: Page, planId: string): Promise<{ light: string; status: string; verdict: string }> {
  const row = page.locator(`#plans tbody tr:has(a[href="/plans/${planId}"])`);
  const cell = row.locator('td').first().locator('.light');
  expect(await cell.locator('svg').count(), 'the light has its shape, not colour alone').toBe(1);
  return {
    light: (await cell.getAttribute('class')) ?? '',
    status: (await cell.innerText()).trim(),
    verdict: (await row.locator('td').nth(2).innerText()).trim(),
  };
}


async function noHorizontalScroll(page: Page, label: string): Promise<void> {
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  expect(sw, `${label} scrolls sideways at ${cw}px`).toBeLessThanOrEqual(cw + 1);
}

/** A screenshot that shows a real page: a PNG of some size, of a page with text on it. */
async function shot(page: Page, name: string): Promise<void> {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const png = await readFile(file);
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect((await stat(file)).size, `${name}.png is too small to be a page`).toBeGreaterThan(8_000);
  expect((await page.evaluate(() => document.body.innerText.trim().length)), `${name} has no text`).toBeGreaterThan(50);
}

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  dir = await makeTempDir('ef-browser-');
  await makeHostDatabase(SRC, { rows: 3000 });
  await dumpHost(SRC, 'custom', join(dir, 'ewo.dump'));
  h = await startHarness({ backupRoot: dir });
  await h.putPlan(pgPlan('ewo', 'ewo.dump', {
    title: 'Einwohnermeldewesen', system: { name: 'OK.EWO', protectionNeed: 'hoch' },
    cadence: { requiredEvery: 'P1D' }, checks: [{ tableRows: { table: 'einwohner', min: 3000 } }, { name: 'Meldungen', sql: 'select count(*) from meldung', expect: '>= 1000' }],
  }));
  // a system, so the dashboard's and the systems page's restart order render (and are checked by axe)
  expect((await h.request('PUT', '/api/v1/systems/ok-ewo', { name: 'OK.EWO', process: 'Meldewesen', protectionNeed: 'hoch', tier: 1, owner: 'Bürgeramt', handbookRef: 'Kap. 4.2' })).status).toBe(201);
  const bootstrap = { tenantId: DEFAULT_TENANT_ID, name: 'bootstrap-token', role: 'admin' as const, kind: 'bootstrap' as const };
  for (const u of Object.values(USERS)) {
    const inv = await h.c.accounts.invite(bootstrap, { email: u.email, name: u.name, role: u.role }, {});
    await h.c.accounts.acceptInvite(inv.inviteToken, u.password, {});
  }
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await h?.close();
  await dropHostDatabase(SRC);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('in the browser', () => {
  it('Alice signs in, sets up her authenticator app, and sees the dashboard', async () => {
    const page = await newPage();
    await page.goto(`${base}/login`);
    await shot(page, 'login');
    await axe(page, 'login');
    const codes = await signIn(page, 'alice');
    expect(codes).toHaveLength(10);
    await sees(page, 'main', 'Einwohnermeldewesen');
    expect(await dashboardRow(page, 'ewo')).toEqual({ light: 'light light-never-tested', status: 'nie getestet', verdict: '–' });
    await shot(page, 'dashboard');
    await axe(page, 'dashboard');
  }, 60_000);

  it('a second sign-in asks for a fresh code computed here, as an authenticator app would', async () => {
    const page = await newPage();
    expect(await signIn(page, 'alice')).toBeUndefined();
    await sees(page, 'main', 'Einwohnermeldewesen');
    alice = await page.context().storageState();
  }, 90_000);

  it('Alice starts a test and watches it finish live, with the steps and the four-eyes note', async () => {
    const page = await newPage(1280, alice);
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Einwohnermeldewesen' }).first().click();
    await arrives(page, /\/plans\/ewo$/);
    await shot(page, 'plan');
    await axe(page, 'plan');
    await page.getByRole('button', { name: 'Jetzt testen' }).click();
    await arrives(page, /\/runs\/[0-9a-f-]{36}$/);
    runUrl = page.url();
    // the page opens while the test is queued or running: what follows is the live update, not a finished page
    const live: { statusText: string; finished: boolean }[] = [];
    // read what app.js gets, through the browser's own request (the reload right after the last one discards its body)
    await page.route(/\/runs\/[0-9a-f-]{36}\/live$/, async (route) => {
      const res = await route.fetch();
      live.push(await res.json() as { statusText: string; finished: boolean });
      await route.fulfill({ response: res });
    });
    const first = await page.locator('#run-status').innerText();
    expect(first).not.toContain('bestanden');
    expect(await page.locator('[data-live]').count()).toBe(1);
    // app.js polls /live, writes its text into the status region, and reloads once the run has finished
    await sees(page, '#run-status', 'bestanden', 90_000);
    await sees(page, 'main', 'Wiederherstellungsprotokoll (PDF)', 10_000);
    expect(live.length, 'app.js polled the run').toBeGreaterThan(0);
    expect(live.at(-1)).toMatchObject({ finished: true, statusText: 'beendet: bestanden' });
    expect(await page.locator('#run-status').innerText()).toBe('beendet: bestanden');
    expect(await page.locator('[data-live]').count(), 'a finished run stops polling').toBe(0);
    // the timeline: every step, in order, each done
    const phases = await page.locator('ol.timeline li.phase').evaluateAll((li) => li.map((e) => [e.getAttribute('data-phase'), e.className, e.querySelector('.phase-state')?.textContent]));
    expect(phases).toEqual(['queued', 'fetch', 'provision', 'restore', 'verify', 'teardown'].map((n) => [n, 'phase phase-done', 'erledigt']));
    await sees(page, 'main', 'einwohner');
    // four eyes: Alice started it, so she gets the note instead of the sign-off form
    await sees(page, 'section[aria-labelledby=rev-h]', 'Sie haben diesen Test ausgelöst oder durchgeführt. Nach dem Vier-Augen-Prinzip muss eine andere Person ihn freigeben.');
    expect(await page.locator('form[action$="/review"]').count()).toBe(0);
    await shot(page, 'run');
    await axe(page, 'run');
  }, 180_000);

  it('the PDF protocol downloads from the run page', async () => {
    const page = await newPage(1280, alice);
    await page.goto(runUrl);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Wiederherstellungsprotokoll (PDF)' }).click()]);
    const file = join(dir, 'protokoll.pdf');
    await download.saveAs(file);
    const pdf = await readFile(file);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.length).toBeGreaterThan(20_000);
  }, 90_000);

  it('Bob, the reviewer, signs the run off; his sign-off shows on the run', async () => {
    const page = await newPage();
    await signIn(page, 'bob');
    await page.goto(runUrl);
    await page.check('input[name=decision][value=approved]');
    await page.fill('#review-comment', 'Wiederherstellung geprüft, Daten vollständig.');
    await page.locator('form[action$="/review"] button[type=submit]').click();
    await arrives(page, (u: URL) => u.pathname === new URL(runUrl).pathname);
    await sees(page, 'main', USERS.bob.email);
    await sees(page, 'main', 'freigegeben');
    const reviews = await h.tdb.db.selectFrom('reviews').select(['reviewer', 'decision']).execute();
    expect(reviews).toEqual([{ reviewer: USERS.bob.email, decision: 'approved' }]);
  }, 90_000);

  it('every main page renders, passes axe, and works at phone width without sideways scrolling', async () => {
    const page = await newPage(1280, alice);
    await page.goto(`${base}/`);
    const row = await dashboardRow(page, 'ewo');
    expect([row.light, row.status]).toEqual(['light light-ok', 'in Ordnung']);
    expect(row.verdict).toMatch(/^bestanden\n/);
    for (const [name, path] of [['programme', '/programme'], ['systems', '/systems'], ['alerts', '/alerts'], ['reviews', '/reviews'], ['reports', '/reports'], ['admin-users', '/admin/users'], ['admin-tokens', '/admin/tokens'], ['provider-access', '/admin/provider-access'], ['account', '/account']]) {
      const res = await page.goto(`${base}${path}`);
      expect(res?.status(), path).toBe(200);
      await shot(page, name!);
      await axe(page, path!);
    }
    const phone = await newPage(375, alice);
    for (const path of ['/', '/programme', '/plans/ewo', new URL(runUrl).pathname, '/reviews', '/admin/users']) {
      await phone.goto(`${base}${path}`);
      await axe(phone, `${path} at 375px`);
      await noHorizontalScroll(phone, path);
    }
    await phone.goto(`${base}/`);
    await shot(phone, 'dashboard-phone');
  }, 180_000);

  it('switches to English, and the keyboard reaches the skip link first', async () => {
    const page = await newPage(1280, alice);
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Switch to English' }).click();
    // the dashboard in English: the plan passed by now
    await sees(page, 'main', 'passed');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.className)).toContain('skip');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => location.hash)).toBe('#main');
    expect(await page.evaluate(() => document.activeElement?.id), 'the skip link moves focus to main').toBe('main');
    await axe(page, 'dashboard (en)');
  }, 90_000);

  it('no page broke the Content-Security-Policy', async () => {
    await writeFile(join(SHOTS, 'csp-violations.txt'), cspViolations.join('\n'));
    expect(cspViolations).toEqual([]);
  });
});
