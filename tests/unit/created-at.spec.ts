import { describe, expect, it } from 'vitest';
import { pickReading } from '../../workers/drivers/postgres/created-at.js';

// the header said "10:00:00" (no zone); read in Berlin (winter) that is 09:00Z, read in UTC 10:00Z
const berlin = { createdAt: new Date('2026-12-06T09:00:00Z'), zone: 'Europe/Berlin' };
const utc = { createdAt: new Date('2026-12-06T10:00:00Z'), zone: 'UTC' };
const at = (iso: string) => new Date(iso);

describe('the creation time of a zone-less dump header', () => {
  it('a dump from a UTC host, finished 11 minutes after it began: the UTC reading (not one hour too old), both recorded', () => {
    const r = pickReading(berlin, utc, at('2026-12-06T10:11:00Z'));
    expect(r.zone).toBe('UTC');
    expect(r.createdAt.toISOString()).toBe('2026-12-06T10:00:00.000Z');
    expect(r.alternative).toEqual({ createdAt: berlin.createdAt, zone: 'Europe/Berlin' });
  });
  it('a dump from a Berlin host: the UTC reading would lie after the file was finished, so Berlin, with nothing ambiguous', () => {
    const r = pickReading(berlin, utc, at('2026-12-06T09:12:00Z'));
    expect(r).toEqual(berlin);
  });
  it('both possible and the later one far from the file time (a long dump): the older reading, the safe side for the RPO', () => {
    const r = pickReading(berlin, utc, at('2026-12-06T11:30:00Z'));
    expect(r.zone).toBe('Europe/Berlin');
    expect(r.alternative?.zone).toBe('UTC');
  });
  it('the same instant in both readings (a header with its zone, or a UTC plan): no alternative', () => {
    expect(pickReading(berlin, { ...berlin, zone: 'UTC' }, at('2026-12-06T09:05:00Z')).alternative).toBeUndefined();
  });
});
