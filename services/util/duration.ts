/**
 * Durations as written in plans: short form (`90s`, `30m`, `4h`, `2d`, `1w`,
 * also combined like `1h30m`) or ISO 8601 (`PT6H`, `P1D`, `P3M`, `P1Y`).
 */

export class DurationError extends Error {
  override name = 'DurationError';
}

export interface ParsedDuration {
  /** Length in seconds; for ISO input with months or years a nominal value (month = 30 d, year = 365 d). */
  seconds: number;
  /**
   * The ISO 8601 form (upper case) when the input was ISO, so callers can add
   * calendar periods in a time zone (a month is not 30 days, a day across a
   * DST change is not 24 hours).
   */
  iso?: string;
  /** As written, trimmed. */
  text: string;
}

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;
const SHORT_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY };

// Units must appear largest first and at most once, so "30m1h" or "1h1h" are rejected
// rather than guessed at.
const SHORT_RE = /^(?:(\d+(?:\.\d+)?)w)?(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/;
const ISO_RE =
  /^P(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;
const ISO_FACTORS = [365 * DAY, 30 * DAY, 7 * DAY, DAY, HOUR, MINUTE, 1];
const SHORT_FACTORS = [SHORT_UNITS.w!, DAY, HOUR, MINUTE, 1, 0.001];

function hint(text: string): string {
  return `"${text}" is not a duration; use e.g. 90s, 30m, 4h, 2d or ISO 8601 like PT4H, P1D`;
}

function sum(groups: (string | undefined)[], factors: number[]): number | undefined {
  let seen = false;
  let total = 0;
  groups.forEach((g, i) => {
    if (g === undefined) return;
    seen = true;
    total += Number(g.replace(',', '.')) * factors[i]!;
  });
  return seen ? total : undefined;
}

export function parseDuration(text: string): ParsedDuration {
  if (typeof text !== 'string') throw new DurationError(hint(String(text)));
  const trimmed = text.trim();
  if (trimmed === '') throw new DurationError('empty duration; use e.g. 90s, 30m, 4h, 2d or ISO 8601 like PT4H, P1D');

  let seconds: number | undefined;
  let iso: string | undefined;
  if (/^p/i.test(trimmed)) {
    const upper = trimmed.toUpperCase();
    const m = ISO_RE.exec(upper);
    // "PT" alone matches the regex with no groups; sum() returns undefined for it.
    if (m && !upper.endsWith('T')) {
      seconds = sum(m.slice(1), ISO_FACTORS);
      iso = upper;
    }
  } else {
    const m = SHORT_RE.exec(trimmed);
    if (m) seconds = sum(m.slice(1), SHORT_FACTORS);
  }
  if (seconds === undefined || !Number.isFinite(seconds)) throw new DurationError(hint(trimmed));
  if (seconds <= 0) throw new DurationError(`duration "${trimmed}" must be longer than zero`);
  return iso === undefined ? { seconds, text: trimmed } : { seconds, iso, text: trimmed };
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** Human-readable short form: `850ms`, `42s`, `2m 05s`, `1h 02m 03s`, `2d 03h 00m 00s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  if (seconds < 0) return `-${formatDuration(-seconds)}`;
  if (seconds < 1) {
    const ms = Math.round(seconds * 1000);
    // 0.9996 s rounds to 1000 ms; show it as a second instead.
    if (ms < 1000) return `${ms}ms`;
  }
  let rest = Math.round(seconds);
  const d = Math.floor(rest / DAY);
  rest -= d * DAY;
  const h = Math.floor(rest / HOUR);
  rest -= h * HOUR;
  const m = Math.floor(rest / MINUTE);
  const s = rest - m * MINUTE;
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m ${pad(s)}s`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s)}s`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}
