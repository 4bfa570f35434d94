import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { AccountService } from '../../auth/account.service.js';
import { SESSION_COOKIE, type LiveSession, type SessionService } from '../../auth/session.service.js';
import type { RequestContext } from '../../auth/account.types.js';
import { DomainError, Invalid, Unauthorized } from '../../errors.js';
import { errorRef, nullable, AnyRole, Stage, UserViewSchema } from '../account-schemas.js';

export interface AuthRateLimit {
  /** attempts per address and route within the window (login, code, invitation) */
  max: number;
  timeWindowMs: number;
}

/**
 * Where the sign-in attempts are counted: in Redis, shared by every API
 * process of the installation (behind a load balancer an attacker's guesses
 * reach all of them), under `nameSpace` (the installation's Redis prefix).
 * Without it each process counts for itself (tests, the ops app).
 */
export interface RateLimitStore {
  redis: Redis;
  nameSpace: string;
}

/** @fastify/rate-limit options for a store: Redis counters; while Redis is unreachable sign-in stays open (the account lock-out in PostgreSQL still counts every failure). */
export function rateLimitStoreOptions(store: RateLimitStore | undefined): { redis?: Redis; nameSpace?: string; skipOnError?: boolean } {
  return store ? { redis: store.redis, nameSpace: store.nameSpace, skipOnError: true } : {};
}

const SignedIn = Type.Object({
  stage: Stage,
  csrfToken: Type.String({ description: 'send as header x-csrf-token with every POST/PUT/PATCH/DELETE of this session' }),
});
const Failed = Type.Object({ error: Type.String(), message: Type.String(), reason: Type.Optional(Type.String()), retryAfterSeconds: Type.Optional(Type.Integer()) });

const ctxOf = (req: FastifyRequest): RequestContext => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

function sessionOfRequest(req: FastifyRequest): LiveSession {
  const live = req.principal?.session;
  if (!live) throw new Unauthorized('this needs a browser session (sign in with POST /auth/login)');
  return live;
}

/** The public JSON endpoints take JSON only: a cross-site HTML form cannot post JSON without the browser asking first (login CSRF). */
async function jsonOnly(req: FastifyRequest): Promise<void> {
  if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
    throw new DomainError(415, 'UnsupportedMediaType', 'send application/json');
  }
}

/** Too many failed sign-ins for what was typed as e-mail (whether an account has it or not: the answer is the same). */
const throttled = (reply: FastifyReply, seconds = 60) => reply.status(429).header('retry-after', String(seconds))
  .send({ error: 'TooManyRequests', message: `too many failed sign-ins for this account; try again in ${seconds} s`, reason: 'throttled', retryAfterSeconds: seconds });

const locked = (reply: FastifyReply, seconds = 60) => reply.status(423).header('retry-after', String(seconds))
  .send({ error: 'Locked', message: `too many failed attempts: this account is locked for ${seconds} s`, reason: 'locked', retryAfterSeconds: seconds });

/**
 * Sign-in for browsers and the web interface's scripts, as JSON: password,
 * second factor (TOTP or a recovery code), enrolment, logout, password change
 * and accepting an invitation. The session lives in the HTTP-only cookie
 * `ef_session`; every unsafe request of a session must send its CSRF token.
 */
