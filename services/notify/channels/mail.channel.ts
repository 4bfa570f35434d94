import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import nodemailer from 'nodemailer';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import { renderMail } from '../render.js';
import { DeliveryError, type Channel, type Lang, type NotificationMessage, type Recipient } from '../types.js';
import { hostClock } from '../../clock.js';

type MailConfig = Pick<Config['notify'], 'smtpUrl' | 'mailFrom' | 'smtpStarttls' | 'smtpCaFile'>;
type Transporter = ReturnType<typeof nodemailer.createTransport>;

export interface MailChannelOptions {
  /** TCP (and TLS) connect (default 15 s). */
  connectionTimeoutMs?: number;
  /** From connect to the server's 220 greeting (default 15 s). */
  greetingTimeoutMs?: number;
  /** Silence on an open connection (default 15 s). */
  socketTimeoutMs?: number;
  /** The whole send, however slow each step is (default 60 s). */
  sendTimeoutMs?: number;
  log?: Logger;
}

interface SmtpTarget {
  host: string;
  port?: number;
  secure: boolean;
  user?: string;
  pass?: string;
}

/** smtp://user:pass@host:port or smtps://…; the URL itself is never part of an error. */
function parseSmtpUrl(raw: string): SmtpTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DeliveryError('ERNSTFALL_SMTP_URL is not a valid URL', true);
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new DeliveryError('ERNSTFALL_SMTP_URL must start with smtp:// or smtps://', true);
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(u.port && { port: Number(u.port) }),
    secure: u.protocol === 'smtps:',
    ...(u.username && { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) }),
  };
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  permanent?: boolean;
}

/** Codes without an SMTP reply that retrying cannot fix: missing or refused credentials, a bad address or configuration. */
const PERMANENT_CODES = new Set(['EAUTH', 'ENOAUTH', 'ECONFIG', 'EENVELOPE']);

/**
 * 5xx replies (except 503, a session out of step) are permanent, 4xx replies
 * and anything without a reply (refused connection, timeout, TLS) are worth
 * another try. nodemailer ≥ 10.2 classifies replies itself (`permanent`).
 */
export function isPermanentSmtpError(err: SmtpError): boolean {
  if (typeof err.permanent === 'boolean') return err.permanent;
  if (typeof err.responseCode === 'number') return err.responseCode >= 500 && err.responseCode !== 503;
  return err.code !== undefined && PERMANENT_CODES.has(err.code);
}

export class MailChannel implements Channel {
  private transporter?: Transporter;
  private readonly secrets: string[] = [];

  constructor(private readonly config: MailConfig, private readonly opts: MailChannelOptions = {}) {
    if (config.smtpUrl) {
      this.secrets.push(config.smtpUrl);
      const pass = URL.canParse(config.smtpUrl) ? new URL(config.smtpUrl).password : '';
      if (pass) this.secrets.push(pass, decodeURIComponent(pass));
    }
  }

  /** Removes the SMTP URL, its password and any `user:pass@` from text meant for errors and logs. */
  private scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) if (s.length >= 3) out = out.split(s).join('***');
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1');
  }

  private transport(): Transporter {
    if (this.transporter) return this.transporter;
    if (!this.config.smtpUrl) throw new DeliveryError('no SMTP server configured (ERNSTFALL_SMTP_URL)', true);
    const t = parseSmtpUrl(this.config.smtpUrl);
    let ca: string | undefined;
    if (this.config.smtpCaFile) {
      try {
        ca = readFileSync(this.config.smtpCaFile, 'utf8');
      } catch (err) {
        throw new DeliveryError(`ERNSTFALL_SMTP_CA_FILE: cannot read ${this.config.smtpCaFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, true);
      }
    }
    const timeout = (ms: number | undefined) => ms ?? 15_000;
    this.transporter = nodemailer.createTransport({
      host: t.host,
      ...(t.port && { port: t.port }),
      secure: t.secure,
      ...(t.user && { auth: { user: t.user, pass: t.pass ?? '' } }),
      // 'opportunistic' is nodemailer's default: STARTTLS when offered, and a failed upgrade fails the send
      ...(this.config.smtpStarttls === 'required' && { requireTLS: true }),
      ...(this.config.smtpStarttls === 'off' && { ignoreTLS: true }),
      // an extra CA adds to the public ones (Node would otherwise trust only `ca`)
      ...(ca && { tls: { ca: [...rootCertificates, ca] } }),
      connectionTimeout: timeout(this.opts.connectionTimeoutMs),
      greetingTimeout: timeout(this.opts.greetingTimeoutMs),
      socketTimeout: timeout(this.opts.socketTimeoutMs),
      dnsTimeout: timeout(this.opts.connectionTimeoutMs),
    });
    return this.transporter;
  }

  async deliver(recipient: Recipient, msg: NotificationMessage & { id: string }, lang: Lang): Promise<void> {
    if (recipient.kind !== 'mail') throw new DeliveryError(`mail channel cannot deliver to ${recipient.raw}`, true);
    const transporter = this.transport();
    const mail = renderMail(msg, lang);
    try {
      const info = await transporter.sendMail({
        from: this.config.mailFrom,
        to: recipient.address,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        ...(mail.attachments && { attachments: mail.attachments }),
        // the same notification resent keeps its Message-ID, so mail clients and receivers can tell
        messageId: `<${msg.id.replace(/[^A-Za-z0-9._-]/g, '-')}@ernstfall>`,
        date: hostClock(),
        headers: {
          'X-Ernstfall-Event': msg.event,
          'Content-Language': lang,
          // RFC 3834; Exchange reads the second: no out-of-office replies to a robot
          'Auto-Submitted': 'auto-generated',
          'X-Auto-Response-Suppress': 'All',
        },
        signal: AbortSignal.timeout(this.opts.sendTimeoutMs ?? 60_000),
      });
      this.opts.log?.debug({ to: recipient.address, event: msg.event, notificationId: msg.id, response: this.scrub(String(info.response ?? '')) }, 'mail delivered');
    } catch (err) {
      const e = err as SmtpError;
      const what = [e.code, e.responseCode].filter((x) => x !== undefined).join(' ');
      throw new DeliveryError(`mail to ${recipient.address} not accepted${what ? ` (${what})` : ''}: ${this.scrub(e.message ?? String(err))}${this.hint(e)}`, isPermanentSmtpError(e));
    }
  }

  /** Points at the setting that decides, for the failures a setting causes. */
  private hint(e: SmtpError): string {
    if (/certificate|CERT_|unable to verify/i.test(e.message ?? '')) return ' (a private CA can be trusted with ERNSTFALL_SMTP_CA_FILE)';
    if (e.code === 'ETLS' && this.config.smtpStarttls === 'required') return ' (ERNSTFALL_SMTP_STARTTLS=required)';
    return '';
  }

  async close(): Promise<void> {
    this.transporter?.close();
    this.transporter = undefined;
  }
}
