import { html, trusted, type Renderable, type SafeHtml } from './html.js';
import { planStatusLabel, verdictLabel, type Lang, type Strings } from './i18n.js';

/**
 * Small building blocks. Status is never shown by colour alone: every light
 * has its own shape (icon, hidden from screen readers) and its text.
 */
const svg = (body: string) => `<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">${body}</svg>`;
const ICON_BODIES: Record<string, string> = {
  // filled circle with a tick
  ok: '<circle cx="8" cy="8" r="8" fill="currentColor"/><path d="M4.3 8.4l2.4 2.4 5-5.3" fill="none" stroke="#fff" stroke-width="2"/>',
  // triangle with an exclamation mark
  'due-soon': '<path d="M8 .8l7.6 14H.4z" fill="currentColor"/><path d="M8 5.5v4.5M8 11.5v1.6" stroke="#fff" stroke-width="1.8"/>',
  // diamond with a clock hand
  overdue: '<path d="M8 0l8 8-8 8-8-8z" fill="currentColor"/><path d="M8 4v4.5l2.6 1.6" fill="none" stroke="#fff" stroke-width="1.8"/>',
  // filled circle with a cross
  failing: '<circle cx="8" cy="8" r="8" fill="currentColor"/><path d="M5 5l6 6M11 5l-6 6" stroke="#fff" stroke-width="2"/>',
  // hollow dashed circle
  'never-tested': '<circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="2.4" stroke-dasharray="3 2"/>',
};
const ICONS: Record<string, string> = Object.fromEntries(Object.entries(ICON_BODIES).map(([k, body]) => [k, svg(body)]));
/** The same icon as a reference to lightSymbols() (about 100 bytes instead of 250–300). */
const ICON_REFS: Record<string, string> = Object.fromEntries(Object.keys(ICON_BODIES).map((k) => [k,
  `<svg class="icon" width="16" height="16" aria-hidden="true" focusable="false"><use href="#light-${k}"/></svg>`]));
const VERDICT_LIGHT: Record<string, string> = { passed: 'ok', failed: 'failing', error: 'overdue', cancelled: 'never-tested' };

function light(kind: string, text: string, icons: Record<string, string> = ICONS): SafeHtml {
  return html`<span class="light light-${kind}">${trusted(icons[kind] ?? icons['never-tested']!)}<span>${text}</span></span>`;
}

/** Traffic light of a plan status: failing, overdue, never-tested, due-soon, ok. */
export function statusLight(status: string, lang: Lang): SafeHtml {
  return light(ICONS[status] ? status : 'never-tested', planStatusLabel(status, lang));
}

/** A run's verdict with the matching light; a run without verdict shows its status text. */
export function verdictLight(verdict: string | null | undefined, lang: Lang, fallback?: string): SafeHtml | string {
  if (!verdict) return fallback ?? '–';
  return light(VERDICT_LIGHT[verdict] ?? 'never-tested', verdictLabel(verdict as never, lang));
}

/**
 * The light icons once, as SVG symbols, for a page with many lights (the
 * dashboard's 200 plans): statusLightRef() and verdictLightRef() then refer
 * to them. Same shapes, colours and text as statusLight() and verdictLight().
 */
export function lightSymbols(): SafeHtml {
  return trusted(`<svg class="visually-hidden" aria-hidden="true" focusable="false">${Object.entries(ICON_BODIES)
    .map(([k, body]) => `<symbol id="light-${k}" viewBox="0 0 16 16">${body}</symbol>`).join('')}</svg>`);
}

/** statusLight() with its icon from lightSymbols() (which the page must contain). */
export function statusLightRef(status: string, lang: Lang): SafeHtml {
  return light(ICONS[status] ? status : 'never-tested', planStatusLabel(status, lang), ICON_REFS);
}

/** verdictLight() with its icon from lightSymbols() (which the page must contain). */
export function verdictLightRef(verdict: string | null | undefined, lang: Lang, fallback?: string): SafeHtml | string {
  if (!verdict) return fallback ?? '–';
  return light(VERDICT_LIGHT[verdict] ?? 'never-tested', verdictLabel(verdict as never, lang), ICON_REFS);
}

/** A scrollable, keyboard-reachable table frame; the caption names the region. */
export function table(id: string, caption: Renderable, head: SafeHtml, rows: SafeHtml[], o: { captionHidden?: boolean } = {}): SafeHtml {
  return html`<div class="table-wrap" role="region" aria-labelledby="${id}-cap" tabindex="0"><table id="${id}">
<caption id="${id}-cap"${o.captionHidden ? html` class="visually-hidden"` : ''}>${caption}</caption>
<thead>${head}</thead>
<tbody>${rows}</tbody></table></div>`;
}

