import { html } from '../html.js';
import type { PageCtx } from '../layout.js';

/** The admin pages' sub-navigation (users, tokens, provider access, queue). */
export function adminNav(ctx: PageCtx, active: 'users' | 'tokens' | 'access' | 'queue') {
  const { s } = ctx;
  const link = (key: string, href: string, label: string) => html`<li><a href="${href}"${key === active ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return html`<nav class="sub-nav" aria-label="${s.adminTitle}"><ul>${link('users', '/admin/users', s.users)}${link('tokens', '/admin/tokens', s.tokens)}${link('access', '/admin/provider-access', s.providerAccess)}${link('queue', '/admin/queue', s.queueTitle)}</ul></nav>`;
}
