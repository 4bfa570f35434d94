/**
 * Notification rendering: mail (subject, text, HTML), the webhook JSON
 * document and the Microsoft Teams Adaptive Card. Pure functions; German by
 * default, English on request. Plan titles, systems and finding messages are
 * user input: HTML escapes every interpolated value, cards neutralise
 * Markdown links, subjects are one line.
 */
import { fill, planStatusLabel, verdictLabel } from '../reports/i18n.js';
import type { Lang, NotificationMessage, NotifyEvent } from './types.js';

type Msg = NotificationMessage & { id: string };
type Color = 'attention' | 'warning' | 'good' | 'accent';

const COLOR: Record<NotifyEvent, Color> = {
  'due-soon': 'warning', overdue: 'attention', escalation: 'attention', failure: 'attention', recovered: 'good', digest: 'accent', test: 'accent', checkpoint: 'accent',
};
const HEX: Record<Color, string> = { attention: '#b00020', warning: '#a35c00', good: '#1b7f3b', accent: '#0b5cad' };

const de = {
  subject: {
    'due-soon': 'Bald fällig: {title}', overdue: 'Überfällig: {title}', escalation: 'Eskalation (Stufe {level}): {title}',
    failure: 'Fehlgeschlagen: {title}', recovered: 'Entwarnung: {title}', digest: 'Tagesübersicht {date}', test: 'Testnachricht',
    checkpoint: 'Prüfpunkt der Nachweiskette: {tenant}, Eintrag {seq}',
  },
  lead: {
    'due-soon': 'Der Test „{title}“ ist bald fällig.',
    overdue: 'Der Test „{title}“ ist überfällig: Innerhalb der geforderten Frist gibt es keinen bestandenen Test.',
    escalation: 'Der Alarm „{kind}“ für „{title}“ wurde von niemandem bestätigt. Diese Nachricht geht deshalb an Eskalationsstufe {level}.',
    failure: 'Der Test „{title}“ ist fehlgeschlagen. Ergebnis: {verdict}.',
    recovered: 'Der Test „{title}“ wurde wieder bestanden. Der Alarm ist aufgehoben.',
    digest: 'Stand der Wiederherstellungstests für {tenant}. Pläne: {count}, davon mit Handlungsbedarf: {attention}.',
    test: 'Dies ist eine Testnachricht von ernstfall für {tenant}. Wenn Sie sie lesen, funktioniert dieser Kanal.',
    checkpoint: 'Dies ist der signierte Stand der Nachweiskette von {tenant}: {seq} Einträge, der neueste mit dem Hash {hash}. Bewahren Sie diese Nachricht (und den Anhang) außerhalb des Servers auf: Mit ihr lässt sich später nachweisen, dass kein Eintrag bis zu diesem Stand entfernt oder verändert wurde.',
  },
  next: {
    'due-soon': 'Bitte führen Sie den Test vor dem Fälligkeitstermin aus.',
    overdue: 'Bitte führen Sie den Test jetzt aus oder bestätigen Sie den Alarm, damit andere sehen, dass sich jemand kümmert.',
    escalation: 'Bitte kümmern Sie sich darum oder sorgen Sie dafür, dass der Alarm bestätigt wird.',
    failure: 'Bitte prüfen Sie die Feststellungen, beheben Sie die Ursache und starten Sie einen Nachtest.',
    recovered: 'Es ist nichts weiter zu tun.',
    digest: 'Pläne mit Handlungsbedarf (fehlgeschlagen, überfällig, nie getestet) sollten heute bearbeitet werden.',
    test: 'Es ist nichts zu tun.',
    checkpoint: 'Nichts zu tun außer aufbewahren. Prüfen: npm run evidence:verify -- bundle.json --trust key.pem --checkpoint <Anhang>.',
  },
  kind: { overdue: 'überfällig', failing: 'fehlgeschlagen' },
  tenant: 'Mandant', plan: 'Plan', planId: 'Plan-ID', system: 'System', status: 'Status', dueAt: 'Fällig am',
  overdueSince: 'Überfällig seit', alert: 'Alarm', alertOpened: 'Alarm offen seit', level: 'Eskalationsstufe', run: 'Lauf',
  verdict: 'Ergebnis', finishedAt: 'Beendet', occurredAt: 'Zeitpunkt', date: 'Datum', findings: 'Feststellungen',
  overview: 'Übersicht', nextDue: 'Nächster Termin', lastVerdict: 'Letztes Ergebnis', paused: 'Pausiert', yes: 'ja', no: 'nein',
  whatNow: 'Was ist zu tun?', links: 'Links', openPlan: 'Plan öffnen', openRun: 'Lauf öffnen', openAlert: 'Alarm öffnen',
  noPlans: 'Keine Pläne.', more: '… und {n} weitere',
  footer: 'Automatische Nachricht von ernstfall (Nachweis von Wiederherstellungstests). Benachrichtigungs-ID: {id}',
};
type Texts = typeof de;

