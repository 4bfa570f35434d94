import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { arrives, axe, launchChromium, sees } from '../helpers/browser.js';
import { DEFAULT_TENANT_ID, type UserRole } from '../../db/schema.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';

/**
 * Issue #12 "Tests": a manual restore test carried out in a real browser
 * (Debian's chromium with playwright-core) against the real app and
 * database. Olga (IT head, admin) starts it from the plan page, records each step —
 * one with a deviation note, one with a screenshot as evidence — and
 * completes it; the same person cannot sign it off; Bob (reviewer) does; the
 * PDF protocol shows the step timeline and the screenshot's hash. Missing
 * chromium fails the suite.
 */

const PLAN = {
  id: 'gewerbe-wiederanlauf', title: 'Gewerbeamt – Wiederanlauf', kind: 'manual',
  system: { name: 'Gewerbe-Fachverfahren', protectionNeed: 'hoch' },
  targets: { rto: '8h', rpo: '26h' }, cadence: { requiredEvery: 'P1Y' },
  steps: [
    { title: 'VM in das Testnetz zurückspielen', instructions: 'Veeam: Instant Recovery der VM gewerbe01 in das VLAN 999.', expected: 'VM startet' },
    { title: 'Datenbankdienst starten', expected: 'Dienst läuft' },
    { title: 'Akte 2026/4711 öffnen', expected: 'Akte vollständig', restoresService: true, evidenceRequired: true },
  ],
};

let h: Harness;
let base = '';
let browser: Browser;
let dir: string;
const contexts: BrowserContext[] = [];
const people = {} as Record<'olga' | 'bob', { email: string; cookie: string }>;
let runUrl = '';

async function person(email: string, role: UserRole): Promise<{ email: string; cookie: string }> {
  const row = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email, name: email.split('@')[0]!, role, created_by: 'test', password_hash: null });
  // signed in with both factors, as after /login and /login/code (the sign-in itself is tested in browser.test.ts)
  const { token } = await h.c.sessions.start(row, { stage: 'full', method: 'password' });
  return { email, cookie: token };
}

async function pageAs(who: 'olga' | 'bob'): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, locale: 'de-DE' });
  contexts.push(ctx);
  await ctx.addCookies([{ name: SESSION_COOKIE, value: people[who].cookie, url: base }]);
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

