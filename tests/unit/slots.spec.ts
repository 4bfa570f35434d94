import { describe, expect, it } from 'vitest';
import { dueSlot, nextScheduledAt, nextSlot } from '../../services/scheduling/slots.js';

const TZ = 'Europe/Berlin';
const d = (iso: string) => new Date(iso);
const iso = (x: Date | null) => x?.toISOString() ?? null;
const CREATED = d('2026-01-01T00:00:00Z');

/** Every slot the scheduler would run when ticking once a minute from `from` to `to`. */
function ticked(schedule: string, from: string, to: string, stepMs = 60_000): string[] {
  let last: Date | null = d(from);
  const out: string[] = [];
  for (let t = d(from).getTime(); t <= d(to).getTime(); t += stepMs) {
    const s = dueSlot(schedule, TZ, last, CREATED, new Date(t));
    if (s) {
      out.push(s.toISOString());
      last = s;
    }
  }
  return out;
}

describe('dueSlot on normal days', () => {
  it('is null before the slot and the slot from its minute on, until it is handled', () => {
    // 2026-12-01: winter, 02:00 CET = 01:00 UTC
    expect(dueSlot('0 2 * * *', TZ, d('2026-11-30T01:00:00Z'), CREATED, d('2026-12-01T00:59:59Z'))).toBeNull();
    expect(iso(dueSlot('0 2 * * *', TZ, d('2026-11-30T01:00:00Z'), CREATED, d('2026-12-01T01:00:00Z')))).toBe('2026-12-01T01:00:00.000Z');
    expect(iso(dueSlot('0 2 * * *', TZ, d('2026-11-30T01:00:00Z'), CREATED, d('2026-12-01T09:00:00Z')))).toBe('2026-12-01T01:00:00.000Z');
    expect(dueSlot('0 2 * * *', TZ, d('2026-12-01T01:00:00Z'), CREATED, d('2026-12-01T09:00:00Z'))).toBeNull();
    // summer: 02:00 CEST = 00:00 UTC
    expect(iso(dueSlot('0 2 * * *', TZ, null, CREATED, d('2026-07-01T00:00:30Z')))).toBe('2026-07-01T00:00:00.000Z');
  });

  it('runs each slot of a week once when ticked every minute', () => {
    expect(ticked('0 2 * * 1-5', '2026-11-29T00:00:00Z', '2026-12-06T00:00:00Z', 300_000)).toEqual([
      '2026-11-30T01:00:00.000Z', '2026-12-01T01:00:00.000Z', '2026-12-02T01:00:00.000Z', '2026-12-03T01:00:00.000Z', '2026-12-04T01:00:00.000Z',
    ]);
  });

  it('after downtime runs only the newest missed slot', () => {
    // three daily slots missed (Dec 2, 3, 4); back up on Dec 4 at 10:00
    expect(iso(dueSlot('0 2 * * *', TZ, d('2026-12-01T01:00:00Z'), CREATED, d('2026-12-04T09:00:00Z')))).toBe('2026-12-04T01:00:00.000Z');
    // a quarterly plan down for a year: one run, for the newest quarter
    expect(iso(dueSlot('0 3 1 */3 *', TZ, d('2025-12-01T02:00:00Z'), d('2025-01-01T00:00:00Z'), d('2026-11-28T12:00:00Z')))).toBe('2026-10-01T01:00:00.000Z');
  });

  it('has no slot before the plan was created', () => {
    expect(dueSlot('0 2 * * *', TZ, null, d('2026-12-01T05:00:00Z'), d('2026-12-01T23:00:00Z'))).toBeNull();
    expect(iso(dueSlot('0 2 * * *', TZ, null, d('2026-12-01T05:00:00Z'), d('2026-12-02T01:00:00Z')))).toBe('2026-12-02T01:00:00.000Z');
    // a slot at the very instant of creation counts
    expect(iso(dueSlot('0 2 * * *', TZ, null, d('2026-12-01T01:00:00Z'), d('2026-12-01T01:00:00Z')))).toBe('2026-12-01T01:00:00.000Z');
  });
});

