/**
 * Notifications: what is sent (a structured message, rendered per channel
 * and language at delivery time) and to whom (a recipient as written in the
 * plan: `mail:addr` or `webhook:name`). Messages hold no secrets and no row
 * data: plan, status, dates, run verdict and findings (codes and messages as
 * in the run), links.
 */
import type { PlanStatus } from '../runs/plan-status.js';

export type Lang = 'de' | 'en';

/** What happened. One notification per event and recipient (dedupe key in the database). */
export type NotifyEvent =
  | 'due-soon' // a test is due soon
  | 'overdue' // the plan is overdue (opens an alert)
  | 'escalation' // an open alert was not acknowledged in time: next level of the chain
  | 'failure' // a run ended failed or error
  | 'recovered' // all-clear: the plan passed again after an alert
  | 'digest' // daily summary for one recipient
  | 'checkpoint' // daily signed head of a tenant's evidence chain, kept outside the server by its recipients
  | 'test'; // sent by hand to try a channel

export type Recipient = { kind: 'mail'; address: string; raw: string } | { kind: 'webhook'; name: string; raw: string };

export interface MessagePlan {
  id: string;
  title: string;
  system?: string;
}

export interface MessageRun {
  id: string;
  verdict: 'passed' | 'failed' | 'error' | 'cancelled' | null;
  finishedAt: string | null;
  findings: { code: string; severity: string; message: string }[];
}

export interface DigestItem {
  planId: string;
  title: string;
  status: PlanStatus;
  nextDueAt: string | null;
  lastVerdict: 'passed' | 'failed' | null;
  paused: boolean;
}

/** Everything a channel needs to render one notification. Times are ISO 8601 UTC; rendering shows them in `timezone`. */
export interface NotificationMessage {
  event: NotifyEvent;
  /** The notification's id: idempotency key for receivers (Message-ID, X-Ernstfall-Delivery). Set at delivery. */
  id?: string;
  /** When the event happened (ISO UTC). */
  occurredAt: string;
  tenant: { slug: string; name: string };
  plan?: MessagePlan;
  status?: PlanStatus;
  /** When the next passed test is due. */
  dueAt?: string | null;
  /** When the plan became overdue (due date + grace). */
  overdueSince?: string | null;
  run?: MessageRun;
  alert?: { id: string; kind: 'overdue' | 'failing'; openedAt: string; level: number };
  digest?: { date: string; items: DigestItem[] };
  /** The signed chain head (a Checkpoint as in the evidence bundle) with its readable parts. */
  checkpoint?: { seq: number; hash: string; keyId: string; canonical: string; signature: string };
  /** Absolute links when ERNSTFALL_PUBLIC_URL is set. */
  links: { plan?: string; run?: string; alert?: string };
  /** Display time zone (Europe/Berlin by default). */
  timezone: string;
  /** Language chosen when the notification was created (the plan's notify.language, else ERNSTFALL_NOTIFY_LANG). */
  lang?: Lang;
  /** What resolved an alert (recovered): a passed run, or the plan changed so it is no longer overdue. */
  resolution?: 'passed' | 'plan-changed';
}

/** A delivery failed. `permanent`: retrying cannot help (e.g. unknown webhook, address refused with 5xx). */
export class DeliveryError extends Error {
  constructor(message: string, public readonly permanent = false) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** One channel (mail, webhook). Throws DeliveryError when the message was not accepted. */
export interface Channel {
  deliver(recipient: Recipient, message: NotificationMessage & { id: string }, lang: Lang): Promise<void>;
  close?(): Promise<void>;
}

/** `mail:it@x.de` / `webhook:teams-it` → Recipient, or an error message. */
export function parseRecipient(raw: string): Recipient | string {
  const m = /^(mail|webhook):(.+)$/.exec(raw.trim());
  if (!m) return `"${raw}" must be mail:<address> or webhook:<name>`;
  const value = m[2]!.trim();
  if (m[1] === 'mail') {
    // deliberately simple: one @, no spaces or angle brackets (no display names, no header injection)
    if (!/^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/.test(value) || value.length > 254) return `"${value}" is not an e-mail address`;
    return { kind: 'mail', address: value, raw: `mail:${value}` };
  }
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(value)) return `webhook name "${value}" must be 1-64 characters of a-z, 0-9, _ . -`;
  return { kind: 'webhook', name: value, raw: `webhook:${value}` };
}
