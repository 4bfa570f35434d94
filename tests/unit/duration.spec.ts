import { describe, it, expect } from 'vitest';
import { DurationError, formatDuration, parseDuration } from '../../services/util/duration.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['4h', 14_400],
    ['720h', 2_592_000],
    ['2d', 172_800],
    ['1w', 604_800],
    ['1h30m', 5400],
    ['500ms', 0.5],
  ])('short form %s = %d s without iso', (text, seconds) => {
    expect(parseDuration(text)).toEqual({ seconds, text });
  });

  it.each([
    ['PT6H', 21_600],
    ['P1D', 86_400],
    ['P1DT12H', 129_600],
    ['PT90M', 5400],
    ['P3M', 90 * 86_400],
    ['P1Y', 365 * 86_400],
    ['P2W', 14 * 86_400],
    ['PT0.5S', 0.5],
  ])('ISO %s = %d s and keeps iso', (text, seconds) => {
    expect(parseDuration(text)).toEqual({ seconds, iso: text, text });
  });

  it('upper-cases lower-case ISO input in iso but keeps the text as written', () => {
    expect(parseDuration(' p1d ')).toEqual({ seconds: 86_400, iso: 'P1D', text: 'p1d' });
  });

  it('explains what a duration looks like', () => {
    expect(() => parseDuration('4 hours')).toThrow(
      new DurationError('"4 hours" is not a duration; use e.g. 90s, 30m, 4h, 2d or ISO 8601 like PT4H, P1D'),
    );
  });

  it.each(['', '4', '4H', 'h', '30m1h', '1h1h', 'P', 'PT', 'P1DT', 'P1H', '-4h', 'P1S'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
  });

  it.each(['0s', 'PT0S', 'P0D'])('rejects the zero duration %s', (text) => {
    expect(() => parseDuration(text)).toThrow(`duration "${text}" must be longer than zero`);
  });
});

describe('formatDuration', () => {
  it.each([
    [0.85, '850ms'],
    [0, '0ms'],
    [42, '42s'],
    [125, '2m 05s'],
    [3723, '1h 02m 03s'],
    [3600, '1h 00m 00s'],
    [183_600, '2d 03h 00m 00s'],
    [0.9996, '1s'],
    [59.6, '1m 00s'],
    [-90, '-1m 30s'],
  ])('%d s → %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
