import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { NotificationRepository, type NotificationRow } from '../../db/repositories/notification.repository.js';
import { parseDuration } from '../util/duration.js';
import { DeliveryError, parseRecipient, type Channel, type Lang, type NotificationMessage } from './types.js';

export interface DispatcherConfig {
  dispatchMs: number;
  retryBaseMs: number;
  /** ISO duration: after this long undelivered, a notification is `failed`. */
  retryFor: string;
  lang: Lang;
}

export interface DispatchResult {
  sent: number;
  retrying: number;
  failed: number;
}

const MAX_BACKOFF_MS = 3_600_000;
/** Longer than any channel's own timeouts: a lease that runs out means the sender died. */
const LEASE_MS = 120_000;
const BATCH = 20;

/** Retry delay after the n-th failed attempt: base · 2^(n-1), at most an hour. */
export function backoffMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
}

/**
 * Delivers the outbox. Any number of dispatchers may run (row leases with
 * SKIP LOCKED); each notification is sent at least once, and a resend after a
 * crash mid-send carries the same id (Message-ID, X-Ernstfall-Delivery) so
 * receivers can recognise it. Undeliverable notifications are retried with
 * backoff and, after `retryFor`, kept as `failed` with the last error: never
 * dropped, and retriable by hand (POST /api/v1/notifications/{id}/retry).
 */
export class NotificationDispatcher {
  private readonly repo: NotificationRepository;
  private readonly retryForMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<DispatchResult> | null = null;
  private stopped = false;

  constructor(private readonly db: Kysely<DB>, private readonly channel: Channel, private readonly log: Logger, private readonly cfg: DispatcherConfig) {
    this.repo = new NotificationRepository(db);
    this.retryForMs = parseDuration(cfg.retryFor).seconds * 1000;
  }

  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      void this.dispatchOnce()
        .catch((err: Error) => this.log.error({ err: err.message }, 'notification dispatch failed; trying again'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.cfg.dispatchMs);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
    await this.channel.close?.().catch(() => undefined);
  }

  /** Sends everything due now, batch by batch. */
  dispatchOnce(): Promise<DispatchResult> {
    if (this.running) return this.running;
    this.running = (async () => {
      const total: DispatchResult = { sent: 0, retrying: 0, failed: 0 };
      for (;;) {
        const batch = await this.repo.claimDue(BATCH, LEASE_MS);
        for (const n of batch) {
          const outcome = await this.deliver(n);
          total[outcome]++;
        }
        if (batch.length < BATCH || this.stopped) return total;
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async deliver(n: NotificationRow & { age_ms: number }): Promise<keyof DispatchResult> {
    const ctx = { notificationId: n.id, tenantId: n.tenant_id, planId: n.plan_id, event: n.event, attempt: n.attempts };
    const message = n.message as NotificationMessage;
    const recipient = parseRecipient(n.recipient);
    try {
      if (typeof recipient === 'string') throw new DeliveryError(recipient, true);
      await this.channel.deliver(recipient, { ...message, id: n.id }, message.lang ?? this.cfg.lang);
      await this.repo.markSent(n.id);
      this.log.info({ ...ctx, channel: typeof recipient === 'string' ? undefined : recipient.kind }, 'notification sent');
      return 'sent';
    } catch (err) {
      const permanent = err instanceof DeliveryError && err.permanent;
      const error = (err instanceof Error ? err.message : String(err)).slice(0, 500);
      const wait = backoffMs(n.attempts, this.cfg.retryBaseMs);
      const tooOld = n.age_ms + wait > this.retryForMs;
      if (permanent || tooOld) {
        const why = permanent ? error : `gave up after ${n.attempts} attempts over ${this.cfg.retryFor}: ${error}`;
        await this.repo.markFailed(n.id, why, null);
        this.log.error({ ...ctx, err: why }, 'notification could not be delivered; kept as failed (retry by hand: POST /api/v1/notifications/{id}/retry)');
        return 'failed';
      }
      await this.repo.markFailed(n.id, error, wait);
      this.log.warn({ ...ctx, err: error, retryInMs: wait }, 'notification not delivered; will retry');
      return 'retrying';
    }
  }
}