describe('dueSlot on daylight-saving days (Europe/Berlin)', () => {
  it('spring forward (2026-03-29): the skipped 02:30 runs once, at 03:30 CEST; 02:00 at 03:00 CEST', () => {
    expect(ticked('30 2 * * *', '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z', 300_000)).toEqual([
      '2026-03-27T01:30:00.000Z', '2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z',
    ]);
    expect(ticked('0 2 * * *', '2026-03-28T12:00:00Z', '2026-03-29T12:00:00Z')).toEqual(['2026-03-29T01:00:00.000Z']);
    // found also when computed long after the gap (catch-up) and from right inside it
    expect(iso(dueSlot('30 2 * * *', TZ, d('2026-03-28T01:30:00Z'), CREATED, d('2026-03-29T20:00:00Z')))).toBe('2026-03-29T01:30:00.000Z');
    expect(dueSlot('30 2 * * *', TZ, d('2026-03-28T01:30:00Z'), CREATED, d('2026-03-29T01:29:59Z'))).toBeNull();
    expect(iso(nextSlot('30 2 * * *', TZ, d('2026-03-29T01:00:00Z')))).toBe('2026-03-29T01:30:00.000Z');
  });

  it('fall back (2026-10-25): the repeated 02:30 runs once, at its first occurrence', () => {
    expect(ticked('30 2 * * *', '2026-10-24T00:00:00Z', '2026-10-26T12:00:00Z', 300_000)).toEqual([
      '2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z',
    ]);
    // a scheduler that was down through the repeated hour catches up once, not for the second 02:30
    expect(iso(dueSlot('30 2 * * *', TZ, d('2026-10-24T00:30:00Z'), CREATED, d('2026-10-25T01:45:00Z')))).toBe('2026-10-25T00:30:00.000Z');
    expect(dueSlot('30 2 * * *', TZ, d('2026-10-25T00:30:00Z'), CREATED, d('2026-10-25T05:00:00Z'))).toBeNull();
    expect(iso(nextSlot('30 2 * * *', TZ, d('2026-10-25T00:30:00Z')))).toBe('2026-10-26T01:30:00.000Z');
  });

  it('an hourly schedule through both changes has no duplicate and keeps every existing hour', () => {
    const spring = ticked('0 * * * *', '2026-03-28T23:30:00Z', '2026-03-29T03:30:00Z');
    expect(spring).toEqual(['2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z', '2026-03-29T03:00:00.000Z']);
    const autumn = ticked('0 * * * *', '2026-10-24T23:30:00Z', '2026-10-25T03:30:00Z');
    // 02:00 CEST (00:00Z) runs; the repeated 02:00 CET (01:00Z) does not
    expect(autumn).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z']);
  });
});

describe('nextSlot and nextScheduledAt', () => {
  it('gives the first slot after the instant, in the plan zone', () => {
    expect(iso(nextSlot('0 2 * * *', TZ, d('2026-12-01T01:00:00Z')))).toBe('2026-12-02T01:00:00.000Z');
    expect(iso(nextSlot('0 2 * * *', 'UTC', d('2026-12-01T01:00:00Z')))).toBe('2026-12-01T02:00:00.000Z');
  });
  it('is null without a schedule and never before the last slot handled', () => {
    expect(nextScheduledAt({ cadence: { timezone: TZ } }, null, d('2026-12-01T00:00:00Z'))).toBeNull();
    const plan = { cadence: { schedule: '0 2 * * *', timezone: TZ } };
    expect(iso(nextScheduledAt(plan, null, d('2026-12-01T00:00:00Z')))).toBe('2026-12-01T01:00:00.000Z');
    expect(iso(nextScheduledAt(plan, d('2026-12-01T01:00:00Z'), d('2026-12-01T00:59:00Z')))).toBe('2026-12-02T01:00:00.000Z');
  });
});
