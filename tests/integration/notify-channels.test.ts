import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { simpleParser, type AddressObject } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../services/config.js';
import { createChannels, MailChannel, signWebhook, verifyWebhookSignature, WebhookChannel } from '../../services/notify/channels/index.js';
import { webhookPayload } from '../../services/notify/render.js';
import { DeliveryError, parseRecipient, type NotificationMessage, type Recipient } from '../../services/notify/types.js';
import type { WebhookConfig } from '../../services/notify/webhook-config.js';

const run = promisify(execFile);
const USER = 'ernstfall@musterstadt.de';
const PASS = 'Pa55:wört/mit@Sonderzeichen-7781';
const SECRET = 'hmac-secret-1234567890-abcdef';
const URL_SIG = 'SiGnAtUrE-in-the-url-4471';
const T = { timeout: 8_000 }; // every test is bounded; most take milliseconds

/** Every DeliveryError the tests provoke: none may carry a URL, a secret or a password. */
const errors: DeliveryError[] = [];
async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryError);
  errors.push(err as DeliveryError);
  return err as DeliveryError;
}
const rcpt = (raw: string) => parseRecipient(raw) as Recipient;

function message(over: Partial<NotificationMessage & { id: string }> = {}): NotificationMessage & { id: string } {
  return {
    id: 'ntf-0815', event: 'overdue', occurredAt: '2026-11-28T01:00:00Z', tenant: { slug: 'musterstadt', name: 'Stadt Musterstadt' },
    plan: { id: 'ewo', title: 'Einwohnermeldewesen – Straßenverzeichnis (Größe ü/ö/ä/ß)', system: 'EWO' }, status: 'overdue',
    dueAt: '2026-11-26T01:00:00Z', overdueSince: '2026-11-28T01:00:00Z', alert: { id: 'a-1', kind: 'overdue', openedAt: '2026-11-28T01:00:00Z', level: 1 },
    links: { plan: 'https://ernstfall.musterstadt.de/plans/ewo' }, timezone: 'Europe/Berlin', ...over,
  };
}

function notify(over: Partial<Config['notify']> = {}): Config['notify'] {
  return {
    mailFrom: 'ernstfall <ernstfall@musterstadt.de>', smtpStarttls: 'opportunistic', webhooks: new Map(), lang: 'de', timezone: 'Europe/Berlin',
    digestTime: '07:00', dispatchMs: 10_000, retryBaseMs: 60_000, retryFor: 'P2D', checkpointRecipients: [], ...over,
  };
}

// ---------------------------------------------------------------- SMTP

interface Received { raw: Buffer; secure: boolean; user: unknown; to: string[] }
interface Smtp { port: number; url: (pass?: string) => string; received: Received[]; close: () => Promise<void> }

