/** A parsed form body (application/x-www-form-urlencoded): strings, or lists for repeated names. */
export type Body = Record<string, string | string[] | undefined> | undefined;

/** One trimmed text field, cut at `max` characters (the field's maxlength; longer input is not ours). */
export function field(body: Body, name: string, max = 1000): string {
  const v = body?.[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s.trim().slice(0, max) : '';
}

/** A password: not trimmed (spaces count). */
export function secretField(body: Body, name: string, max = 256): string {
  const v = body?.[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s.slice(0, max + 1) : '';
}

/** A calendar date YYYY-MM-DD that exists. */
export function isDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}

export function isEmail(s: string): boolean {
  return s.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);
