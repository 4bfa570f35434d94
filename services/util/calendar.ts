import { parseDuration } from './duration.js';

// One formatter per zone: creating one per call is slow and its native memory piles up faster than GC frees it
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Wall-clock parts of an instant in a time zone (one cached formatter per zone). */
export function wallClock(date: Date, timeZone: string) {
  const parts = formatter(timeZone).formatToParts(date);
  const get = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute'), second: get('second') };
}

function offsetMs(date: Date, timeZone: string): number {
  const w = wallClock(date, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(date.getTime() / 1000) * 1000;
}

/**
 * The instant at which a wall-clock time occurs in the zone. A time skipped by
 * spring-forward resolves to the moment after the gap; a repeated autumn time
 * to its first occurrence.
 */
export function zonedToUtc(y: number, mo: number, d: number, h: number, mi: number, s: number, timeZone: string): Date {
  const naive = Date.UTC(y, mo - 1, d, h, mi, s);
  // the zone's offsets a day before and after cover both sides of any transition
  const offsets = [...new Set([offsetMs(new Date(naive - 86_400_000), timeZone), offsetMs(new Date(naive + 86_400_000), timeZone), offsetMs(new Date(naive), timeZone)])];
  const candidates = offsets.map((o) => naive - o).sort((a, b) => a - b);
  for (const c of candidates) {
    const w = wallClock(new Date(c), timeZone);
    if (Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) === naive) return new Date(c);
  }
  // in a spring-forward gap: shifted forward by the length of the gap
  return new Date(candidates[candidates.length - 1]!);
}

/**
 * Adds a duration to an instant. Calendar parts (years, months, weeks, days)
 * are added to the wall clock in the plan's time zone, so "P1D" from 02:00 is
 * 02:00 the next day also across a daylight-saving change; time parts are
 * added as elapsed time.
 */
export function addDuration(date: Date, duration: string, timeZone: string): Date {
  const d = parseDuration(duration);
  if (!d.iso) return new Date(date.getTime() + d.seconds * 1000);
  const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(.*))?$/.exec(d.iso);
  if (!m) return new Date(date.getTime() + d.seconds * 1000);
  const [, y = '0', mo = '0', w = '0', dd = '0', time] = m;
  const timeSeconds = time ? parseDuration(`PT${time}`).seconds : 0;
  // no calendar part (PT6H): purely elapsed; going through the wall clock would move an instant in the
  // repeated autumn hour to its first occurrence
  if (Number(y) + Number(mo) + Number(w) + Number(dd) === 0) return new Date(date.getTime() + timeSeconds * 1000);
  const wc = wallClock(date, timeZone);
  const targetMonth = wc.month - 1 + Number(mo) + Number(y) * 12;
  const year = wc.year + Math.floor(targetMonth / 12);
  const month = (targetMonth % 12) + 1;
  // 31 January + 1 month is the last day of February, not 3 March
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const day = Math.min(wc.day, lastDay) + Number(w) * 7 + Number(dd);
  const base = new Date(Date.UTC(year, month - 1, day));
  const at = zonedToUtc(base.getUTCFullYear(), base.getUTCMonth() + 1, base.getUTCDate(), wc.hour, wc.minute, wc.second, timeZone);
  return new Date(at.getTime() + timeSeconds * 1000 + (date.getTime() % 1000));
}
