import ical, {
  ICalCalendarMethod,
  ICalEventTransparency,
  type ICalTemporalInstantStub,
  type ICalTemporalPlainDateTimeStub,
  type ICalTemporalZonedDateTimeStub,
} from 'ical-generator';
import type { PlanStatus } from '../runs/plan-status.js';
import { zonedToUtc, wallClock } from '../util/calendar.js';

/** Every event of the feed is written in this zone, whatever the plan's own zone (the instant stays the same). */
export const CALENDAR_TZ = 'Europe/Berlin';
const SCHEDULED_MINUTES = 30;

export type FeedLang = 'de' | 'en';

export interface IcsPlan {
  id: string;
  title: string;
  status: PlanStatus;
  nextDueAt: Date | null;
  lastPassedAt: Date | null;
  /** The next slot of the plan's cron schedule; null without a schedule or while paused. */
  nextScheduledAt: Date | null;
  hasSchedule: boolean;
  paused: { at: Date; reason: string } | null;
  /** How it is tested: by ernstfall in a sandbox, by another tool, by people, or an exercise. */
  kind?: 'restore' | 'external' | 'manual' | 'exercise';
  /** Every scheduled slot and due date in the feed's horizon (default: the next of each only). */
  occurrences?: { at: Date; type: 'scheduled' | 'due'; projected?: boolean }[];
}

export interface IcsInput {
  tenantId: string;
  tenantName: string;
  lang: FeedLang;
  plans: IcsPlan[];
  now: Date;
  /** Base URL of the web interface; without it the events carry no link. */
  publicUrl?: string;
}

/*
 * VTIMEZONE for Europe/Berlin (EU rules since 1996: CEST from the last Sunday
 * of March 02:00, CET from the last Sunday of October 03:00). RFC 5545 wants
 * one for every TZID used; ical-generator only emits what a generator returns,
 * and a static block avoids a dependency for the one zone the feed uses.
 */
const BERLIN_VTIMEZONE = [
  'BEGIN:VTIMEZONE',
  'TZID:Europe/Berlin',
  'X-LIC-LOCATION:Europe/Berlin',
  'BEGIN:DAYLIGHT',
  'TZOFFSETFROM:+0100',
  'TZOFFSETTO:+0200',
  'TZNAME:CEST',
  'DTSTART:19700329T020000',
  'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU',
  'END:DAYLIGHT',
  'BEGIN:STANDARD',
  'TZOFFSETFROM:+0200',
  'TZOFFSETTO:+0100',
  'TZNAME:CET',
  'DTSTART:19701025T030000',
  'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU',
  'END:STANDARD',
  'END:VTIMEZONE',
].join('\r\n');


/*
 * ical-generator writes a native Date given with a TZID in the *process's*
 * local zone (getHours()), which is UTC in a container. It reads Temporal
 * ZonedDateTime-like objects by their fields instead (the stub types it
 * exports), so an instant is handed over as such an object with the wall
 * clock in the zone computed here. No Temporal polyfill needed.
 */
function zoned(at: Date, timeZoneId: string = CALENDAR_TZ): ICalTemporalZonedDateTimeStub {
  const w = wallClock(at, timeZoneId);
  const iso = at.toISOString();
  const instant: ICalTemporalInstantStub = {
    epochMilliseconds: at.getTime(),
    toJSON: () => iso,
    toString: () => iso,
    toZonedDateTimeISO: (tz) => zoned(at, tz),
  };
  const plainText = `${String(w.year).padStart(4, '0')}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}T${String(w.hour).padStart(2, '0')}:${String(w.minute).padStart(2, '0')}:${String(w.second).padStart(2, '0')}`;
  const plain: ICalTemporalPlainDateTimeStub = {
    ...w,
    toJSON: () => plainText,
    toString: () => plainText,
    toPlainDate: () => ({ year: w.year, month: w.month, day: w.day, toJSON: () => plainText.slice(0, 10), toString: () => plainText.slice(0, 10) }),
    toZonedDateTime: (tz) => zoned(zonedToUtc(w.year, w.month, w.day, w.hour, w.minute, w.second, tz), tz),
  };
  return {
    ...w,
    timeZoneId,
    toInstant: () => instant,
    toPlainDateTime: () => plain,
    withTimeZone: (tz) => zoned(at, tz),
    toJSON: () => `${plainText}[${timeZoneId}]`,
    toString: () => `${plainText}[${timeZoneId}]`,
  };
}

