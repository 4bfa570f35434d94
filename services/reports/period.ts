import { wallClock, zonedToUtc } from '../util/calendar.js';
import { REPORT_TIME_ZONE } from './i18n.js';

/**
 * A report period given as calendar dates (`from` and `to` inclusive) covers
 * the first day's local midnight up to the midnight after the last day, in
 * the reports' zone (Europe/Berlin): 2026-01-01..2026-12-31 is
 * 2025-12-31T23:00Z up to 2026-12-31T23:00Z, 2026-07-01..2026-07-31 is
 * 2026-06-30T22:00Z up to 2026-07-31T22:00Z (summer time). `to` in the
 * result is exclusive; runs are selected with `from <= t < to`.
 */
export interface ReportPeriod {
  /** first instant of the period (local midnight of `firstDay`) */
  from: Date;
  /** first instant after the period (local midnight after `lastDay`) */
  to: Date;
  /** YYYY-MM-DD, the first day (inclusive) */
  firstDay: string;
  /** YYYY-MM-DD, the last day (inclusive) */
  lastDay: string;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parts(day: string): [number, number, number] {
  const m = DATE.exec(day);
  if (!m) throw new RangeError(`not a date (YYYY-MM-DD): ${day}`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw new RangeError(`no such day: ${day}`);
  return [y, mo, d];
}

/** The instant of local midnight at the start of `day` in the zone. */
export function localMidnight(day: string, timeZone = REPORT_TIME_ZONE): Date {
  const [y, mo, d] = parts(day);
  return zonedToUtc(y, mo, d, 0, 0, 0, timeZone);
}

/** The calendar day after `day` (YYYY-MM-DD). */
export function nextDay(day: string): string {
  const [y, mo, d] = parts(day);
  return new Date(Date.UTC(y, mo - 1, d + 1)).toISOString().slice(0, 10);
}

/** The local calendar date (YYYY-MM-DD) of an instant in the zone. */
export function localDay(at: Date, timeZone = REPORT_TIME_ZONE): string {
  const w = wallClock(at, timeZone);
  return `${String(w.year).padStart(4, '0')}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
}

/** The period from `firstDay` 00:00 to `lastDay` 24:00 local time (both days inclusive). */
export function reportPeriod(firstDay: string, lastDay: string, timeZone = REPORT_TIME_ZONE): ReportPeriod {
  return { from: localMidnight(firstDay, timeZone), to: localMidnight(nextDay(lastDay), timeZone), firstDay, lastDay };
}

/**
 * The calendar days a period of instants covers: the local date of `from`
 * and of the last instant before `to`. For a period made by reportPeriod
 * these are its days again.
 */
export function periodDays(period: { from: string | Date; to: string | Date }, timeZone = REPORT_TIME_ZONE): { firstDay: string; lastDay: string } {
  const from = new Date(period.from);
  const to = new Date(period.to);
  return { firstDay: localDay(from, timeZone), lastDay: localDay(new Date(Math.max(from.getTime(), to.getTime() - 1)), timeZone) };
}