export async function authRoutes(base: FastifyInstance, opts: { accounts: AccountService; sessions: SessionService; rateLimit?: AuthRateLimit; store?: RateLimitStore }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const limit = { max: opts.rateLimit?.max ?? 10, timeWindow: opts.rateLimit?.timeWindowMs ?? 60_000 };
  // per client address, counted in onRequest, so every attempt counts whatever it ends in (401 included)
  await app.register(rateLimit, {
    global: false,
    ...rateLimitStoreOptions(opts.store),
    errorResponseBuilder: (_req, c) => new DomainError(429, 'TooManyRequests', `too many attempts from this address; try again in ${c.after}`, undefined, { retryAfterSeconds: Math.ceil(c.ttl / 1000) }),
  });

  /** Sets the (new) session cookie and returns the session's CSRF token. */
  const issue = async (reply: FastifyReply, token: string): Promise<string> => {
    reply.setCookie(SESSION_COOKIE, token, opts.sessions.cookieOptions());
    const live = await opts.sessions.resolve(token);
    if (!live) throw new Unauthorized('the session ended');
    return live.session.csrf_token;
  };
  const clear = (reply: FastifyReply) => reply.clearCookie(SESSION_COOKIE, { path: '/' });

  app.post('/auth/login', {
    config: { public: true, rateLimit: limit },
    preValidation: jsonOnly,
    schema: {
      tags: ['auth'], summary: 'Sign in with e-mail and password; sets the session cookie. Then, by stage: enter a code (password), set up a second factor (enrol), or done (full)',
      security: [],
      body: Type.Object({ email: Type.String({ minLength: 1, maxLength: 254 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: SignedIn, 401: Failed, 423: Failed, 429: errorRef },
    },
  }, async (req, reply) => {
    // failures per account are counted where the per-address limit is: in the app's Redis, shared by every API process
    const r = await opts.accounts.login(req.body.email, req.body.password, { ...ctxOf(req), counters: opts.store });
    if (!r.ok) {
      if (r.reason === 'locked') return locked(reply, r.retryAfterSeconds);
      if (r.reason === 'throttled') return throttled(reply, r.retryAfterSeconds);
      return reply.status(401).send({ error: 'Unauthorized', message: 'wrong e-mail or password', reason: 'invalid' });
    }
    return { stage: r.stage, csrfToken: await issue(reply, r.token) };
  });

  app.post('/auth/code', {
    config: { partialSession: true, rateLimit: limit },
    schema: {
      tags: ['auth'], summary: 'Second factor: a 6-digit TOTP code (each accepted once) or a recovery code (single use)',
      body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 40 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({ ...SignedIn.properties, usedRecoveryCode: Type.Boolean(), recoveryCodesLeft: Type.Integer() }),
        401: Failed, 409: errorRef, 423: Failed, 429: errorRef,
      },
    },
  }, async (req, reply) => {
    const r = await opts.accounts.verifyCode(sessionOfRequest(req), req.body.code, ctxOf(req));
    if (!r.ok) {
      if (r.reason === 'locked') return locked(reply, r.retryAfterSeconds);
      return reply.status(401).send({ error: 'Unauthorized', message: r.reason === 'reused' ? 'this code was used already; wait for the next one' : 'wrong code', reason: r.reason });
    }
    return { stage: 'full' as const, csrfToken: await issue(reply, r.token), usedRecoveryCode: r.usedRecoveryCode, recoveryCodesLeft: r.recoveryCodesLeft };
  });

  app.post('/auth/enrol/start', {
    config: { partialSession: true },
    schema: {
      tags: ['auth'], summary: 'Start setting up an authenticator app (at first sign-in, or to replace it): secret, otpauth URI and QR code',
      response: { 200: Type.Object({ secret: Type.String(), otpauthUri: Type.String(), qrSvg: Type.String() }), 403: errorRef, 503: errorRef },
    },
  }, async (req) => opts.accounts.startEnrolment(sessionOfRequest(req)));

  app.post('/auth/enrol/confirm', {
    config: { partialSession: true },
    schema: {
      tags: ['auth'], summary: 'Confirm the authenticator app with a first code; returns ten recovery codes, shown only now',
      body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 40 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ ...SignedIn.properties, recoveryCodes: Type.Array(Type.String()) }), 400: errorRef, 403: errorRef, 503: errorRef },
    },
  }, async (req, reply) => {
    const r = await opts.accounts.confirmEnrolment(sessionOfRequest(req), req.body.code, ctxOf(req));
    if (!r.ok) throw new Invalid('wrong code', [{ path: 'code', message: 'does not match the new secret (check the clock of the device)' }]);
    return { stage: 'full' as const, csrfToken: await issue(reply, r.token), recoveryCodes: r.recoveryCodes };
  });

  app.post('/auth/logout', {
    config: { partialSession: true },
    schema: { tags: ['auth'], summary: 'End this session', response: { 204: Type.Null() } },
  }, async (req, reply) => {
    await opts.accounts.logout(sessionOfRequest(req), ctxOf(req));
    return clear(reply).status(204).send();
  });

  app.post('/auth/logout-all', {
    config: { provider: true },
    schema: { tags: ['auth'], summary: 'End every session of this user (all browsers), this one included', response: { 200: Type.Object({ ended: Type.Integer() }) } },
  }, async (req, reply) => {
    const ended = await opts.accounts.logoutEverywhere(sessionOfRequest(req), ctxOf(req));
    clear(reply);
    return { ended };
  });

  app.get('/auth/me', {
    config: { partialSession: true },
    schema: {
      tags: ['auth'], summary: 'Who is signed in: user, stage, the tenant and role acted in, CSRF token',
      response: {
        200: Type.Object({
          user: UserViewSchema, stage: Stage, role: AnyRole, viaProviderGrant: Type.Boolean(), csrfToken: Type.String(),
          tenant: nullable(Type.Object({ id: Type.String({ format: 'uuid' }), slug: Type.String(), name: Type.String() })),
        }),
        401: errorRef,
      },
    },
  }, async (req) => opts.accounts.me(sessionOfRequest(req)));

  app.post('/auth/password', {
    config: { provider: true },
    schema: {
      tags: ['auth'], summary: 'Change the password (the current one is needed); ends every other session',
      body: Type.Object({ current: Type.String({ minLength: 1, maxLength: 1024 }), next: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), 400: errorRef, 423: errorRef },
    },
  }, async (req, reply) => {
    await opts.accounts.changePassword(sessionOfRequest(req), req.body.current, req.body.next, ctxOf(req));
    return reply.status(204).send(null);
  });

  app.post('/auth/invite/info', {
    config: { public: true, rateLimit: limit },
    preValidation: jsonOnly,
    schema: {
      tags: ['auth'], summary: 'Whom an invitation is for (the token travels in the body, never in a logged URL)', security: [],
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ email: Type.String(), name: Type.String() }), 404: errorRef },
    },
  }, async (req, reply) => {
    const info = await opts.accounts.inviteInfo(req.body.token);
    return info ?? reply.status(404).send({ error: 'NotFound', message: 'invitation not found (unknown, used or expired)' });
  });

  app.post('/auth/invite', {
    config: { public: true, rateLimit: limit },
    preValidation: jsonOnly,
    schema: {
      tags: ['auth'], summary: 'Accept an invitation: set the password (at least 12 characters); then sign in normally', security: [],
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ user: UserViewSchema }), 400: errorRef, 404: errorRef },
    },
  }, async (req) => ({ user: await opts.accounts.acceptInvite(req.body.token, req.body.password, ctxOf(req)) }));
}