async function startSmtp(options: Partial<SMTPServerOptions> = {}): Promise<Smtp> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === USER && auth.password === PASS) cb(null, { user: USER });
      else cb(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, cb) {
      if (!address.address.startsWith('refused')) return cb();
      cb(Object.assign(new Error('5.1.1 Mailbox unavailable'), { responseCode: 550 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ raw: Buffer.concat(chunks), secure: session.secure, user: session.user, to: session.envelope.rcptTo.map((r) => r.address) });
        cb();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port, received,
    url: (pass = PASS) => `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(pass)}@127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const SHORT = { connectionTimeoutMs: 1_000, greetingTimeoutMs: 500, socketTimeoutMs: 1_000, sendTimeoutMs: 4_000 };
let dir = '';
let plain: Smtp;
let tlsSmtp: Smtp;
let silent: TcpServer;
const silentSockets: Socket[] = [];
let certFile = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ernstfall-notify-'));
  const keyFile = path.join(dir, 'key.pem');
  certFile = path.join(dir, 'cert.pem');
  // self-signed, for 127.0.0.1 as well (the channel connects by IP and checks the name)
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
  plain = await startSmtp();
  tlsSmtp = await startSmtp({ key: await readFile(keyFile), cert: await readFile(certFile), disabledCommands: [] });
  // accepts TCP and never says 220
  silent = createTcpServer((s) => { silentSockets.push(s); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
}, 15_000);

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await Promise.all([plain?.close(), tlsSmtp?.close(), new Promise((resolve) => silent?.close(resolve))]);
  await rm(dir, { recursive: true, force: true });
}, 10_000);

describe('mail channel against a real SMTP server', () => {
  it('delivers an authenticated mail: subject, from, to, text and HTML, Message-ID, headers, umlauts', T, async () => {
    const ch = new MailChannel(notify({ smtpUrl: plain.url() }), SHORT);
    const before = plain.received.length;
    await ch.deliver(rcpt('mail:it-leitung@musterstadt.de'), message(), 'de');
    await ch.deliver(rcpt('mail:it-leitung@musterstadt.de'), message(), 'de'); // the same notification again
    await ch.close();
    const [first, again] = plain.received.slice(before);
    expect(first!.user).toBe(USER); // authenticated, not relayed anonymously
    expect(first!.to).toEqual(['it-leitung@musterstadt.de']);
    const mail = await simpleParser(first!.raw);
    expect(mail.subject).toBe('[ernstfall] Überfällig: Einwohnermeldewesen – Straßenverzeichnis (Größe ü/ö/ä/ß)');
    expect(mail.from?.value[0]).toMatchObject({ address: 'ernstfall@musterstadt.de', name: 'ernstfall' });
    expect((mail.to as AddressObject).value[0]!.address).toBe('it-leitung@musterstadt.de');
    expect(mail.messageId).toBe('<ntf-0815@ernstfall>');
    expect(mail.headers.get('x-ernstfall-event')).toBe('overdue');
    expect(mail.headers.get('content-language')).toBe('de');
    expect(mail.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail.text).toMatch(/Überfällig seit: +28\.11\.2026, 02:00 MEZ/);
    expect(mail.text).toContain('Straßenverzeichnis (Größe ü/ö/ä/ß)');
    expect(mail.html).toContain('Straßenverzeichnis (Größe ü/ö/ä/ß)');
    expect(mail.html).toContain('href="https://ernstfall.musterstadt.de/plans/ewo"');
    // a resend is recognisable as the same message
    expect((await simpleParser(again!.raw)).messageId).toBe('<ntf-0815@ernstfall>');
  });

  it('a wrong password is a permanent failure (535) and nothing is delivered', T, async () => {
    const ch = new MailChannel(notify({ smtpUrl: plain.url('falsches-Passwort-99') }), SHORT);
    const before = plain.received.length;
    const err = await failure(ch.deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(err.permanent).toBe(true);
    expect(err.message).toContain('535');
    expect(err.message).not.toContain('falsches-Passwort-99');
    expect(plain.received.length).toBe(before);
  });

  it('a recipient refused with 550 is permanent; the next recipient on the same server still gets through', T, async () => {
    const ch = new MailChannel(notify({ smtpUrl: plain.url() }), SHORT);
    const err = await failure(ch.deliver(rcpt('mail:refused@musterstadt.de'), message(), 'de'));
    expect(err.permanent).toBe(true);
    expect(err.message).toContain('550');
    expect(err.message).toContain('refused@musterstadt.de');
    await ch.deliver(rcpt('mail:accepted@musterstadt.de'), message(), 'de');
    expect(plain.received.at(-1)!.to).toEqual(['accepted@musterstadt.de']);
  });

  it('a closed port is retryable and fails fast', T, async () => {
    const port = await closedPort();
    const ch = new MailChannel(notify({ smtpUrl: `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}@127.0.0.1:${port}` }), SHORT);
    const t0 = Date.now();
    const err = await failure(ch.deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/ECONNREFUSED|ESOCKET|ECONNECTION/);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('a server that never greets is retryable after the greeting timeout', T, async () => {
    const port = (silent.address() as AddressInfo).port;
    const ch = new MailChannel(notify({ smtpUrl: `smtp://127.0.0.1:${port}` }), SHORT);
    const t0 = Date.now();
    const err = await failure(ch.deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/ETIMEDOUT|timeout|Greeting/i);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('STARTTLS with the CA from smtpCaFile: delivered encrypted, also with smtpStarttls required', T, async () => {
    for (const smtpStarttls of ['opportunistic', 'required'] as const) {
      const ch = new MailChannel(notify({ smtpUrl: tlsSmtp.url(), smtpCaFile: certFile, smtpStarttls }), SHORT);
      await ch.deliver(rcpt(`mail:${smtpStarttls}@musterstadt.de`), message(), 'de');
      const got = tlsSmtp.received.at(-1)!;
      expect(got.to).toEqual([`${smtpStarttls}@musterstadt.de`]);
      expect(got.secure).toBe(true);
    }
  });

  it('STARTTLS with a certificate nobody vouches for (no smtpCaFile) fails instead of sending', T, async () => {
    const before = tlsSmtp.received.length;
    const ch = new MailChannel(notify({ smtpUrl: tlsSmtp.url() }), SHORT);
    const err = await failure(ch.deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(err.message).toMatch(/self[- ]signed certificate.*ERNSTFALL_SMTP_CA_FILE/i);
    expect(err.permanent).toBe(false);
    expect(tlsSmtp.received.length).toBe(before);
  });

  it('smtpStarttls required refuses a server without STARTTLS; off sends in plain text even when it is offered', T, async () => {
    const before = plain.received.length;
    const err = await failure(new MailChannel(notify({ smtpUrl: plain.url(), smtpStarttls: 'required' }), SHORT).deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(err.message).toMatch(/STARTTLS.*ERNSTFALL_SMTP_STARTTLS=required/);
    expect(plain.received.length).toBe(before);

    await new MailChannel(notify({ smtpUrl: tlsSmtp.url(), smtpStarttls: 'off' }), SHORT).deliver(rcpt('mail:plain@musterstadt.de'), message(), 'de');
    expect(tlsSmtp.received.at(-1)).toMatchObject({ to: ['plain@musterstadt.de'], secure: false });
  });

  it('without an SMTP server or with an unreadable CA file delivery fails permanently, naming the setting', T, async () => {
    const none = await failure(new MailChannel(notify()).deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(none.permanent).toBe(true);
    expect(none.message).toBe('no SMTP server configured (ERNSTFALL_SMTP_URL)');
    const ca = await failure(new MailChannel(notify({ smtpUrl: plain.url(), smtpCaFile: path.join(dir, 'missing.pem') })).deliver(rcpt('mail:it@musterstadt.de'), message(), 'de'));
    expect(ca.permanent).toBe(true);
    expect(ca.message).toMatch(/ERNSTFALL_SMTP_CA_FILE.*ENOENT/);
  });
});

// ---------------------------------------------------------------- webhooks

interface Hit { path: string; headers: IncomingHttpHeaders; body: string; verified: boolean }
const hits: Hit[] = [];
const hanging: ServerResponse[] = [];
let http: HttpServer;
let base = '';

/** The receiver's own check, written out independently of the channel's code. */
function receiverVerifies(headers: IncomingHttpHeaders, body: string, secret = SECRET): boolean {
  const ts = String(headers['x-ernstfall-timestamp'] ?? '');
  const sig = String(headers['x-ernstfall-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`;
  return sig === expected && Math.abs(Date.now() / 1000 - Number(ts)) <= 300;
}

function hook(name: string, route: string, over: Partial<WebhookConfig> = {}): [string, WebhookConfig] {
  return [name, { name, url: `${base}/${route}/${URL_SIG}?sig=${URL_SIG}`, format: 'json', secret: SECRET, ...over }];
}
let webhooks: Map<string, WebhookConfig>;

beforeAll(async () => {
  http = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const route = req.url!.split('/')[1]!;
      const verified = receiverVerifies(req.headers, body);
      hits.push({ path: route, headers: req.headers, body, verified });
      if (route === 'hang') return void hanging.push(res);
      const status = ({ ok: verified ? 204 : 401, teams: 202, fail500: 500, bad400: 400, busy429: 429, slow408: 408, moved: 302 } as Record<string, number>)[route] ?? 404;
      res.writeHead(status, status === 302 ? { location: `${base}/ok/elsewhere` } : {}).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const gone = await closedPort();
  webhooks = new Map([
    hook('ticket', 'ok'),
    hook('ticket-old-secret', 'ok', { secret: 'an-old-secret-that-was-rotated' }),
    hook('teams-it', 'teams', { format: 'teams', secret: undefined }),
    hook('broken', 'fail500'), hook('rejecting', 'bad400'), hook('busy', 'busy429'), hook('slow', 'slow408'), hook('moved', 'moved'),
    hook('hanging', 'hang'),
    ['gone', { name: 'gone', url: `http://127.0.0.1:${gone}/x/${URL_SIG}`, format: 'json', secret: SECRET }],
    hook('musterstadt-only', 'ok', { tenants: ['musterstadt'] }),
    hook('nachbardorf-only', 'ok', { tenants: ['nachbardorf'] }),
    hook('no-secret', 'ok', { secret: undefined }),
  ]);
}, 10_000);

afterAll(async () => {
  for (const r of hanging) r.destroy();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
}, 10_000);

const channel = (timeoutMs = 2_000, now?: () => number) => new WebhookChannel(webhooks, { timeoutMs, ...(now && { now }) });

describe('webhook channel against a real HTTP receiver', () => {
  it('json: signed payload the receiver verifies, with event, delivery id and timestamp headers', T, async () => {
    const msg = message();
    await channel().deliver(rcpt('webhook:ticket'), msg, 'de');
    const hit = hits.at(-1)!;
    expect(hit.path).toBe('ok');
    expect(hit.verified).toBe(true);
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['x-ernstfall-event']).toBe('overdue');
    expect(hit.headers['x-ernstfall-delivery']).toBe('ntf-0815');
    expect(Math.abs(Number(hit.headers['x-ernstfall-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(hit.headers['x-ernstfall-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    const body = JSON.parse(hit.body);
    expect(body).toEqual(webhookPayload(msg));
    expect(body).toMatchObject({ schema: 'ernstfall.notification/v1', id: 'ntf-0815', event: 'overdue', tenant: { slug: 'musterstadt' }, plan: { id: 'ewo' } });
    expect(verifyWebhookSignature(SECRET, hit.headers['x-ernstfall-timestamp'] as string, hit.body, hit.headers['x-ernstfall-signature'] as string)).toBe(true);
  });

  it('verifyWebhookSignature rejects a tampered body, a wrong secret, an old or future timestamp and junk', T, async () => {
    await channel().deliver(rcpt('webhook:ticket'), message({ id: 'ntf-verify' }), 'de');
    const hit = hits.at(-1)!;
    const ts = hit.headers['x-ernstfall-timestamp'] as string;
    const sig = hit.headers['x-ernstfall-signature'] as string;
    expect(verifyWebhookSignature(SECRET, ts, hit.body, sig)).toBe(true); // the healthy case
    expect(verifyWebhookSignature(SECRET, ts, hit.body.replace('"overdue"', '"recovered"'), sig)).toBe(false);
    expect(verifyWebhookSignature(`${SECRET}x`, ts, hit.body, sig)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(Number(ts) + 1), hit.body, sig)).toBe(false); // the timestamp is signed too
    const now = Number(ts) * 1000;
    expect(verifyWebhookSignature(SECRET, ts, hit.body, sig, now + 299_000)).toBe(true);
    expect(verifyWebhookSignature(SECRET, ts, hit.body, sig, now + 301_000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, ts, hit.body, sig, now - 301_000)).toBe(false);
    for (const junk of [undefined, '', 'sha256=', sig.toUpperCase(), sig.slice(0, -2)]) expect(verifyWebhookSignature(SECRET, ts, hit.body, junk)).toBe(false);
    expect(verifyWebhookSignature(SECRET, 'abc', hit.body, signWebhook(SECRET, 'abc', hit.body))).toBe(false);
  });

  it('a receiver that rejects the signature (rotated secret, stale clock) answers 401: permanent', T, async () => {
    const wrong = await failure(channel().deliver(rcpt('webhook:ticket-old-secret'), message(), 'de'));
    expect(hits.at(-1)!.verified).toBe(false);
    expect(wrong).toMatchObject({ permanent: true, message: 'webhook "ticket-old-secret": answered 401' });
    const stale = await failure(channel(2_000, () => Date.now() - 10 * 60_000).deliver(rcpt('webhook:ticket'), message(), 'de'));
    expect(hits.at(-1)!.verified).toBe(false);
    expect(stale.permanent).toBe(true);
  });

  it('teams: an Adaptive Card message without signature headers', T, async () => {
    await channel().deliver(rcpt('webhook:teams-it'), message(), 'en');
    const hit = hits.at(-1)!;
    expect(hit.path).toBe('teams');
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['x-ernstfall-signature']).toBeUndefined();
    expect(hit.headers['x-ernstfall-event']).toBe('overdue');
    const card = JSON.parse(hit.body);
    expect(card.type).toBe('message');
    expect(card.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(card.attachments[0].content).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(card.attachments[0].content.body[0].text).toBe('Overdue: Einwohnermeldewesen – Straßenverzeichnis (Größe ü/ö/ä/ß)');
  });

  it('500, 429 and 408 are retryable; 400 and a redirect are permanent', T, async () => {
    const results = await Promise.all(['broken', 'busy', 'slow', 'rejecting', 'moved'].map((n) => failure(channel().deliver(rcpt(`webhook:${n}`), message(), 'de'))));
    expect(results.map((e) => [e.message, e.permanent])).toEqual([
      ['webhook "broken": answered 500', false],
      ['webhook "busy": answered 429', false],
      ['webhook "slow": answered 408', false],
      ['webhook "rejecting": answered 400', true],
      ['webhook "moved": answered with redirect 302; configure the final URL', true],
    ]);
  });

  it('a receiver that never answers is retryable after the timeout; an unreachable one too', T, async () => {
    const t0 = Date.now();
    const err = await failure(channel(300).deliver(rcpt('webhook:hanging'), message(), 'de'));
    const took = Date.now() - t0;
    expect(err).toMatchObject({ permanent: false, message: 'webhook "hanging": no answer within 300 ms' });
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_000);
    const gone = await failure(channel().deliver(rcpt('webhook:gone'), message(), 'de'));
    expect(gone).toMatchObject({ permanent: false, message: 'webhook "gone": not reachable (ECONNREFUSED)' });
  });

  it('an unknown webhook, a tenant not on its list and a json webhook without secret are permanent; the listed tenant gets through', T, async () => {
    const unknown = await failure(channel().deliver(rcpt('webhook:nirgendwo'), message(), 'de'));
    expect(unknown).toMatchObject({ permanent: true, message: 'webhook "nirgendwo" is not configured (ERNSTFALL_WEBHOOKS_FILE)' });
    const before = hits.length;
    const tenant = await failure(channel().deliver(rcpt('webhook:nachbardorf-only'), message(), 'de'));
    expect(tenant.permanent).toBe(true);
    expect(tenant.message).toContain('"musterstadt"');
    const noSecret = await failure(channel().deliver(rcpt('webhook:no-secret'), message(), 'de'));
    expect(noSecret.permanent).toBe(true);
    expect(hits.length).toBe(before); // nothing was sent
    await channel().deliver(rcpt('webhook:musterstadt-only'), message(), 'de');
    expect(hits.length).toBe(before + 1);
  });
});

describe('createChannels', () => {
  it('routes mail: and webhook: recipients to their channel', T, async () => {
    const channels = createChannels(notify({ smtpUrl: plain.url(), webhooks }), { mail: SHORT, webhook: { timeoutMs: 2_000 } });
    const mails = plain.received.length;
    const posts = hits.length;
    await channels.deliver(rcpt('mail:router@musterstadt.de'), message({ id: 'ntf-router' }), 'en');
    await channels.deliver(rcpt('webhook:ticket'), message({ id: 'ntf-router' }), 'en');
    await channels.close();
    expect(plain.received.length).toBe(mails + 1);
    const mail = await simpleParser(plain.received.at(-1)!.raw);
    expect(mail.subject).toBe('[ernstfall] Overdue: Einwohnermeldewesen – Straßenverzeichnis (Größe ü/ö/ä/ß)');
    expect(mail.headers.get('content-language')).toBe('en');
    expect(hits.length).toBe(posts + 1);
    expect(hits.at(-1)!.headers['x-ernstfall-delivery']).toBe('ntf-router');
  });
});

describe('no secrets in errors', () => {
  it('no error message carries a webhook URL, the HMAC secret or the SMTP password', () => {
    expect(errors.length).toBeGreaterThanOrEqual(20);
    const secrets = [PASS, encodeURIComponent(PASS), SECRET, URL_SIG, base, 'an-old-secret-that-was-rotated', 'falsches-Passwort-99', 'Pa55'];
    for (const e of errors) for (const s of secrets) expect(e.message, e.message).not.toContain(s);
    // a mail error may name the SMTP host; a webhook error names the webhook only, not even its host
    for (const e of errors.filter((x) => x.message.startsWith('webhook'))) expect(e.message).not.toContain('127.0.0.1');
  });
});
