/**
 * Server-side HTML without a template engine: `html\`…\`` escapes every
 * interpolated value unless it is SafeHtml (the result of another html``
 * call). Attribute values must always be written in double quotes in the
 * templates; escaping covers `"` and `'`, so a value cannot leave its attribute.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESC[c]!);
}

export type Html = SafeHtml;
/** What a template accepts: text (escaped), SafeHtml (as is), lists of either, and nothing (null, undefined, false). */
export type Renderable = SafeHtml | string | number | boolean | null | undefined | readonly Renderable[];

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false || v === true) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/**
 * Markup we generated ourselves and trust as it is (the QR code SVG). Never
 * pass anything that contains user input.
 */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** `class="a b"` from the truthy names. */
export function cls(...names: (string | false | null | undefined)[]): string {
  return names.filter(Boolean).join(' ');
}

/** A same-site path for `?next=`: only `/…`, never `//host`, `/\host` or anything with control characters. */
export function safeNext(next: unknown, fallback = '/'): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2000) return fallback;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return fallback;
  return next;
}

/** Query string from the given pairs (undefined values left out). */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