const en: Texts = {
  subject: {
    'due-soon': 'Due soon: {title}', overdue: 'Overdue: {title}', escalation: 'Escalation (level {level}): {title}',
    failure: 'Failed: {title}', recovered: 'All clear: {title}', digest: 'Daily summary {date}', test: 'Test message',
    checkpoint: 'Evidence chain checkpoint: {tenant}, record {seq}',
  },
  lead: {
    'due-soon': 'The test "{title}" is due soon.',
    overdue: 'The test "{title}" is overdue: there is no passed test within the required interval.',
    escalation: 'Nobody acknowledged the "{kind}" alert for "{title}". This message therefore goes to escalation level {level}.',
    failure: 'The test "{title}" failed. Verdict: {verdict}.',
    recovered: 'The test "{title}" passed again. The alert is resolved.',
    digest: 'Restore tests for {tenant}. Plans: {count}, needing attention: {attention}.',
    test: 'This is a test message from ernstfall for {tenant}. If you can read it, this channel works.',
    checkpoint: 'This is the signed state of the evidence chain of {tenant}: {seq} records, the newest with the hash {hash}. Keep this message (and its attachment) outside the server: it proves later that no record up to this point was removed or changed.',
  },
  next: {
    'due-soon': 'Please run the test before the due date.',
    overdue: 'Please run the test now, or acknowledge the alert so others can see someone is on it.',
    escalation: 'Please take care of it, or make sure the alert is acknowledged.',
    failure: 'Please check the findings, fix the cause and start a re-test.',
    recovered: 'Nothing more to do.',
    digest: 'Plans that need attention (failing, overdue, never tested) should be dealt with today.',
    test: 'Nothing to do.',
    checkpoint: 'Nothing to do but keep it. To check: npm run evidence:verify -- bundle.json --trust key.pem --checkpoint <attachment>.',
  },
  kind: { overdue: 'overdue', failing: 'failing' },
  tenant: 'Tenant', plan: 'Plan', planId: 'Plan ID', system: 'System', status: 'Status', dueAt: 'Due',
  overdueSince: 'Overdue since', alert: 'Alert', alertOpened: 'Alert open since', level: 'Escalation level', run: 'Run',
  verdict: 'Verdict', finishedAt: 'Finished', occurredAt: 'Occurred', date: 'Date', findings: 'Findings',
  overview: 'Overview', nextDue: 'Next due', lastVerdict: 'Last verdict', paused: 'Paused', yes: 'yes', no: 'no',
  whatNow: 'What to do:', links: 'Links', openPlan: 'Open plan', openRun: 'Open run', openAlert: 'Open alert',
  noPlans: 'No plans.', more: '… and {n} more',
  footer: 'Automatic message from ernstfall (evidence of restore tests). Notification ID: {id}',
};

const texts = (lang: Lang): Texts => (lang === 'en' ? en : de);
const locale = (lang: Lang) => (lang === 'en' ? 'en-GB' : 'de-DE');

/** `28.11.2026, 02:00 MEZ` / `28 Nov 2026, 02:00 CET` in `timeZone`; `—` for nothing. */
export function formatInstant(iso: string | null | undefined, timeZone: string, lang: Lang): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const date: Intl.DateTimeFormatOptions = lang === 'en' ? { day: 'numeric', month: 'short', year: 'numeric' } : { day: '2-digit', month: '2-digit', year: 'numeric' };
  return new Intl.DateTimeFormat(locale(lang), { ...date, hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone, timeZoneName: 'short' }).format(d);
}

