import { describe, expect, it } from 'vitest';
import { escapeHtml, formatInstant, renderMail, teamsCard, webhookPayload, WEBHOOK_SCHEMA } from '../../services/notify/render.js';
import type { Lang, NotificationMessage, NotifyEvent } from '../../services/notify/types.js';

type Msg = NotificationMessage & { id: string };
const TITLE = 'Einwohnermeldewesen – Straßenverzeichnis';
const EVENTS: NotifyEvent[] = ['due-soon', 'overdue', 'escalation', 'failure', 'recovered', 'digest', 'test', 'checkpoint'];

/** A message per event with what the sender fills in for it; `over` replaces fields. */
function msg(event: NotifyEvent, over: Partial<Msg> = {}): Msg {
  const base: Msg = {
    id: 'ntf-0001', event, occurredAt: '2026-11-28T01:00:00Z', tenant: { slug: 'musterstadt', name: 'Stadt Musterstadt' },
    links: { plan: 'https://ernstfall.musterstadt.de/plans/ewo', alert: 'https://ernstfall.musterstadt.de/alerts/a-1' }, timezone: 'Europe/Berlin',
  };
  const plan = { id: 'ewo-strassen', title: TITLE, system: 'EWO-Server (Rathaus)' };
  const alert = { id: 'a-1', kind: 'overdue' as const, openedAt: '2026-11-27T01:00:00Z', level: 1 };
  const byEvent: Record<NotifyEvent, Partial<Msg>> = {
    'due-soon': { plan, status: 'due-soon', dueAt: '2026-12-01T01:00:00Z' },
    overdue: { plan, status: 'overdue', dueAt: '2026-11-26T01:00:00Z', overdueSince: '2026-11-28T01:00:00Z', alert },
    escalation: { plan, status: 'overdue', dueAt: '2026-11-26T01:00:00Z', overdueSince: '2026-11-27T01:00:00Z', alert: { ...alert, level: 2 } },
    failure: {
      plan, status: 'failing',
      run: { id: 'run-77', verdict: 'failed', finishedAt: '2026-11-28T01:00:00Z', findings: [
        { code: 'ARCHIVE_TRUNCATED', severity: 'failure', message: 'Das Archiv endet mitten in einem Datenblock.' },
        { code: 'RTO_EXCEEDED', severity: 'warning', message: 'Wiederherstellung dauerte 47 min, Ziel 30 min.' },
      ] },
      links: { plan: 'https://ernstfall.musterstadt.de/plans/ewo', run: 'https://ernstfall.musterstadt.de/runs/run-77' },
    },
    recovered: { plan, status: 'ok', run: { id: 'run-78', verdict: 'passed', finishedAt: '2026-11-28T01:00:00Z', findings: [] } },
    digest: {
      digest: { date: '2026-11-28', items: [
        { planId: 'ewo-strassen', title: TITLE, status: 'overdue', nextDueAt: '2026-11-26T01:00:00Z', lastVerdict: 'passed', paused: false },
        { planId: 'kita', title: 'Kita-Verwaltung', status: 'ok', nextDueAt: '2027-02-01T01:00:00Z', lastVerdict: 'passed', paused: false },
        { planId: 'alt-gis', title: 'Altes GIS', status: 'never-tested', nextDueAt: null, lastVerdict: null, paused: true },
      ] },
      links: {},
    },
    test: { links: {} },
    checkpoint: {
      checkpoint: { seq: 4711, hash: 'ab'.repeat(32), keyId: 'key-2026', canonical: '{"at":"2026-11-28T06:00:00.000Z","hash":"' + 'ab'.repeat(32) + '","seq":4711,"tenantId":"t","type":"checkpoint","v":1}', signature: 'c2ln' },
      links: {},
    },
  };
  return { ...base, ...byEvent[event], ...over };
}

const SUBJECTS: Record<Lang, Record<NotifyEvent, string>> = {
  de: {
    'due-soon': `[ernstfall] Bald fällig: ${TITLE}`, overdue: `[ernstfall] Überfällig: ${TITLE}`, escalation: `[ernstfall] Eskalation (Stufe 2): ${TITLE}`,
    failure: `[ernstfall] Fehlgeschlagen: ${TITLE}`, recovered: `[ernstfall] Entwarnung: ${TITLE}`, digest: '[ernstfall] Tagesübersicht 28.11.2026', test: '[ernstfall] Testnachricht',
    checkpoint: '[ernstfall] Prüfpunkt der Nachweiskette: Stadt Musterstadt, Eintrag 4711',
  },
  en: {
    'due-soon': `[ernstfall] Due soon: ${TITLE}`, overdue: `[ernstfall] Overdue: ${TITLE}`, escalation: `[ernstfall] Escalation (level 2): ${TITLE}`,
    failure: `[ernstfall] Failed: ${TITLE}`, recovered: `[ernstfall] All clear: ${TITLE}`, digest: '[ernstfall] Daily summary 28 Nov 2026', test: '[ernstfall] Test message',
    checkpoint: '[ernstfall] Evidence chain checkpoint: Stadt Musterstadt, record 4711',
  },
};