beforeAll(async () => {
  dir = await makeTempDir('ef-manual-browser-');
  h = await startHarness({ worker: false });
  const put = await h.request('PUT', `/api/v1/plans/${PLAN.id}`, PLAN);
  expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);
  people.olga = await person('olga.it-leitung@musterstadt.de', 'admin');
  people.bob = await person('bob.pruefer@musterstadt.de', 'reviewer');
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a manual restore test in the browser', () => {
  it('Olga starts it from the plan page and records each step, with a deviation note and a screenshot as evidence', async () => {
    const page = await pageAs('olga');
    await page.goto(`${base}/plans/${PLAN.id}`);
    await sees(page, 'main', 'Akte 2026/4711 öffnen');
    await page.getByRole('button', { name: 'Manuellen Test beginnen' }).click();
    await arrives(page, /\/runs\/[0-9a-f-]{36}$/);
    runUrl = page.url();
    await sees(page, 'main', '0 von 3 Schritten festgehalten');
    // the steps page stays put while people type: no live reload, no meta refresh
    expect(await page.locator('[data-live]').count()).toBe(0);
    expect(await page.locator('noscript meta[http-equiv=refresh]').count()).toBe(0);
    await axe(page, 'manual run (open)');

    // step 1: done
    await page.locator('#step0-result-0').check();
    await page.fill('#step0-note', 'VM nach 12 Minuten oben');
    await page.locator('form[action$="/steps/0"] button[type=submit]').click();
    await arrives(page, (u) => u.pathname === new URL(runUrl).pathname);
    await sees(page, 'main', '1 von 3 Schritten festgehalten');

    // step 2: a deviation without a note is refused at the field, nothing lost
    await page.locator('#step1-result-1').check();
    await page.locator('form[action$="/steps/1"] button[type=submit]').click();
    await sees(page, '#step1-note-err', 'Bitte beschreiben Sie die Abweichung.');
    expect(await page.locator('#step1-result-1').isChecked()).toBe(true);
    await page.fill('#step1-note', 'Lizenzserver erst nach Neustart erreichbar');
    await page.locator('form[action$="/steps/1"] button[type=submit]').click();
    await sees(page, 'main', '2 von 3 Schritten festgehalten');

    // step 3: done, with the screenshot the plan asks for
    const shot = join(dir, 'Akte 4711.png');
    await page.screenshot({ path: shot });
    await page.locator('#step2-result-0').check();
    await page.fill('#step2-note', 'Akte vollständig, 14 Dokumente');
    await page.setInputFiles('#step2-file', shot);
    await page.locator('form[action$="/steps/2"] button[type=submit]').click();
    await sees(page, 'main', '3 von 3 Schritten festgehalten');
    const link = page.locator('a[href$="/attachments/step-03-Akte_4711.png"]');
    expect(await link.count()).toBe(1);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const got = join(dir, 'got.png');
    await download.saveAs(got);
    expect((await readFile(got)).equals(await readFile(shot))).toBe(true);
    await axe(page, 'manual run (steps recorded)');

    await page.fill('#complete-note', 'Übung mit dem Gewerbeamt');
    await page.getByRole('button', { name: 'Test abschließen' }).click();
    await sees(page, '#run-status', 'beendet: nicht bestanden');
    // the timeline: every step with its result, person and evidence
    const rows = await page.locator('#steps tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('th,td')].map((c) => (c.textContent ?? '').replace(/\s+/g, ' ').trim())));
    expect(rows.map((r) => r[1])).toEqual(['erledigt', 'Abweichung', 'erledigt']);
    expect(rows.every((r) => r[3] === people.olga.email)).toBe(true);
    expect(rows[1]![4]).toBe('Lizenzserver erst nach Neustart erreichbar');
    expect(rows[2]![5]).toContain('step-03-Akte_4711.png');
    await sees(page, 'main', 'MANUAL_DEVIATION');
    // four eyes: the person who carried it out is told so, no form
    await sees(page, 'section[aria-labelledby=rev-h]', 'Nach dem Vier-Augen-Prinzip muss eine andere Person ihn freigeben.');
    expect(await page.locator('form[action$="/review"]').count()).toBe(0);
    await axe(page, 'manual run (finished)');

    // the signed record holds the screenshot's hash
    const runId = runUrl.split('/').at(-1)!;
    const ev = await h.request('GET', `/api/v1/runs/${runId}/evidence`);
    expect(ev.body.envelope.payload.attachments[0]).toMatchObject({ name: 'step-03-Akte_4711.png', sha256: createHash('sha256').update(await readFile(shot)).digest('hex') });
  }, 120_000);

  it('Bob, the reviewer, signs it off with a measure; the PDF protocol shows the step timeline', async () => {
    const page = await pageAs('bob');
    await page.goto(runUrl);
    await page.locator('#review-decision-1').check();
    await page.fill('#review-comment', 'Lizenzserver in den Wiederanlaufplan aufnehmen');
    await page.fill('#review-devTitle', 'Lizenzserver-Start in Schritt 2 beschreiben');
    await page.fill('#review-devOwner', 'IT-Betrieb');
    await page.fill('#review-devDue', '2027-01-31');
    await page.locator('form[action$="/review"] button[type=submit]').click();
    await sees(page, 'section[aria-labelledby=rev-h]', people.bob.email);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Wiederherstellungsprotokoll (PDF)' }).click()]);
    const file = join(dir, 'protokoll.pdf');
    await download.saveAs(file);
    const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
    const squash = (s: string) => s.replace(/\s+/g, '');
    for (const s of ['Ablauf der Schritte (manueller Test)', 'Abweichung', 'Abgeschlossen von', 'Übung mit dem Gewerbeamt', 'Anhänge im Nachweis', 'freigegeben mit Abweichungen']) {
      expect(squash(text), s).toContain(squash(s));
    }
    expect(squash(text)).toContain('step-03-Akte_4711.png');
    expect(squash(text)).toContain(squash(people.olga.email));
    await writeFile(join(dir, 'protokoll.txt'), text);
  }, 60_000);
});