/** A calendar day (`2026-11-28` stays that day) or the local day of an instant: `28.11.2026` / `28 Nov 2026`. */
export function formatDay(iso: string, timeZone: string, lang: Lang): string {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  const d = new Date(dateOnly ? `${iso}T12:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  const opts: Intl.DateTimeFormatOptions = lang === 'en' ? { day: 'numeric', month: 'short', year: 'numeric' } : { day: '2-digit', month: '2-digit', year: 'numeric' };
  return new Intl.DateTimeFormat(locale(lang), { ...opts, timeZone: dateOnly ? 'UTC' : timeZone }).format(d);
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One line, bounded: subjects and card titles must not break on user input. */
const oneLine = (s: string, max = 120) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

const title = (m: Msg) => oneLine(m.plan?.title ?? m.plan?.id ?? '—');
const attentionCount = (m: Msg) =>
  (m.digest?.items ?? []).filter((i) => !i.paused && (i.status === 'failing' || i.status === 'overdue' || i.status === 'never-tested')).length;

function vars(m: Msg, lang: Lang): Record<string, string | number> {
  const t = texts(lang);
  return {
    title: title(m), level: m.alert?.level ?? '—', kind: m.alert ? t.kind[m.alert.kind] : '—', verdict: verdictLabel(m.run?.verdict, lang),
    tenant: m.tenant.name, date: m.digest ? formatDay(m.digest.date, m.timezone, lang) : '—',
    count: m.digest?.items.length ?? 0, attention: attentionCount(m), id: m.id,
    seq: m.checkpoint?.seq ?? '—', hash: m.checkpoint?.hash ?? '—',
  };
}

/** The subject without the `[ernstfall]` tag: card titles and HTML headings. */
export function headline(m: Msg, lang: Lang): string {
  return oneLine(fill(texts(lang).subject[m.event], vars(m, lang)), 200);
}

type Fact = [label: string, value: string];

function facts(m: Msg, lang: Lang): Fact[] {
  const t = texts(lang);
  const at = (iso: string | null | undefined) => formatInstant(iso, m.timezone, lang);
  const out: Fact[] = [[t.tenant, m.tenant.name]];
  if (m.plan) out.push([t.plan, m.plan.title], [t.planId, m.plan.id]);
  if (m.plan?.system) out.push([t.system, m.plan.system]);
  if (m.status) out.push([t.status, planStatusLabel(m.status, lang)]);
  if (m.dueAt) out.push([t.dueAt, at(m.dueAt)]);
  if (m.overdueSince) out.push([t.overdueSince, at(m.overdueSince)]);
  if (m.alert) out.push([t.alert, t.kind[m.alert.kind]], [t.alertOpened, at(m.alert.openedAt)]);
  if (m.alert && m.event === 'escalation') out.push([t.level, String(m.alert.level)]);
  if (m.run) {
    out.push([t.run, m.run.id], [t.verdict, verdictLabel(m.run.verdict, lang)]);
    if (m.run.finishedAt) out.push([t.finishedAt, at(m.run.finishedAt)]);
  }
  if (m.checkpoint) out.push(['seq', String(m.checkpoint.seq)], ['hash', m.checkpoint.hash], ['keyId', m.checkpoint.keyId]);
  if (m.digest) out.push([t.date, formatDay(m.digest.date, m.timezone, lang)]);
  else out.push([t.occurredAt, at(m.occurredAt)]);
  return out;
}

function links(m: Msg, lang: Lang): { label: string; url: string }[] {
  const t = texts(lang);
  const safe = (u: string | undefined) => (u && /^https?:\/\//i.test(u) ? u : undefined);
  return ([['plan', t.openPlan], ['run', t.openRun], ['alert', t.openAlert]] as const)
    .map(([k, label]) => ({ label, url: safe(m.links[k]) }))
    .filter((l): l is { label: string; url: string } => l.url !== undefined);
}

function digestRows(m: Msg, lang: Lang): { title: string; planId: string; status: string; nextDue: string; lastVerdict: string; paused: string }[] {
  const t = texts(lang);
  return (m.digest?.items ?? []).map((i) => ({
    title: i.title, planId: i.planId, status: planStatusLabel(i.status, lang), nextDue: formatInstant(i.nextDueAt, m.timezone, lang),
    lastVerdict: verdictLabel(i.lastVerdict, lang), paused: i.paused ? t.yes : t.no,
  }));
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
  /** a checkpoint travels as a file that `npm run evidence:verify -- --checkpoint` reads as it is */
  attachments?: { filename: string; content: string; contentType: string }[];
}

/** The checkpoint exactly as in an evidence bundle ({canonical, signature, keyId}), one JSON line. */
export function checkpointFile(m: Msg): { filename: string; content: string; contentType: string } | undefined {
  if (!m.checkpoint) return undefined;
  const { canonical, signature, keyId } = m.checkpoint;
  return { filename: `checkpoint-${m.tenant.slug}-${m.checkpoint.seq}.json`, content: `${JSON.stringify({ canonical, signature, keyId })}\n`, contentType: 'application/json' };
}

export function renderMail(m: Msg, lang: Lang): RenderedMail {
  const t = texts(lang);
  const v = vars(m, lang);
  const head = headline(m, lang);
  const lead = fill(t.lead[m.event], v);
  const next = t.next[m.event];
  const fs = facts(m, lang);
  const findings = m.run?.findings ?? [];
  const rows = digestRows(m, lang);
  const ls = links(m, lang);
  const footer = fill(t.footer, v);

  const width = Math.max(...fs.map(([l]) => l.length)) + 2;
  const text = [
    head, '', lead, '',
    ...fs.map(([l, val]) => `${`${l}:`.padEnd(width)}${oneLine(val, 500)}`),
    ...(findings.length ? ['', `${t.findings}:`, ...findings.map((f) => `- ${f.code}: ${oneLine(f.message, 1000)}`)] : []),
    ...(m.digest ? ['', `${t.overview}:`, ...(rows.length ? rows.flatMap((r) => [
      `- ${oneLine(r.title)} (${r.planId})`,
      `  ${t.status}: ${r.status}; ${t.nextDue}: ${r.nextDue}; ${t.lastVerdict}: ${r.lastVerdict}; ${t.paused}: ${r.paused}`,
    ]) : [t.noPlans])] : []),
    '', `${t.whatNow} ${next}`,
    ...(ls.length ? ['', `${t.links}:`, ...ls.map((l) => `${l.label}: ${l.url}`)] : []),
    '', '-- ', footer, '',
  ].join('\n');

  const e = escapeHtml;
  const color = HEX[COLOR[m.event]];
  const cell = 'padding:4px 12px 4px 0;vertical-align:top;text-align:left';
  const th = `${cell};font-weight:bold;white-space:nowrap`;
  const h2 = 'margin:18px 0 6px;font-size:15px';
  const html = [
    `<!DOCTYPE html><html lang="${lang}"><head><meta charset="utf-8"><title>${e(head)}</title></head>`,
    '<body style="margin:0;padding:16px;background:#f4f4f4;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.45;color:#1a1a1a">',
    `<div style="max-width:680px;margin:0 auto;background:#ffffff;border-top:4px solid ${color};padding:16px 20px">`,
    `<h1 style="margin:0 0 12px;font-size:18px;color:${color}">${e(head)}</h1>`,
    `<p style="margin:0 0 12px">${e(lead)}</p>`,
    `<table role="presentation" style="border-collapse:collapse;margin:0 0 12px">${fs.map(([l, val]) => `<tr><th style="${th}">${e(l)}</th><td style="${cell}">${e(val)}</td></tr>`).join('')}</table>`,
    findings.length ? `<h2 style="${h2}">${e(t.findings)}</h2><ul style="margin:0 0 12px;padding-left:20px">${findings.map((f) => `<li><code style="font-weight:bold">${e(f.code)}</code>: ${e(f.message)}</li>`).join('')}</ul>` : '',
    m.digest ? `<h2 style="${h2}">${e(t.overview)}</h2>${rows.length
      ? `<table style="border-collapse:collapse;margin:0 0 12px"><tr>${[t.plan, t.status, t.nextDue, t.lastVerdict, t.paused].map((h) => `<th style="${th};border-bottom:1px solid #ccc">${e(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr><td style="${cell}">${e(r.title)}<br><span style="color:#666;font-size:12px">${e(r.planId)}</span></td><td style="${cell}">${e(r.status)}</td><td style="${cell}">${e(r.nextDue)}</td><td style="${cell}">${e(r.lastVerdict)}</td><td style="${cell}">${e(r.paused)}</td></tr>`).join('')}</table>`
      : `<p>${e(t.noPlans)}</p>`}` : '',
    `<p style="margin:12px 0"><strong>${e(t.whatNow)}</strong> ${e(next)}</p>`,
    ls.length ? `<p style="margin:12px 0">${ls.map((l) => `<a href="${e(l.url)}" style="color:#0b5cad">${e(l.label)}</a>`).join(' &middot; ')}</p>` : '',
    `<p style="margin:18px 0 0;font-size:12px;color:#666">${e(footer)}</p>`,
    '</div></body></html>',
  ].filter(Boolean).join('\n');

  const file = checkpointFile(m);
  return { subject: `[ernstfall] ${head}`, text, html, ...(file && { attachments: [file] }) };
}

export const WEBHOOK_SCHEMA = 'ernstfall.notification/v1';

/** The `json` webhook body: stable field names, times ISO 8601 UTC, absent fields left out. */
export interface WebhookPayload {
  schema: typeof WEBHOOK_SCHEMA;
  id: string;
  event: NotifyEvent;
  occurredAt: string;
  tenant: { slug: string; name: string };
  plan?: NotificationMessage['plan'];
  status?: NotificationMessage['status'];
  dueAt?: string | null;
  overdueSince?: string | null;
  run?: NotificationMessage['run'];
  alert?: NotificationMessage['alert'];
  digest?: NotificationMessage['digest'];
  checkpoint?: NotificationMessage['checkpoint'];
  links: NotificationMessage['links'];
}

export function webhookPayload(m: Msg): WebhookPayload {
  const p: WebhookPayload = {
    schema: WEBHOOK_SCHEMA, id: m.id, event: m.event, occurredAt: m.occurredAt, tenant: { slug: m.tenant.slug, name: m.tenant.name },
    plan: m.plan, status: m.status, dueAt: m.dueAt, overdueSince: m.overdueSince, run: m.run, alert: m.alert, digest: m.digest, checkpoint: m.checkpoint, links: m.links,
  };
  return JSON.parse(JSON.stringify(p)) as WebhookPayload; // drops undefined (also nested), keeps null
}

/** Adaptive Card text is Markdown: keep user input from becoming a link (`[x](url)`). */
const plain = (s: string) => s.replace(/\]\(/g, ']\u200b(');

/** Teams renders cards of up to about 28 KB; longer lists are cut with a count of the rest. */
const CARD_ITEMS = 30;

/** Body for a Microsoft Teams Workflows webhook ("Post to a channel when a webhook request is received"). */
export function teamsCard(m: Msg, lang: Lang): Record<string, unknown> {
  const t = texts(lang);
  const v = vars(m, lang);
  const text = (s: string, extra: Record<string, unknown> = {}) => ({ type: 'TextBlock', text: plain(s), wrap: true, ...extra });
  const findings = m.run?.findings ?? [];
  const rows = digestRows(m, lang);
  const body: Record<string, unknown>[] = [
    text(headline(m, lang), { weight: 'bolder', size: 'medium', color: COLOR[m.event] }),
    text(fill(t.lead[m.event], v)),
    { type: 'FactSet', facts: facts(m, lang).map(([l, val]) => ({ title: l, value: plain(oneLine(val, 300)) })) },
  ];
  if (findings.length) {
    body.push(text(t.findings, { weight: 'bolder', spacing: 'medium' }));
    for (const f of findings.slice(0, CARD_ITEMS)) body.push(text(`${f.code}: ${oneLine(f.message, 500)}`, { spacing: 'small' }));
    if (findings.length > CARD_ITEMS) body.push(text(fill(t.more, { n: findings.length - CARD_ITEMS }), { isSubtle: true }));
  }
  if (m.digest) {
    body.push(text(t.overview, { weight: 'bolder', spacing: 'medium' }));
    if (!rows.length) body.push(text(t.noPlans));
    else body.push({ type: 'FactSet', facts: rows.slice(0, CARD_ITEMS).map((r) => ({
      title: plain(oneLine(r.title, 80)),
      value: `${r.status} · ${t.nextDue}: ${r.nextDue} · ${t.lastVerdict}: ${r.lastVerdict}${r.paused === t.yes ? ` · ${t.paused}` : ''}`,
    })) });
    if (rows.length > CARD_ITEMS) body.push(text(fill(t.more, { n: rows.length - CARD_ITEMS }), { isSubtle: true }));
  }
  body.push(text(`${t.whatNow} ${t.next[m.event]}`, { spacing: 'medium' }));
  const actions = links(m, lang).map((l) => ({ type: 'Action.OpenUrl', title: l.label, url: l.url }));
  return {
    type: 'message',
    attachments: [{
      contentType: 'application/vnd.microsoft.card.adaptive',
      contentUrl: null,
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        msteams: { width: 'Full' },
        body,
        ...(actions.length && { actions }),
      },
    }],
  };
}