/** The calendar day (in the feed's zone) that contains the instant: its start and the start of the next day. */
function dayOf(at: Date): { start: ICalTemporalZonedDateTimeStub; end: ICalTemporalZonedDateTimeStub } {
  const w = wallClock(at, CALENDAR_TZ);
  return {
    start: zoned(zonedToUtc(w.year, w.month, w.day, 0, 0, 0, CALENDAR_TZ)),
    end: zoned(zonedToUtc(w.year, w.month, w.day + 1, 0, 0, 0, CALENDAR_TZ)),
  };
}

const TEXT = {
  de: {
    scheduled: 'Wiederherstellungstest', due: 'Fällig', overdue: 'ÜBERFÄLLIG',
    kindScheduled: { restore: 'Wiederherstellungstest', external: 'Test durch ein anderes Werkzeug', manual: 'Manueller Wiederherstellungstest', exercise: 'Übung' } as Record<string, string>,
    attend: 'Termin mit Beteiligten: der Test oder die Übung wird von Menschen durchgeführt und in ernstfall festgehalten.',
    reported: 'Ein anderes Werkzeug testet und meldet sein Ergebnis an ernstfall.',
    projected: 'Hochgerechnet: gilt, wenn der vorige Test an seiner Frist bestanden wird.',
    status: { failing: 'fehlgeschlagen', overdue: 'überfällig', 'never-tested': 'noch nie getestet', 'due-soon': 'bald fällig', ok: 'in Ordnung' } as Record<PlanStatus, string>,
    plan: 'Plan', statusLabel: 'Status', nextTest: 'Nächster geplanter Test', dueBy: 'Fällig bis', lastPassed: 'Zuletzt bestanden',
    neverPassed: 'Noch nie bestanden.', noSchedule: 'Kein Zeitplan: der Test wird von Hand gestartet.',
    paused: 'Zeitplan pausiert seit', reason: 'Grund',
    automatic: 'Der Test läuft automatisch in einer isolierten Umgebung; eine Teilnahme ist nicht nötig.',
    overdueText: 'Die Frist für einen bestandenen Wiederherstellungstest ist abgelaufen.',
    open: 'Im ernstfall öffnen', calDesc: 'Wiederherstellungstests und Fristen aus ernstfall',
    locale: 'de-DE',
  },
  en: {
    scheduled: 'Restore test', due: 'Due', overdue: 'OVERDUE',
    kindScheduled: { restore: 'Restore test', external: 'Test by another tool', manual: 'Manual restore test', exercise: 'Exercise' } as Record<string, string>,
    attend: 'With people: the test or exercise is carried out by people and recorded in ernstfall.',
    reported: 'Another tool tests and reports its result to ernstfall.',
    projected: 'Projected: holds if the previous test passes on its due date.',
    status: { failing: 'failing', overdue: 'overdue', 'never-tested': 'never tested', 'due-soon': 'due soon', ok: 'ok' } as Record<PlanStatus, string>,
    plan: 'Plan', statusLabel: 'Status', nextTest: 'Next scheduled test', dueBy: 'Due by', lastPassed: 'Last passed',
    neverPassed: 'Never passed.', noSchedule: 'No schedule: the test is started by hand.',
    paused: 'Schedule paused since', reason: 'Reason',
    automatic: 'The test runs automatically in an isolated sandbox; nobody needs to attend.',
    overdueText: 'The deadline for a passed restore test has expired.',
    open: 'Open in ernstfall', calDesc: 'Restore tests and deadlines from ernstfall',
    locale: 'en-GB',
  },
};

const dateFormatters = new Map<FeedLang, Intl.DateTimeFormat>();
function formatTime(at: Date, lang: FeedLang): string {
  let f = dateFormatters.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(TEXT[lang].locale, {
      timeZone: CALENDAR_TZ, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
    });
    dateFormatters.set(lang, f);
  }
  return f.format(at);
}

/**
 * Stable per occurrence (plan, kind and the occurrence's time to the minute, UTC; due dates too, as a
 * cadence shorter than a day has several a day): a calendar
 * client updates an event instead of adding another one, and every slot in the
 * horizon is an event of its own.
 */
export const eventUid = (kind: 'scheduled' | 'due' | 'overdue', planId: string, tenantId: string, at?: Date) =>
  `${kind}-${planId}${at ? `-${at.toISOString().replace(/[-:]/g, '').slice(0, 13)}` : ''}-${tenantId}@ernstfall`;

