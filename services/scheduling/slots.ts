import { CronExpressionParser } from 'cron-parser';
import type { RestorePlan } from '../plans/plan.types.js';
import { zonedToUtc, wallClock } from '../util/calendar.js';

/*
 * A schedule is a set of local wall-clock times in the plan's zone; each one
 * runs once. cron-parser (5.10) cannot be trusted with a zone on daylight-saving
 * days: iterating forward it puts "30 2 * * *" of 2026-03-29 (Europe/Berlin) at
 * 03:30 CEST only when it starts before the gap and skips the day when it starts
 * inside or after it; iterating backwards it skips that day always, and yields
 * the repeated autumn 02:30 twice. So we let cron-parser match fields on the
 * zone-free wall-clock timeline (the wall clock written as UTC, no DST there)
 * and turn each wall time into an instant with calendar.ts: a skipped time is
 * read with the offset before the gap (02:30 -> 03:30 CEST, as RFC 5545 and
 * addDuration do), a repeated one is its first occurrence (02:30 CEST only).
 */

/** Larger than any UTC offset change (DST gaps are 1 h, a few historic ones 2 h). */
const SHIFT_MS = 3 * 3_600_000;

/** The wall clock of an instant in the zone, as a Date on the UTC timeline. */
function toWall(date: Date, timeZone: string): Date {
  const w = wallClock(date, timeZone);
  return new Date(Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) + (date.getTime() % 1000));
}

/** The instant at which a wall-clock time (as above) happens in the zone. */
function fromWall(wall: Date, timeZone: string): Date {
  return zonedToUtc(wall.getUTCFullYear(), wall.getUTCMonth() + 1, wall.getUTCDate(), wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds(), timeZone);
}

function wallIterator(schedule: string, currentDate: Date) {
  return CronExpressionParser.parse(schedule, { tz: 'UTC', currentDate });
}

/**
 * The slot the scheduler should run now: the newest slot s with
 * lastSlot < s <= now and s >= createdAt, or null. After downtime the missed
 * slots collapse into this one (only the newest runs).
 */
export function dueSlot(schedule: string, timeZone: string, lastSlot: Date | null, createdAt: Date, now: Date): Date | null {
  const floor = lastSlot && lastSlot.getTime() >= createdAt.getTime() ? lastSlot.getTime() + 1 : createdAt.getTime();
  if (now.getTime() < floor) return null;
  // walk the wall timeline backwards from a little after now: a mapped instant may lie up to SHIFT_MS either side of its wall time
  const it = wallIterator(schedule, new Date(toWall(now, timeZone).getTime() + SHIFT_MS));
  const floorWall = toWall(new Date(floor), timeZone).getTime() - SHIFT_MS;
  let best: number | null = null;
  let bestWall = 0;
  for (;;) {
    let wall: Date;
    try {
      wall = it.prev().toDate();
    } catch {
      break; // no earlier time matches (cron-parser gives up far in the past)
    }
    if (wall.getTime() < floorWall) break;
    if (best !== null && wall.getTime() < bestWall - 2 * SHIFT_MS) break;
    const at = fromWall(wall, timeZone).getTime();
    if (at <= now.getTime() && at >= floor && (best === null || at > best)) {
      best = at;
      bestWall = wall.getTime();
    }
  }
  return best === null ? null : new Date(best);
}

/** The first slot strictly after `after`. */
export function nextSlot(schedule: string, timeZone: string, after: Date): Date | null {
  const it = wallIterator(schedule, new Date(toWall(after, timeZone).getTime() - SHIFT_MS));
  let best: number | null = null;
  let bestWall = 0;
  for (;;) {
    let wall: Date;
    try {
      wall = it.next().toDate();
    } catch {
      break;
    }
    if (best !== null && wall.getTime() > bestWall + 2 * SHIFT_MS) break;
    const at = fromWall(wall, timeZone).getTime();
    if (at > after.getTime() && (best === null || at < best)) {
      best = at;
      bestWall = wall.getTime();
    }
  }
  return best === null ? null : new Date(best);
}

/**
 * When the scheduler will next start the plan: the first slot after now (and
 * after the last slot handled); null without a schedule. A paused plan has
 * none either: the caller shows null for it.
 */
export function nextScheduledAt(plan: Pick<RestorePlan, 'cadence'>, lastSlot: Date | null, now: Date): Date | null {
  const schedule = plan.cadence.schedule;
  if (!schedule) return null;
  const after = lastSlot && lastSlot > now ? lastSlot : now;
  return nextSlot(schedule, plan.cadence.timezone, after);
}