/** What a reader must find in both parts, per event and language. */
const MUST: Record<Lang, Record<NotifyEvent, string[]>> = {
  de: {
    'due-soon': ['bald fällig', 'Fällig am', '01.12.2026, 02:00 MEZ', 'vor dem Fälligkeitstermin'],
    overdue: ['überfällig', 'Überfällig seit', '28.11.2026, 02:00 MEZ', 'bestätigen Sie den Alarm'],
    escalation: ['von niemandem bestätigt', 'Eskalationsstufe', '2', 'Alarm offen seit', '27.11.2026, 02:00 MEZ'],
    failure: ['fehlgeschlagen', 'nicht bestanden', 'run-77', 'ARCHIVE_TRUNCATED', 'Das Archiv endet mitten in einem Datenblock.', 'RTO_EXCEEDED', 'Nachtest'],
    recovered: ['wieder bestanden', 'aufgehoben', 'bestanden', 'nichts weiter zu tun'],
    digest: ['Pläne: 3', 'Handlungsbedarf: 1', 'Kita-Verwaltung', 'überfällig', 'nie getestet', '26.11.2026, 02:00 MEZ', '01.02.2027, 02:00 MEZ', 'Pausiert', 'ja'],
    test: ['Testnachricht', 'funktioniert dieser Kanal'],
    checkpoint: ['signierte Stand', '4711', 'ab'.repeat(32), 'key-2026', 'außerhalb des Servers', '--checkpoint'],
  },
  en: {
    'due-soon': ['due soon', 'Due', '1 Dec 2026, 02:00 CET', 'before the due date'],
    overdue: ['overdue', 'Overdue since', '28 Nov 2026, 02:00 CET', 'acknowledge the alert'],
    escalation: ['Nobody acknowledged', 'escalation level 2', 'Alert open since', '27 Nov 2026, 02:00 CET'],
    failure: ['failed', 'run-77', 'ARCHIVE_TRUNCATED', 'Das Archiv endet mitten in einem Datenblock.', 'RTO_EXCEEDED', 're-test'],
    recovered: ['passed again', 'resolved', 'Nothing more to do'],
    digest: ['Plans: 3', 'needing attention: 1', 'Kita-Verwaltung', 'overdue', 'never tested', '26 Nov 2026, 02:00 CET', '1 Feb 2027, 02:00 CET', 'Paused', 'yes'],
    test: ['test message', 'this channel works'],
    checkpoint: ['signed state', '4711', 'ab'.repeat(32), 'key-2026', 'outside the server', '--checkpoint'],
  },
};

/** The visible text of the HTML part (tags out, entities decoded). */
const visible = (html: string) =>
  html.replace(/<[^>]+>/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&middot;/g, '·').replace(/&amp;/g, '&');

