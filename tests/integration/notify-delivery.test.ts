import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { createChannels } from '../../services/notify/channels/index.js';
import { verifyWebhookSignature } from '../../services/notify/channels/webhook.channel.js';
import { NotificationDispatcher } from '../../services/notify/dispatcher.js';
import { ReminderEngine } from '../../services/notify/reminders.js';

/**
 * Issue #4 "Tests": the whole way from a decision to a mailbox and a webhook
 * receiver — a real SMTP server and a real HTTP receiver that checks the HMAC,
 * on loopback — plus a restart that sends nothing twice and an unreachable
 * SMTP server and webhook that lead to retries and a recorded failure, never a
 * lost notification.
 */

const USER = 'ernstfall@musterstadt.de';
const PASS = 'smtp-Passw0rt:geheim/123';
const HMAC = 'ticket-hmac-secret-0123456789';

let h: Harness;
let smtp: SMTPServer;
let smtpPort = 0;
let smtpUp = false;
const mails: { to: string[]; raw: Buffer }[] = [];
let receiver: Server;
const hooks: { headers: IncomingHttpHeaders; body: string; valid: boolean }[] = [];
let hookStatus = 200;
const logs: string[] = [];

async function startSmtp(port = 0): Promise<number> {
  smtp = new SMTPServer({
    authOptional: false, allowInsecureAuth: true, disabledCommands: ['STARTTLS'], logger: false,
    onAuth: (a, _s, cb) => (a.username === USER && a.password === PASS ? cb(null, { user: USER }) : cb(new Error('Invalid username or password'))),
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks) });
        cb();
      });
    },
  });
  await new Promise<void>((res) => smtp.listen(port, '127.0.0.1', () => res()));
  smtpUp = true;
  return (smtp.server.address() as AddressInfo).port;
}
const stopSmtp = () => new Promise<void>((res) => { smtpUp = false; smtp.close(() => res()); });

function dispatcher() {
  const ch = createChannels(h.config.notify, { mail: { connectionTimeoutMs: 2000, greetingTimeoutMs: 2000, socketTimeoutMs: 2000 }, webhook: { timeoutMs: 2000 } });
  return new NotificationDispatcher(h.tdb.db, ch, h.c.log, h.config.notify);
}
const outbox = (planId: string) => h.tdb.db.selectFrom('notifications').selectAll().where('plan_id', '=', planId).orderBy('recipient').execute();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  smtpPort = await startSmtp();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const valid = verifyWebhookSignature(HMAC, String(req.headers['x-ernstfall-timestamp']), body, String(req.headers['x-ernstfall-signature']));
      hooks.push({ headers: req.headers, body, valid });
      res.writeHead(hookStatus).end();
    });
  });
  await new Promise<void>((res) => receiver.listen(0, '127.0.0.1', () => res()));
  const dir = await mkdtemp(join(tmpdir(), 'ef-hooks-'));
  const file = join(dir, 'webhooks.yaml');
  await writeFile(file, `webhooks:\n  ticket: { url: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook", secret: "${HMAC}" }\n`);
  h = await startHarness({
    worker: false,
    logSink: { write: (s: string) => void logs.push(s) },
    env: {
      LOG_LEVEL: 'info',
      ERNSTFALL_SMTP_URL: `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}@127.0.0.1:${smtpPort}`,
      ERNSTFALL_SMTP_STARTTLS: 'off',
      ERNSTFALL_MAIL_FROM: 'ernstfall <ernstfall@musterstadt.de>',
      ERNSTFALL_WEBHOOKS_FILE: file,
      ERNSTFALL_PUBLIC_URL: 'https://ernstfall.musterstadt.de',
      ERNSTFALL_NOTIFY_RETRY_BASE_MS: '50',
      ERNSTFALL_NOTIFY_RETRY_FOR: 'PT3S',
    },
  });
  await h.putPlan(pgPlan('ewo', 'ewo.dump', {
    title: 'Einwohnermeldewesen – Straßenverzeichnis',
    cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D' },
    notify: { failure: ['mail:it@musterstadt.de', 'webhook:ticket'], overdue: ['mail:it@musterstadt.de'] },
  }));
}, 60_000);