export type FormErrors = Record<string, string>;
export type FormValues = Record<string, string>;

export interface FieldOpts {
  /** form prefix, so that several forms on one page have distinct ids */
  form: string;
  name: string;
  label: string;
  /** for the "(optional)" marker of fields that are not required */
  s: Strings;
  type?: string;
  value?: string;
  errors?: FormErrors;
  hint?: string;
  required?: boolean;
  autocomplete?: string;
  inputmode?: string;
  maxlength?: number;
  min?: string;
  /** ids of further text that describes the field (e.g. a form-level error) */
  describedBy?: string;
}

function fieldParts(id: string, o: FieldOpts) {
  const error = o.errors?.[o.name];
  const described = [o.hint ? `${id}-hint` : '', error ? `${id}-err` : '', o.describedBy ?? ''].filter(Boolean).join(' ');
  return {
    error,
    label: html`<label for="${id}">${o.label}${o.required ? '' : html` <span class="muted">(${o.s.optional})</span>`}</label>`,
    hint: o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : '',
    err: error ? html`<p class="field-error" id="${id}-err"><span aria-hidden="true">✖ </span>${error}</p>` : '',
    aria: html`${described ? html` aria-describedby="${described}"` : ''}${error ? html` aria-invalid="true"` : ''}${o.required ? html` required` : ''}`,
  };
}

export function input(o: FieldOpts): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const p = fieldParts(id, o);
  return html`<div class="field${p.error ? ' has-error' : ''}">${p.label}${p.hint}${p.err}<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.inputmode ? html` inputmode="${o.inputmode}"` : ''}${o.maxlength ? html` maxlength="${o.maxlength}"` : ''}${o.min ? html` min="${o.min}"` : ''}${p.aria}></div>`;
}

export function textarea(o: FieldOpts): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const p = fieldParts(id, o);
  return html`<div class="field${p.error ? ' has-error' : ''}">${p.label}${p.hint}${p.err}<textarea id="${id}" name="${o.name}" rows="3"${o.maxlength ? html` maxlength="${o.maxlength}"` : ''}${p.aria}>${o.value ?? ''}</textarea></div>`;
}

export function select(o: FieldOpts & { options: { value: string; label: string }[] }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const p = fieldParts(id, { ...o, required: true });
  return html`<div class="field${p.error ? ' has-error' : ''}"><label for="${id}">${o.label}</label>${p.hint}${p.err}<select id="${id}" name="${o.name}"${p.aria}>${o.options.map((x) => html`<option value="${x.value}"${x.value === o.value ? html` selected` : ''}>${x.label}</option>`)}</select></div>`;
}

/** Radio buttons in a fieldset with a legend. */
export function radios(o: FieldOpts & { options: { value: string; label: string }[] }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const error = o.errors?.[o.name];
  return html`<fieldset id="${id}" class="field${error ? ' has-error' : ''}"${error ? html` aria-describedby="${id}-err"` : ''}><legend>${o.label}</legend>${error ? html`<p class="field-error" id="${id}-err"><span aria-hidden="true">✖ </span>${error}</p>` : ''}
${o.options.map((x, i) => html`<div class="choice"><input type="radio" id="${id}-${i}" name="${o.name}" value="${x.value}"${x.value === o.value ? html` checked` : ''}${o.required ? html` required` : ''}><label for="${id}-${i}">${x.label}</label></div>`)}</fieldset>`;
}

export function checkbox(o: { form: string; name: string; label: string; checked?: boolean }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  return html`<div class="choice"><input type="checkbox" id="${id}" name="${o.name}" value="1"${o.checked ? html` checked` : ''}><label for="${id}">${o.label}</label></div>`;
}

/** Summary above a form with errors: announced, focusable, linking to each field. */
export function errorSummary(form: string, errors: FormErrors | undefined, s: Strings, general?: string): SafeHtml | '' {
  const keys = Object.keys(errors ?? {}).filter((k) => k !== '_');
  const top = errors?._ ?? general;
  if (keys.length === 0 && !top) return '';
  return html`<div class="error-summary" role="alert" tabindex="-1" id="${form}-errors"><p><strong>${top ?? s.formErrors}</strong></p>${keys.length ? html`<ul>${keys.map((k) => html`<li><a href="#${form}-${k}">${errors![k]}</a></li>`)}</ul>` : ''}</div>`;
}

export function notice(text: Renderable, kind: 'info' | 'ok' | 'warn' = 'info'): SafeHtml {
  return html`<div class="notice notice-${kind}" role="status"><p>${text}</p></div>`;
}

/** Description list rows (label, value), skipping empty values. */
export function dl(rows: [string, Renderable][]): SafeHtml {
  return html`<dl class="facts">${rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}
