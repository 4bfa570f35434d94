import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';

/**
 * One strict Content-Security-Policy for the whole app, the docs included.
 * Decision for Swagger UI (/docs, @fastify/swagger-ui 5): no exception. Its
 * page loads only its own script and style files (the plugin's csp.json lists
 * no inline hashes), the UI sets styles through the DOM (not blocked by CSP)
 * and its icons are data: images. The one inline bit, a <style> inside the
 * Swagger logo of the top bar, is switched off instead (app.ts: layout
 * BaseLayout, no top bar). A browser test loads /docs, runs "Try it out" and
 * expects no CSP violation (tests/integration/security-headers.test.ts).
 * Pages of services/web follow the same policy: no inline scripts, styles or
 * event handlers, only files from /assets.
 */
export const CSP_DIRECTIVES = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'frame-ancestors': ["'none'"],
  'form-action': ["'self'"],
};

export const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=()';

/**
 * Security headers on every answer, including errors and 404s (helmet sets
 * them in onRequest). Referrer-Policy no-referrer because calendar feed URLs
 * and invite links carry their secret in the path. HSTS only when the app is
 * served over HTTPS (cookieSecure), and without includeSubDomains: the other
 * hosts of the operator's domain are not ours to pin. Cache-Control no-store
 * on everything that does not set its own (API answers, pages, errors):
 * evidence and personal data must not sit in shared or browser caches. The
 * calendar feed sets its own; /assets/* (static files) may be cached.
 */
export default fp(async function securityHeaders(app: FastifyInstance, opts: { hsts: boolean }) {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    strictTransportSecurity: opts.hsts ? { maxAge: 31_536_000, includeSubDomains: false } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    xFrameOptions: { action: 'deny' },
  });
  app.addHook('onRequest', async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('permissions-policy', PERMISSIONS_POLICY);
  });
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply) => {
    // the matched route, not the raw URL: an encoded path must not reach the cacheable branch
    if (reply.hasHeader('cache-control') || req.routeOptions.url?.startsWith('/assets/')) return;
    reply.header('cache-control', 'no-store');
  });
}, { name: 'security-headers' });
