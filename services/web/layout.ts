import type { Principal } from '../auth/principal.js';
import { html, qs, type Renderable, type SafeHtml } from './html.js';
import { roleLabel, type Lang, type Strings } from './i18n.js';
import { assetUrl } from './assets.js';

/** What every page knows about its request. */
export interface PageCtx {
  lang: Lang;
  s: Strings;
  /** The current path and query (for the language switch and the login redirect). */
  url: string;
  principal?: Principal;
  tenantName?: string;
}

export type NavKey = 'dashboard' | 'programme' | 'systems' | 'alerts' | 'reviews' | 'reports' | 'admin' | 'account' | 'tenants';

export interface PageOpts {
  title: string;
  active?: NavKey;
  body: Renderable;
  /** Include /assets/app.js (only pages with live updates need it). */
  script?: boolean;
  /** Reload after this many seconds when scripting is off (inside <noscript>: with JS, app.js polls instead). */
  noscriptRefresh?: number;
  /** Pages without a signed-in user (login, invitation): no navigation. */
  bare?: boolean;
}

export const csrfToken = (ctx: PageCtx) => ctx.principal?.session?.session.csrf_token ?? '';

export function csrfField(ctx: PageCtx): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrfToken(ctx)}">`;
}

function navItems(ctx: PageCtx): { key: NavKey; href: string; label: string }[] {
  const p = ctx.principal;
  const s = ctx.s;
  if (!p) return [];
  const items: { key: NavKey; href: string; label: string }[] = [];
  if (p.tenantId) {
    items.push({ key: 'dashboard', href: '/', label: s.navDashboard }, { key: 'programme', href: '/programme', label: s.navProgramme }, { key: 'systems', href: '/systems', label: s.navSystems }, { key: 'alerts', href: '/alerts', label: s.navAlerts },
      { key: 'reviews', href: '/reviews', label: s.navReviews }, { key: 'reports', href: '/reports', label: s.navReports });
    if (p.role === 'admin') items.push({ key: 'admin', href: '/admin/users', label: s.navAdmin });
  }
  if (p.session?.user.role === 'provider-admin') items.push({ key: 'tenants', href: '/admin/tenants', label: s.navTenants });
  if (p.session) items.push({ key: 'account', href: '/account', label: s.navAccount });
  return items;
}

function header(ctx: PageCtx): SafeHtml {
  const s = ctx.s;
  const p = ctx.principal;
  const other = ctx.lang === 'de' ? 'en' : 'de';
  const switchHref = `/lang${qs({ to: other, next: ctx.url })}`;
  const displayName = p?.session?.user.name || p?.name;
  return html`<header class="top">
  <div class="brand"><a href="/" class="product">${s.product}</a>${ctx.tenantName ? html` <span class="tenant">${s.tenant}: ${ctx.tenantName}</span>` : ''}</div>
  <div class="who">
    ${p ? html`<span>${s.signedInAs} <strong>${displayName}</strong> (${roleLabel(p.role, s)})</span>` : ''}
    <a href="${switchHref}" lang="${other}" hreflang="${other}" aria-label="${s.switchToLabel}">${s.switchTo}</a>
    ${p?.session ? html`<form method="post" action="/logout" class="inline">${csrfField(ctx)}<button type="submit" class="linkish">${s.logout}</button></form>` : ''}
  </div>
</header>`;
}

function nav(ctx: PageCtx, active?: NavKey): SafeHtml | '' {
  const items = navItems(ctx);
  if (items.length === 0) return '';
  return html`<nav class="main-nav" aria-label="${ctx.s.mainNav}"><ul>${items.map((i) => html`<li><a href="${i.href}"${i.key === active ? html` aria-current="page"` : ''}>${i.label}</a></li>`)}</ul></nav>`;
}

/** The page shell: landmarks, skip link, language, title; no inline script or style anywhere. */
export function layout(ctx: PageCtx, o: PageOpts): string {
  const s = ctx.s;
  return html`<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} – ${s.product}</title>
<link rel="stylesheet" href="${assetUrl('app.css')}">
${o.noscriptRefresh ? html`<noscript><meta http-equiv="refresh" content="${o.noscriptRefresh}"></noscript>` : ''}
${o.script ? html`<script src="${assetUrl('app.js')}" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">${s.skip}</a>
${header(ctx)}
${o.bare ? '' : nav(ctx, o.active)}
<main id="main" tabindex="-1">
${o.body}
</main>
<footer class="foot"><p>${s.product} – ${s.tagline}. ${s.footerTimes}</p></footer>
</body>
</html>
`.value;
}

/** A page for an error: 403, 404, 400, 409, 500; never internals. */
export function errorPage(ctx: PageCtx, status: number, message?: string): string {
  const s = ctx.s;
  const title = status === 404 ? s.errNotFound : status === 403 ? s.errForbidden : status === 409 ? s.errConflict : status === 429 ? s.errWait : status >= 500 ? s.errServer : s.errBadRequest;
  const text = status === 404 ? s.errNotFoundText : status >= 500 ? s.errServerText : message;
  return layout(ctx, {
    title,
    bare: !ctx.principal,
    body: html`<h1>${title}</h1>${text ? html`<p>${text}</p>` : ''}<p><a href="${ctx.principal ? '/' : '/login'}">${ctx.principal ? s.backToDashboard : s.loginTitle}</a></p>`,
  });
}
