import { describe, expect, it } from 'vitest';
import { addDuration, zonedToUtc } from '../../services/util/calendar.js';

const TZ = 'Europe/Berlin';

describe('addDuration in a time zone', () => {
  it('adds a calendar day across spring-forward: 02:30 local stays a wall-clock day later', () => {
    // 2026-03-28 01:30 UTC = 02:30 CET; the next day 02:30 does not exist (gap) -> 03:30 CEST = 01:30 UTC
    const next = addDuration(new Date('2026-03-28T01:30:00Z'), 'P1D', TZ);
    expect(next.toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // 10:00 CET -> 10:00 CEST next day is only 23 hours later
    expect(addDuration(new Date('2026-03-28T09:00:00Z'), 'P1D', TZ).toISOString()).toBe('2026-03-29T08:00:00.000Z');
  });
  it('adds a day across fall-back as 25 hours of wall clock', () => {
    expect(addDuration(new Date('2026-10-24T08:00:00Z'), 'P1D', TZ).toISOString()).toBe('2026-10-25T09:00:00.000Z');
  });
  it('adds months to the last valid day and short forms as elapsed time', () => {
    expect(addDuration(new Date('2026-01-31T11:00:00Z'), 'P1M', TZ).toISOString()).toBe('2026-02-28T11:00:00.000Z');
    expect(addDuration(new Date('2026-01-15T11:00:00Z'), 'P3M', TZ).toISOString()).toBe('2026-04-15T10:00:00.000Z');
    expect(addDuration(new Date('2026-03-28T12:00:00Z'), '24h', TZ).toISOString()).toBe('2026-03-29T12:00:00.000Z');
    expect(addDuration(new Date('2026-03-28T12:00:00Z'), 'PT6H', TZ).toISOString()).toBe('2026-03-28T18:00:00.000Z');
  });
  it('resolves a repeated autumn hour to its first occurrence', () => {
    expect(zonedToUtc(2026, 10, 25, 2, 30, 0, TZ).toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });
});
