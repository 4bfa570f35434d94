import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { expect } from 'vitest';
import { stat } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';

/** What the browser tests share: waiting for an address or a text, and axe-core's WCAG check. */
const require = createRequire(import.meta.url);
let axeSource = '';

/** Waits for the address; on timeout says where the browser is and what it shows. */
export async function arrives(page: Page, url: string | RegExp | ((u: URL) => boolean), timeout = 10_000): Promise<void> {
  try {
    await page.waitForURL(url, { timeout });
  } catch {
    const text = await page.locator('body').innerText().catch(() => '');
    throw new Error(`expected ${String(url)}, the browser is at ${page.url()} showing: ${text.replace(/\s+/g, ' ').slice(0, 500)}`);
  }
}

/** Waits until the element's text contains `text` (playwright-core has no expect of its own). */
export async function sees(page: Page, selector: string, text: string, timeout = 10_000): Promise<void> {
  try {
    await page.waitForFunction(([sel, t]) => (document.querySelector(sel!)?.textContent ?? '').includes(t!), [selector, text], { timeout });
  } catch {
    const now = await page.locator(selector).first().innerText().catch(() => '(missing)');
    throw new Error(`${page.url()}: "${text}" not in ${selector} within ${timeout} ms; it shows: ${now.slice(0, 400)}`);
  }
}

/** axe-core's WCAG 2.1 A/AA rules on the page as it is: no violation. */
export async function axe(page: Page, label: string): Promise<void> {
  // evaluated through the DevTools protocol: a <script> tag would (rightly) be refused by the pages' CSP
  axeSource ||= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run: (c: unknown, o: unknown) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } })
      .axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  expect(violations, `axe on ${label}`).toEqual([]);
}

/** Debian's chromium (ERNSTFALL_CHROMIUM to override); missing, the suite fails with how to get it. */
export const CHROMIUM = process.env.ERNSTFALL_CHROMIUM ?? '/usr/bin/chromium';

/** Headless chromium without any network of its own (no updates, no sync, no QUIC): the tests talk to loopback only. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  await stat(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (npm run setup installs it)`);
  });
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