describe('renderMail', () => {
  for (const lang of ['de', 'en'] as const) {
    for (const event of EVENTS) {
      it(`${lang} ${event}: subject, and text and HTML carrying the same information`, () => {
        const m = msg(event);
        const r = renderMail(m, lang);
        expect(r.subject).toBe(SUBJECTS[lang][event]);
        const html = visible(r.html);
        for (const s of [...MUST[lang][event], 'Stadt Musterstadt', 'ntf-0001']) {
          expect(r.text, `text has ${s}`).toContain(s);
          expect(html, `html has ${s}`).toContain(s);
        }
        if (m.plan) for (const s of [TITLE, 'ewo-strassen', 'EWO-Server (Rathaus)']) {
          expect(r.text).toContain(s);
          expect(html).toContain(s);
        }
        for (const url of Object.values(m.links)) {
          expect(r.text).toContain(url);
          expect(r.html).toContain(`href="${url}"`);
        }
        expect(r.html).toContain(`<html lang="${lang}">`);
        // the other language does not leak in
        expect(r.text).not.toContain(lang === 'de' ? 'What to do' : 'Was ist zu tun');
      });
    }
  }

  it('tells events apart: no alert wording in a due-soon mail, no findings section without findings', () => {
    const soon = renderMail(msg('due-soon'), 'de');
    expect(soon.text).not.toContain('Alarm offen seit');
    expect(soon.text).not.toContain('Feststellungen');
    expect(renderMail(msg('failure'), 'de').text).toContain('Feststellungen:');
    expect(renderMail(msg('recovered'), 'de').text).not.toContain('Feststellungen');
  });

  it('escapes every interpolated value in HTML; the text part keeps it as written', () => {
    const evil = '<script>alert(1)</script> & "x"';
    const m = msg('failure', {
      tenant: { slug: 'm', name: `<b>${evil}</b>` },
      plan: { id: 'p<1>', title: evil, system: `<img src=x onerror=alert(2)>` },
      run: { id: 'r"1', verdict: 'failed', finishedAt: null, findings: [{ code: '<CODE>', severity: 'failure', message: `<iframe src="https://evil.example"></iframe>` }] },
      links: { plan: 'https://ernstfall.example/plans/p?a=1&b="2"', run: 'javascript:alert(3)' },
    });
    const r = renderMail(m, 'de');
    for (const bad of ['<script', '<img', '<iframe', '<b>', 'javascript:']) expect(r.html).not.toContain(bad);
    // user text may say "src=", but never inside a tag
    expect(r.html).not.toMatch(/<[^>]*\s(src|on\w+)=/i);
    expect(r.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;');
    expect(r.html).toContain('href="https://ernstfall.example/plans/p?a=1&amp;b=&quot;2&quot;"');
    expect(visible(r.html)).toContain(evil);
    expect(r.text).toContain(evil);
    expect(r.subject).toBe(`[ernstfall] Fehlgeschlagen: ${evil}`);
    // healthy: an ordinary title comes through unchanged and the only tags are the template's own
    const ok = renderMail(msg('failure'), 'de').html;
    expect(ok).toContain(`<h1 style="margin:0 0 12px;font-size:18px;color:#b00020">Fehlgeschlagen: ${TITLE}</h1>`);
    const tags = new Set([...ok.matchAll(/<\/?([a-zA-Z0-9!]+)/g)].map((x) => x[1]!.toLowerCase()));
    expect([...tags].sort()).toEqual(['!doctype', 'a', 'body', 'code', 'div', 'h1', 'h2', 'head', 'html', 'li', 'meta', 'p', 'strong', 'table', 'td', 'th', 'title', 'tr', 'ul']);
  });

  it('keeps the subject one line and bounded whatever the title holds', () => {
    const r = renderMail(msg('overdue', { plan: { id: 'p', title: `EWO\r\nBcc: alle@musterstadt.de\n${'x'.repeat(300)}` } }), 'de');
    expect(r.subject).not.toMatch(/[\r\n]/);
    expect(r.subject.startsWith('[ernstfall] Überfällig: EWO Bcc: alle@musterstadt.de x')).toBe(true);
    expect(r.subject.length).toBeLessThan(150);
  });

  it('shows times in the message time zone on both sides of the autumn DST change', () => {
    const before = msg('due-soon', { dueAt: '2026-10-25T00:30:00Z' });
    const after = msg('due-soon', { dueAt: '2026-10-25T01:30:00Z' });
    expect(renderMail(before, 'de').text).toContain('25.10.2026, 02:30 MESZ');
    expect(renderMail(after, 'de').text).toContain('25.10.2026, 02:30 MEZ');
    expect(renderMail(before, 'en').text).toContain('25 Oct 2026, 02:30 CEST');
    expect(renderMail(after, 'en').text).toContain('25 Oct 2026, 02:30 CET');
    expect(renderMail(after, 'de').html).toContain('25.10.2026, 02:30 MEZ');
    // spring: 01:59 MEZ is followed by 03:00 MESZ
    expect(formatInstant('2026-03-29T00:59:00Z', 'Europe/Berlin', 'de')).toBe('29.03.2026, 01:59 MEZ');
    expect(formatInstant('2026-03-29T01:00:00Z', 'Europe/Berlin', 'de')).toBe('29.03.2026, 03:00 MESZ');
    // the zone is the message's, not a fixed Berlin
    expect(renderMail(msg('due-soon', { dueAt: '2026-10-25T01:30:00Z', timezone: 'America/New_York' }), 'en').text).toContain('24 Oct 2026, 21:30 GMT-4');
    expect(formatInstant(null, 'Europe/Berlin', 'de')).toBe('—');
  });
});

describe('teamsCard', () => {
  const content = (card: Record<string, unknown>) => (card as any).attachments[0].content;

  it('is a Workflows message with one Adaptive Card 1.4: title, facts, link buttons', () => {
    const card = teamsCard(msg('failure'), 'de') as any;
    expect(card.type).toBe('message');
    expect(card.attachments).toHaveLength(1);
    expect(card.attachments[0]).toMatchObject({ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null });
    const c = card.attachments[0].content;
    expect(c).toMatchObject({ $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4' });
    expect(c.body[0]).toMatchObject({ type: 'TextBlock', text: `Fehlgeschlagen: ${TITLE}`, weight: 'bolder', color: 'attention', wrap: true });
    const facts = c.body.find((b: any) => b.type === 'FactSet').facts;
    expect(facts).toEqual(expect.arrayContaining([{ title: 'Plan', value: TITLE }, { title: 'Plan-ID', value: 'ewo-strassen' }, { title: 'Ergebnis', value: 'nicht bestanden' }]));
    expect(JSON.stringify(c.body)).toContain('ARCHIVE_TRUNCATED: Das Archiv endet mitten in einem Datenblock.');
    expect(c.actions).toEqual([
      { type: 'Action.OpenUrl', title: 'Plan öffnen', url: 'https://ernstfall.musterstadt.de/plans/ewo' },
      { type: 'Action.OpenUrl', title: 'Lauf öffnen', url: 'https://ernstfall.musterstadt.de/runs/run-77' },
    ]);
    // no retired Office 365 connector card
    expect(JSON.stringify(card)).not.toMatch(/MessageCard|@type|themeColor/);
  });

  it('colours per event and speaks English on request', () => {
    const color = (e: NotifyEvent) => content(teamsCard(msg(e), 'en')).body[0].color;
    expect(['overdue', 'escalation', 'failure'].map((e) => color(e as NotifyEvent))).toEqual(['attention', 'attention', 'attention']);
    expect(color('due-soon')).toBe('warning');
    expect(color('recovered')).toBe('good');
    expect(content(teamsCard(msg('escalation'), 'en')).body[0].text).toBe(`Escalation (level 2): ${TITLE}`);
  });

  it('leaves actions out without links, neutralises Markdown links in user input, and bounds a long digest', () => {
    expect(content(teamsCard(msg('test'), 'de')).actions).toBeUndefined();
    const c = content(teamsCard(msg('overdue', { plan: { id: 'p', title: '[hier klicken](https://evil.example)' } }), 'de'));
    expect(JSON.stringify(c.body)).not.toContain('](https://evil.example)');
    const items = Array.from({ length: 400 }, (_, i) => ({ planId: `plan-${i}`, title: `Fachverfahren Nummer ${i} mit langem Namen`, status: 'ok' as const, nextDueAt: '2027-01-01T00:00:00Z', lastVerdict: 'passed' as const, paused: false }));
    const big = JSON.stringify(teamsCard(msg('digest', { digest: { date: '2026-11-28', items } }), 'de'));
    expect(big.length).toBeLessThan(28_000);
    expect(big).toContain('… und 370 weitere');
  });
});

describe('webhookPayload', () => {
  it('is the versioned document with absent fields left out and nulls kept', () => {
    const p = webhookPayload(msg('failure'));
    expect(p.schema).toBe(WEBHOOK_SCHEMA);
    expect(WEBHOOK_SCHEMA).toBe('ernstfall.notification/v1');
    expect(Object.keys(p)).toEqual(['schema', 'id', 'event', 'occurredAt', 'tenant', 'plan', 'status', 'run', 'links']);
    expect(p).toMatchObject({ id: 'ntf-0001', event: 'failure', occurredAt: '2026-11-28T01:00:00Z', tenant: { slug: 'musterstadt', name: 'Stadt Musterstadt' }, status: 'failing' });
    expect(p.run?.findings[0]).toEqual({ code: 'ARCHIVE_TRUNCATED', severity: 'failure', message: 'Das Archiv endet mitten in einem Datenblock.' });

    const d = webhookPayload(msg('digest', { dueAt: null }));
    expect(Object.keys(d)).toEqual(['schema', 'id', 'event', 'occurredAt', 'tenant', 'dueAt', 'digest', 'links']);
    expect(d.dueAt).toBeNull();
    expect(d.digest?.items[2]).toEqual({ planId: 'alt-gis', title: 'Altes GIS', status: 'never-tested', nextDueAt: null, lastVerdict: null, paused: true });
    // machine-readable: no rendering, times stay ISO UTC
    expect(JSON.stringify(webhookPayload(msg('overdue')))).toContain('"overdueSince":"2026-11-28T01:00:00Z"');
    expect(JSON.stringify(webhookPayload(msg('overdue')))).not.toContain('MEZ');
  });
});

it('escapeHtml covers the five characters', () => {
  expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

describe('checkpoint mail', () => {
  it('attaches the checkpoint exactly as the verifier reads it, and nothing for other events', async () => {
    const { renderMail: render } = await import('../../services/notify/render.js');
    const m = msg('checkpoint');
    const mail = render(m, 'de');
    expect(mail.attachments).toHaveLength(1);
    expect(mail.attachments![0]!.filename).toBe('checkpoint-musterstadt-4711.json');
    expect(JSON.parse(mail.attachments![0]!.content)).toEqual({ canonical: m.checkpoint!.canonical, signature: 'c2ln', keyId: 'key-2026' });
    expect(render(msg('digest'), 'de').attachments).toBeUndefined();
  });
});
