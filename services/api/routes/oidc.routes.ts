import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DomainError } from '../../errors.js';
import { errorAnswer } from '../error-handler.js';
import { SESSION_COOKIE } from '../../auth/session.service.js';
import { OIDC_COOKIE, type OidcService } from '../../auth/oidc.service.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain page for the browser that came back from the IdP: what went wrong, and the way back to the login. */
function errorPage(message: string): string {
  return `<!doctype html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Anmeldung nicht möglich – ernstfall</title></head>
<body><main>
<h1>Anmeldung nicht möglich <span lang="en">/ Sign-in not possible</span></h1>
<p lang="en">${esc(message)}</p>
<p><a href="/login">Zurück zur Anmeldung</a> · <a href="/login" lang="en">Back to the login</a></p>
</main></body></html>
`;
}

/**
 * The authorization code, state and issuer sit in the callback's query: the
 * access log gets the path only (the code is single-use and PKCE-bound, but
 * logs live long and travel far).
 */
const pathOnlyReq = (req: FastifyRequest) => ({
  method: req.method, url: req.url.split('?')[0], host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort,
});

/** Single sign-on (OpenID Connect): GET /auth/oidc/start sends the browser to the IdP, GET /auth/oidc/callback signs it in. */
export async function oidcRoutes(base: FastifyInstance, opts: { oidc: OidcService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  // encapsulated: only these two routes answer a browser with a page instead of JSON
  app.setErrorHandler((err: FastifyError | DomainError, req, reply) => {
    // anything but a domain error goes on to the app's handler
    if (!(err instanceof DomainError)) throw err;
    const a = errorAnswer(err);
    void reply.header('cache-control', 'no-store');
    if (req.headers.accept?.includes('text/html')) {
      return reply.status(a.status).type('text/html; charset=utf-8').send(errorPage(err.message));
    }
    return reply.status(a.status).send(a.body);
  });

  app.get('/auth/oidc/start', {
    config: { public: true },
    schema: {
      tags: ['auth'],
      summary: 'Single sign-on: redirects to the identity provider (authorization code flow with PKCE)',
      querystring: Type.Object({ next: Type.Optional(Type.String({ maxLength: 500, description: 'relative path to return to after the login' })) }),
      response: { 302: Type.Null({ description: 'to the identity provider' }), 503: { $ref: 'Error#' } },
    },
  }, async (req, reply) => {
    const { url, cookie } = await opts.oidc.start(req.query.next);
    void reply.header('cache-control', 'no-store');
    void reply.setCookie(OIDC_COOKIE, cookie, opts.oidc.stateCookieOptions());
    return reply.redirect(url, 302);
  });

  app.get('/auth/oidc/callback', {
    config: { public: true },
    logSerializers: { req: pathOnlyReq },
    schema: {
      tags: ['auth'],
      summary: 'Single sign-on: the identity provider returns here; sets the session cookie and redirects into the app',
      querystring: Type.Object({}, { additionalProperties: true }),
      response: { 303: Type.Null({ description: 'signed in; to the page asked for at start, else /' }), 400: { $ref: 'Error#' }, 403: { $ref: 'Error#' }, 503: { $ref: 'Error#' } },
    },
  }, async (req: FastifyRequest, reply: FastifyReply) => {
    // rebuilt on the registered redirect URI, not on the Host header: behind a proxy the two differ
    const current = new URL(opts.oidc.redirectUri);
    const q = req.url.indexOf('?');
    current.search = q >= 0 ? req.url.slice(q) : '';
    // one use only, whatever the outcome
    void reply.clearCookie(OIDC_COOKIE, { path: opts.oidc.stateCookieOptions().path });
    void reply.header('cache-control', 'no-store');
    const done = await opts.oidc.callback(current, req.cookies[OIDC_COOKIE], { ip: req.ip, userAgent: req.headers['user-agent'] });
    void reply.setCookie(SESSION_COOKIE, done.token, opts.oidc.sessionCookieOptions());
    req.log.info({ userId: done.user.id, tenantId: done.user.tenant_id, role: done.user.role }, 'signed in by single sign-on');
    return reply.redirect(done.next, 303);
  });
}
