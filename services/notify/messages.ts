import type { RunRow } from '../../db/schema.js';
import type { AlertRow } from '../../db/repositories/notification.repository.js';
import type { Lang, MessageRun, NotificationMessage, NotifyEvent } from './types.js';

export interface MessageContext {
  tenant: { slug: string; name: string };
  plan?: { id: string; title: string; system?: { name: string } };
  publicUrl?: string;
  timezone: string;
  lang: Lang;
}

const link = (base: string | undefined, path: string) => (base ? `${base.replace(/\/+$/, '')}${path}` : undefined);

/** The structured message (no secrets, no row data) that channels render at delivery. */
export function buildMessage(
  ctx: MessageContext,
  event: NotifyEvent,
  at: Date,
  extra: Omit<Partial<NotificationMessage>, 'event' | 'occurredAt' | 'tenant' | 'plan' | 'links' | 'timezone' | 'lang'> = {},
): NotificationMessage {
  const planId = ctx.plan?.id;
  return {
    event,
    occurredAt: at.toISOString(),
    tenant: ctx.tenant,
    ...(ctx.plan && { plan: { id: ctx.plan.id, title: ctx.plan.title, ...(ctx.plan.system && { system: ctx.plan.system.name }) } }),
    ...extra,
    links: {
      ...(planId && { plan: link(ctx.publicUrl, `/plans/${encodeURIComponent(planId)}`) }),
      ...(extra.run && { run: link(ctx.publicUrl, `/runs/${extra.run.id}`) }),
      ...(extra.alert && { alert: link(ctx.publicUrl, `/alerts/${extra.alert.id}`) }),
    },
    timezone: ctx.timezone,
    lang: ctx.lang,
  };
}

export function messageRun(r: Pick<RunRow, 'id' | 'verdict' | 'finished_at' | 'findings'>): MessageRun {
  const findings = ((r.findings as { code: string; severity: string; message: string }[] | null) ?? [])
    .map((f) => ({ code: f.code, severity: f.severity, message: f.message }));
  return { id: r.id, verdict: r.verdict, finishedAt: r.finished_at ? r.finished_at.toISOString() : null, findings };
}

export function messageAlert(a: AlertRow): NonNullable<NotificationMessage['alert']> {
  return { id: a.id, kind: a.kind, openedAt: a.opened_at.toISOString(), level: a.escalation_level };
}
