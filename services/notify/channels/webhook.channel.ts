import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { teamsCard, webhookPayload } from '../render.js';
import { DeliveryError, type Channel, type Lang, type NotificationMessage, type Recipient } from '../types.js';
import type { WebhookConfig } from '../webhook-config.js';
import { hostClock } from '../../clock.js';

/**
 * Signature of the `json` format, for receivers:
 *
 *   X-Ernstfall-Timestamp: <unix seconds>
 *   X-Ernstfall-Signature: sha256=<hex HMAC-SHA256(secret, `${timestamp}.${raw body}`)>
 *
 * A receiver recomputes the HMAC over the raw body bytes as received, compares
 * in constant time and rejects timestamps more than 5 minutes away from its
 * clock; X-Ernstfall-Delivery (the notification id) lets it drop a replay or
 * a retried delivery it already has. The `teams` format is not signed: the
 * Workflows URL carries its own signature (`sig=`), so the URL is the secret.
 */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** For receivers (and tests): true when `header` signs `body` with `secret` and `timestamp` is within 5 minutes of `now`. */
export function verifyWebhookSignature(
  secret: string, timestamp: string | number | undefined, body: string, header: string | undefined, now = hostClock().getTime(),
): boolean {
  const ts = Number(timestamp);
  if (!header || !/^\d{1,12}$/.test(String(timestamp ?? '')) || Math.abs(now / 1000 - ts) > SIGNATURE_TOLERANCE_SECONDS) return false;
  const expected = Buffer.from(signWebhook(secret, ts, body));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebhookChannelOptions {
  /** Whole request, connect to response headers (default 10 s). */
  timeoutMs?: number;
  log?: Logger;
  /** Clock for the signature timestamp (tests). */
  now?: () => number;
}

/** HTTP answers worth another try: the receiver is busy or broken for now. */
const retryableStatus = (s: number) => s === 408 || s === 429 || s >= 500;

export class WebhookChannel implements Channel {
  private readonly timeoutMs: number;

  constructor(private readonly webhooks: ReadonlyMap<string, WebhookConfig>, private readonly opts: WebhookChannelOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async deliver(recipient: Recipient, msg: NotificationMessage & { id: string }, lang: Lang): Promise<void> {
    if (recipient.kind !== 'webhook') throw new DeliveryError(`webhook channel cannot deliver to ${recipient.raw}`, true);
    const name = recipient.name;
    const hook = this.webhooks.get(name);
    if (!hook) throw new DeliveryError(`webhook "${name}" is not configured (ERNSTFALL_WEBHOOKS_FILE)`, true);
    if (hook.tenants && !hook.tenants.includes(msg.tenant.slug)) {
      throw new DeliveryError(`webhook "${name}" is not allowed for tenant "${msg.tenant.slug}" (tenants in ERNSTFALL_WEBHOOKS_FILE)`, true);
    }

    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'ernstfall-notify',
      'x-ernstfall-event': msg.event,
      'x-ernstfall-delivery': msg.id,
    };
    let body: string;
    if (hook.format === 'teams') {
      body = JSON.stringify(teamsCard(msg, lang));
    } else {
      if (!hook.secret) throw new DeliveryError(`webhook "${name}" has no secret for the signature (ERNSTFALL_WEBHOOKS_FILE)`, true);
      body = JSON.stringify(webhookPayload(msg));
      const ts = Math.floor((this.opts.now?.() ?? hostClock().getTime()) / 1000);
      headers['x-ernstfall-timestamp'] = String(ts);
      headers['x-ernstfall-signature'] = signWebhook(hook.secret, ts, body);
    }

    let status: number;
    try {
      const res = await fetch(hook.url, {
        method: 'POST', headers, body,
        // a redirect would resend the signed body elsewhere (or turn the POST into a GET): configure the final URL instead
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      // name the webhook and the cause only: the URL (Teams: with its sig) and any host in the cause stay out
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${this.timeoutMs} ms` : `not reachable (${e.cause?.code ?? e.name})`;
      throw new DeliveryError(`webhook "${name}": ${why}`, false);
    }
    if (status >= 200 && status < 300) {
      this.opts.log?.debug({ webhook: name, event: msg.event, notificationId: msg.id, status }, 'webhook delivered');
      return;
    }
    if (status >= 300 && status < 400) throw new DeliveryError(`webhook "${name}": answered with redirect ${status}; configure the final URL`, true);
    throw new DeliveryError(`webhook "${name}": answered ${status}`, !retryableStatus(status));
  }
}
