import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Show-once values after a redirect (a new API token, an invitation link,
 * recovery codes): post/redirect/get without server-side storage, and without
 * the secret in a URL (which would end up in history and logs). The value
 * rides in a short-lived HTTP-only cookie, scoped to the one page that shows
 * it and bound to the session; that page reads it once and deletes it.
 */
const FLASH = 'ef_flash';
const MAX_AGE = 300;

interface Flash { sid: string; kind: string; data: unknown }

export function setFlash(reply: FastifyReply, o: { sessionId: string; kind: string; data: unknown; path: string; secure: boolean }): void {
  const value = Buffer.from(JSON.stringify({ sid: o.sessionId, kind: o.kind, data: o.data } satisfies Flash)).toString('base64url');
  reply.setCookie(FLASH, value, { path: o.path, httpOnly: true, sameSite: 'strict', secure: o.secure, maxAge: MAX_AGE });
}

/** The value, once; undefined when there is none, it is for another session or of another kind. */
export function takeFlash<T>(req: FastifyRequest, reply: FastifyReply, o: { sessionId: string; kind: string; path: string }): T | undefined {
  const raw = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[FLASH];
  if (!raw) return undefined;
  reply.clearCookie(FLASH, { path: o.path });
  try {
    const f = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Flash;
    return f.sid === o.sessionId && f.kind === o.kind ? (f.data as T) : undefined;
  } catch {
    return undefined;
  }
}
