import { describe, expect, it } from 'vitest';
import { localWallTime, shiftTm } from '../fixtures/test-clock.js';
import { readHeaderString, shiftCreationTime } from '../fixtures/archive-header.js';

/** The fixtures' moving of backup times to the tests' clock (npm run test:date-ahead). */
const YEAR = 365 * 86_400_000;

/** A custom-format header (archive 1.15, 4-byte ints) with this struct tm and database name. */
function header(tm: number[], db: string): Buffer {
  const int = (n: number) => Buffer.from([n < 0 ? 1 : 0, ...[0, 1, 2, 3].map((i) => (Math.abs(n) >> (8 * i)) & 0xff)]);
  const str = (s: string) => Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([Buffer.from('PGDMP'), Buffer.from([1, 15, 0, 4, 8, 1, 0]), ...tm.map(int), str(db), str('15.14'), str('15.14')]);
}
const tmAt = (buf: Buffer) => Array.from({ length: 7 }, (_, i) => buf.readUInt32LE(12 + 5 * i + 1) * (buf[12 + 5 * i] ? -1 : 1));

describe('test clock: backup times moved by the skew', () => {
  it('a UTC wall time moves by exactly the skew', () => {
    expect(shiftTm({ sec: 56, min: 41, hour: 13, mday: 7, mon: 11, year: 126, isdst: 0 }, 'UTC', YEAR))
      .toEqual({ sec: 56, min: 41, hour: 13, mday: 7, mon: 11, year: 127, isdst: 0 });
  });

  it('a Berlin summer time moved into winter gets the winter offset and isdst 0', () => {
    // 2026-07-01 12:00 CEST = 10:00Z; +180 d = 2026-12-28 10:00Z = 11:00 CET
    expect(shiftTm({ sec: 0, min: 0, hour: 12, mday: 1, mon: 6, year: 126, isdst: 1 }, 'Europe/Berlin', 180 * 86_400_000))
      .toEqual({ sec: 0, min: 0, hour: 11, mday: 28, mon: 11, year: 126, isdst: 0 });
  });

  it('the repeated autumn hour is read as isdst says', () => {
    // 2026-10-25 02:30 in Berlin happens twice: CEST (00:30Z) and CET (01:30Z); one hour later is 03:30 CET or 02:30 CET
    expect(shiftTm({ sec: 0, min: 30, hour: 2, mday: 25, mon: 9, year: 126, isdst: 1 }, 'Europe/Berlin', 3_600_000)).toMatchObject({ hour: 2, min: 30, isdst: 0 });
    expect(shiftTm({ sec: 0, min: 30, hour: 2, mday: 25, mon: 9, year: 126, isdst: 0 }, 'Europe/Berlin', 3_600_000)).toMatchObject({ hour: 3, min: 30, isdst: 0 });
  });

  it('an archive header: the creation time moves, everything else stays byte for byte', () => {
    const buf = header([56, 41, 13, 7, 11, 126, 0], 'ewo');
    const before = Buffer.from(buf);
    shiftCreationTime(buf, 'UTC', YEAR);
    expect(tmAt(buf)).toEqual([56, 41, 13, 7, 11, 127, 0]);
    expect(buf.length).toBe(before.length);
    expect(buf.subarray(0, 12)).toEqual(before.subarray(0, 12));
    expect(buf.subarray(12 + 35)).toEqual(before.subarray(12 + 35));
    expect(readHeaderString(buf, 'dbname')).toBe('ewo');
  });

  it('local wall time for restic --time', () => {
    expect(localWallTime(new Date('2027-12-07T13:41:56Z'), 'UTC')).toBe('2027-12-07 13:41:56');
    expect(localWallTime(new Date('2027-12-07T13:41:56Z'), 'Europe/Berlin')).toBe('2027-12-07 14:41:56');
  });
});