afterAll(async () => {
  await h?.close();
  if (smtpUp) await stopSmtp();
  await new Promise<void>((res) => receiver?.close(() => res()));
});

describe('delivery', () => {
  it('a failed run reaches the mailbox (German, text and HTML) and the webhook (valid HMAC), each once', async () => {
    const runId = await seedRun(h, { planId: 'ewo', verdict: 'failed', finishedAt: new Date('2026-11-27T01:05:00Z') });
    const d = dispatcher();
    expect(await d.dispatchOnce()).toEqual({ sent: 2, retrying: 0, failed: 0 });
    await d.stop();
    expect(mails).toHaveLength(1);
    const mail = await simpleParser(mails[0]!.raw);
    expect(mails[0]!.to).toEqual(['it@musterstadt.de']);
    expect(mail.subject).toBe('[ernstfall] Fehlgeschlagen: Einwohnermeldewesen – Straßenverzeichnis');
    expect(mail.text).toContain('CHECK_FAILED');
    expect(mail.text).toContain('27.11.2026, 02:05 MEZ');
    expect(mail.html).toContain(`https://ernstfall.musterstadt.de/runs/${runId}`);
    const [row] = (await outbox('ewo')).filter((n) => n.recipient === 'mail:it@musterstadt.de');
    expect(mail.messageId).toBe(`<${row!.id}@ernstfall>`);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.valid).toBe(true);
    const body = JSON.parse(hooks[0]!.body);
    expect(body).toMatchObject({ schema: 'ernstfall.notification/v1', event: 'failure', plan: { id: 'ewo' }, run: { id: runId, verdict: 'failed' } });
    expect(hooks[0]!.headers['x-ernstfall-delivery']).toBe(body.id);
    expect((await outbox('ewo')).map((n) => [n.status, n.attempts])).toEqual([['sent', 1], ['sent', 1]]);
    // the receiver's check is a real one: a changed body or a wrong secret does not verify
    const ts = String(hooks[0]!.headers['x-ernstfall-timestamp']);
    const sig = String(hooks[0]!.headers['x-ernstfall-signature']);
    expect(verifyWebhookSignature(HMAC, ts, hooks[0]!.body.replace('failed', 'passed'), sig)).toBe(false);
    expect(verifyWebhookSignature('another-secret-0123456789', ts, hooks[0]!.body, sig)).toBe(false);
  });

  it('after a restart (new dispatcher, new reminder engine) nothing is sent twice', async () => {
    const before = { mails: mails.length, hooks: hooks.length };
    const engine = new ReminderEngine(h.tdb.db, { lang: 'de', timezone: 'Europe/Berlin', digestTime: '07:00' }, h.c.log);
    await engine.evaluate(new Date('2026-11-27T01:06:00Z'));
    await engine.evaluate(new Date('2026-11-27T01:07:00Z'));
    const d = dispatcher();
    expect(await d.dispatchOnce()).toEqual({ sent: 0, retrying: 0, failed: 0 });
    await d.stop();
    expect({ mails: mails.length, hooks: hooks.length }).toEqual(before);
  });

  it('an unreachable SMTP server and a failing webhook: retried with backoff, then recorded as failed, then sent by hand — never lost', async () => {
    await stopSmtp();
    hookStatus = 503;
    await seedRun(h, { planId: 'ewo', verdict: 'error', finishedAt: new Date('2026-11-27T02:00:00Z') });
    const d = dispatcher();
    expect(await d.dispatchOnce()).toEqual({ sent: 0, retrying: 2, failed: 0 });
    let rows = (await outbox('ewo')).filter((n) => n.status !== 'sent');
    expect(rows.map((n) => [n.recipient, n.status, n.attempts])).toEqual([['mail:it@musterstadt.de', 'pending', 1], ['webhook:ticket', 'pending', 1]]);
    expect(rows[0]!.last_error).toMatch(/ECONNREFUSED/);
    expect(rows[1]!.last_error).toMatch(/ticket.*503/);
    // the outbox's times are the database's (a lease between processes): compared with the database's clock
    const dbNow = (await sql<{ now: Date }>`select now() as now`.execute(h.tdb.db)).rows[0]!.now;
    expect(rows.every((n) => n.next_attempt_at.getTime() > dbNow.getTime() - 1000)).toBe(true);
    // retried (backoff 50 ms, 100 ms, …) until the retry window (3 s) is over: then failed, with the reason kept
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && (await outbox('ewo')).some((n) => n.status === 'pending')) {
      await d.dispatchOnce();
      await sleep(100);
    }
    await d.stop();
    rows = (await outbox('ewo')).filter((n) => n.status !== 'sent');
    expect(rows.map((n) => n.status)).toEqual(['failed', 'failed']);
    expect(rows.every((n) => n.attempts >= 3)).toBe(true);
    expect(rows[0]!.last_error).toMatch(/^gave up after \d+ attempts over PT3S: .*ECONNREFUSED/);
    const failed = (await h.request('GET', '/api/v1/notifications?status=failed')).body.items;
    expect(failed).toHaveLength(2);
    // nothing secret in what the API shows or what was logged
    const shown = JSON.stringify(failed) + logs.join('');
    expect(shown).not.toContain(PASS);
    expect(shown).not.toContain(encodeURIComponent(PASS));
    expect(shown).not.toContain(HMAC);
    expect(shown).not.toContain('/hook');

    // fixed: SMTP back on the same port, webhook healthy; the operator sends them again
    await startSmtp(smtpPort);
    hookStatus = 200;
    const mailsBefore = mails.length;
    for (const n of failed) expect((await h.request('POST', `/api/v1/notifications/${n.id}/retry`)).status).toBe(200);
    expect((await h.request('POST', `/api/v1/notifications/${failed[0].id}/retry`)).status).toBe(409);
    const d2 = dispatcher();
    expect(await d2.dispatchOnce()).toEqual({ sent: 2, retrying: 0, failed: 0 });
    await d2.stop();
    expect(mails.length).toBe(mailsBefore + 1);
    expect((await simpleParser(mails.at(-1)!.raw)).subject).toBe('[ernstfall] Fehlgeschlagen: Einwohnermeldewesen – Straßenverzeichnis');
    expect(hooks.at(-1)!.valid).toBe(true);
  }, 20_000);

  it('a wrong SMTP password or an unknown webhook fails at once (permanent), recorded with the reason', async () => {
    const res = await h.request('POST', '/api/v1/notifications/test', { recipient: 'webhook:nicht-konfiguriert' });
    expect(res.status).toBe(202);
    expect((await h.request('POST', '/api/v1/notifications/test', { recipient: 'fax:0815' })).status).toBe(400);
    const d = dispatcher();
    expect(await d.dispatchOnce()).toEqual({ sent: 0, retrying: 0, failed: 1 });
    await d.stop();
    const n = (await h.request('GET', '/api/v1/notifications?status=failed')).body.items.find((x: { id: string }) => x.id === res.body.id);
    expect(n).toMatchObject({ event: 'test', attempts: 1, status: 'failed' });
    expect(n.lastError).toMatch(/nicht-konfiguriert/);
  });

  it('a test message to a mailbox arrives', async () => {
    const before = mails.length;
    expect((await h.request('POST', '/api/v1/notifications/test', { recipient: 'mail:it@musterstadt.de', lang: 'en' })).status).toBe(202);
    const d = dispatcher();
    expect(await d.dispatchOnce()).toEqual({ sent: 1, retrying: 0, failed: 0 });
    await d.stop();
    expect(mails.length).toBe(before + 1);
    expect((await simpleParser(mails.at(-1)!.raw)).subject).toMatch(/^\[ernstfall\] /);
  });
});
