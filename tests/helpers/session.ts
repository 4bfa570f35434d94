import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { totpCode, TOTP_PERIOD } from '../../services/auth/crypto.js';
import { SESSION_COOKIE } from '../../services/auth/session.service.js';

/** A browser session in tests: the cookie header to send and the CSRF token of the session. */
export interface Session {
  cookie: string;
  csrf: string;
}

export interface Answer {
  status: number;
  body: any;
  headers: Record<string, unknown>;
}

/** The app, and its container when there is one: TOTP codes are computed on the server's clock. */
type HasApp = { app: FastifyInstance; c?: { clock: () => Date } };
const serverNow = (h: HasApp) => h.c?.clock() ?? new Date();

/** A client address of its own, so the per-address rate limit of /auth/login and /auth/code does not interfere between tests. */
export const someIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

/** The value of the session cookie a response sets ('' when it clears it), or undefined when it sets none. */
export function sessionCookie(headers: Record<string, unknown>): string | undefined {
  const raw = headers['set-cookie'];
  const all = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  for (const c of all as string[]) {
    const m = new RegExp(`^${SESSION_COOKIE}=([^;]*)`).exec(c);
    if (m) return m[1]!;
  }
  return undefined;
}

/**
 * A request with the session (cookie and, for unsafe methods, the CSRF
 * token). A new cookie or CSRF token in the answer (stage change, entering a
 * tenant) is taken over into `s`, like a browser does.
 */
export async function send(h: HasApp, s: Session | undefined, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, o: { csrf?: boolean; ip?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (s) headers.cookie = `${SESSION_COOKIE}=${s.cookie}`;
  if (s && method !== 'GET' && o.csrf !== false) headers['x-csrf-token'] = s.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await h.app.inject({ method, url, headers, payload: body === undefined ? undefined : JSON.stringify(body), ...(o.ip && { remoteAddress: o.ip }) });
  let parsed: unknown = res.body;
  try { parsed = JSON.parse(res.body); } catch { /* not JSON */ }
  const answer = { status: res.statusCode, body: parsed as any, headers: res.headers as Record<string, unknown> };
  const cookie = sessionCookie(answer.headers);
  if (s && cookie) s.cookie = cookie;
  if (s && typeof answer.body?.csrfToken === 'string') s.csrf = answer.body.csrfToken;
  return answer;
}

/** Enters a TOTP code; a code of a step already used is retried with the next step's code, then after waiting for the next step. */
export async function enterCode(h: HasApp, s: Session, totpSecret: string, ip = someIp()): Promise<Answer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const ahead of [0, TOTP_PERIOD * 1000]) {
      const res = await send(h, s, 'POST', '/auth/code', { code: totpCode(totpSecret, new Date(serverNow(h).getTime() + ahead)) }, { ip });
      if (res.status === 200 || res.body?.reason !== 'reused') return res;
    }
    // both codes of the window are used up: wait for the next 30-second step
    await new Promise((r) => setTimeout(r, TOTP_PERIOD * 1000 - (Date.now() % (TOTP_PERIOD * 1000)) + 50));
  }
  throw new Error('no unused TOTP code found');
}

/**
 * Signs in with password and, when the account has a second factor, a code of
 * `totpSecret`. Returns the session: stage `full`, or `enrol` when the user
 * must set up an authenticator app first (see `enrol`). Throws on anything else.
 */
export async function login(h: HasApp, email: string, password: string, totpSecret?: string, o: { ip?: string } = {}): Promise<Session & { stage: string }> {
  const ip = o.ip ?? someIp();
  const res = await send(h, undefined, 'POST', '/auth/login', { email, password }, { ip });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  const s = { cookie: sessionCookie(res.headers)!, csrf: res.body.csrfToken as string, stage: res.body.stage as string };
  if (s.stage === 'password') {
    if (!totpSecret) throw new Error(`login ${email}: a code is needed, but no TOTP secret was given`);
    const code = await enterCode(h, s, totpSecret, ip);
    if (code.status !== 200) throw new Error(`login ${email}: code ${code.status} ${JSON.stringify(code.body)}`);
    s.stage = 'full';
  }
  return s;
}

/** Sets up an authenticator app for a session in stage `enrol` (or re-enrols a full one); returns the secret and the recovery codes. */
export async function enrol(h: HasApp, s: Session & { stage?: string }): Promise<{ secret: string; recoveryCodes: string[] }> {
  const start = await send(h, s, 'POST', '/auth/enrol/start');
  if (start.status !== 200) throw new Error(`enrol/start: ${start.status} ${JSON.stringify(start.body)}`);
  const secret = start.body.secret as string;
  const done = await send(h, s, 'POST', '/auth/enrol/confirm', { code: totpCode(secret, serverNow(h)) });
  if (done.status !== 200) throw new Error(`enrol/confirm: ${done.status} ${JSON.stringify(done.body)}`);
  s.stage = 'full';
  return { secret, recoveryCodes: done.body.recoveryCodes as string[] };
}