function describe(p: IcsPlan, lang: FeedLang, link: string | undefined, lead?: string): string {
  const t = TEXT[lang];
  const lines = lead ? [lead, ''] : [];
  lines.push(`${t.plan}: ${p.title} (${p.id})`, `${t.statusLabel}: ${t.status[p.status]}`);
  if (p.paused) {
    lines.push(`${t.paused} ${formatTime(p.paused.at, lang)}${p.paused.reason ? ` (${t.reason}: ${p.paused.reason})` : ''}`);
  } else if (p.nextScheduledAt) {
    lines.push(`${t.nextTest}: ${formatTime(p.nextScheduledAt, lang)}`);
  } else if (!p.hasSchedule) {
    lines.push(t.noSchedule);
  }
  if (p.nextDueAt) lines.push(`${t.dueBy}: ${formatTime(p.nextDueAt, lang)}`);
  lines.push(p.lastPassedAt ? `${t.lastPassed}: ${formatTime(p.lastPassedAt, lang)}` : t.neverPassed);
  if (link) lines.push('', `${t.open}: ${link}`);
  return lines.join('\n');
}

/**
 * The tenant's iCalendar feed: per plan every scheduled slot in the horizon (a
 * 30-minute event; an automatic test, a manual test or an exercise), every due
 * date of its cadence in the horizon (all-day; later ones projected), and for
 * an overdue plan an all-day event today. Only titles, ids, dates and status:
 * never plan definitions (canary values), paths or tokens. Events are marked
 * transparent: an automatic test does not block anyone's time.
 */
export function buildIcs(input: IcsInput): string {
  const t = TEXT[input.lang];
  const base = input.publicUrl?.replace(/\/+$/, '');
  const cal = ical({
    name: `ernstfall – ${input.tenantName}`,
    description: t.calDesc,
    prodId: { company: 'ernstfall', product: 'ernstfall', language: input.lang.toUpperCase() },
    // no calendar-wide zone name (TIMEZONE-ID, X-WR-TIMEZONE): ical-generator would then write DTSTAMP without
    // "Z"; every event carries its TZID and the VTIMEZONE comes from the generator, there are no floating times
    timezone: { name: null, generator: (tz) => (tz === CALENDAR_TZ ? BERLIN_VTIMEZONE : null) },
    method: ICalCalendarMethod.PUBLISH,
    ttl: 3600,
  });
  const stamp = input.now;
  for (const p of [...input.plans].sort((a, b) => a.id.localeCompare(b.id))) {
    const link = base ? `${base}/plans/${encodeURIComponent(p.id)}` : undefined;
    const common = { timezone: CALENDAR_TZ, stamp, transparency: ICalEventTransparency.TRANSPARENT, ...(link ? { url: link } : {}) };
    const kind = p.kind ?? 'restore';
    const lead = kind === 'restore' ? t.automatic : kind === 'external' ? t.reported : t.attend;
    const slots = p.occurrences ? p.occurrences.filter((o) => o.type === 'scheduled').map((o) => o.at) : p.nextScheduledAt ? [p.nextScheduledAt] : [];
    if (!p.paused) {
      for (const at of slots) {
        cal.createEvent({
          ...common,
          id: eventUid('scheduled', p.id, input.tenantId, at),
          start: zoned(at),
          end: zoned(new Date(at.getTime() + SCHEDULED_MINUTES * 60_000)),
          summary: `${t.kindScheduled[kind] ?? t.scheduled}: ${p.title}`,
          description: describe(p, input.lang, link, lead),
        });
      }
    }
    const dues = p.occurrences ? p.occurrences.filter((o) => o.type === 'due') : p.nextDueAt ? [{ at: p.nextDueAt, projected: false }] : [];
    for (const d of dues) {
      const day = dayOf(d.at);
      cal.createEvent({
        ...common,
        id: eventUid('due', p.id, input.tenantId, d.at),
        allDay: true,
        start: day.start,
        end: day.end,
        summary: `${t.due}: ${p.title}`,
        description: describe(p, input.lang, link, d.projected ? t.projected : undefined),
      });
    }
    if (p.status === 'overdue') {
      const day = dayOf(input.now);
      cal.createEvent({
        ...common,
        id: eventUid('overdue', p.id, input.tenantId),
        allDay: true,
        start: day.start,
        end: day.end,
        summary: `${t.overdue}: ${p.title}`,
        description: describe(p, input.lang, link, t.overdueText),
      });
    }
  }
  return cal.toString();
}
