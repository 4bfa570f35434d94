/**
 * The contract between the account logic (services/auth/account.service.ts)
 * and its two front doors: the JSON API (/auth/…, /api/v1/users …) and the
 * server-rendered pages (services/web). Both call these methods; neither
 * re-implements a rule.
 */
import type { Role, SessionStage, UserRole } from '../../db/schema.js';
import type { UserRow } from '../../db/repositories/user.repository.js';
import type { LiveSession } from './session.service.js';
import type { Principal } from './principal.js';
import type { SharedCounters } from './login-limits.js';

export interface RequestContext {
  ip?: string;
  userAgent?: string;
  /** Where failed sign-ins per account are counted across API processes (the app's Redis); without it in this process's memory. */
  counters?: SharedCounters;
}

export type LoginResult =
  /** `token` is the new session cookie value; `stage` says what comes next (code, enrolment, or signed in). */
  | { ok: true; token: string; stage: SessionStage; user: UserRow }
  /**
   * Same answer for an unknown e-mail and a wrong password; `locked` (the account) and `throttled` (too many failures
   * for what was typed as e-mail, known or not) carry when to try again.
   */
  | { ok: false; reason: 'invalid' | 'locked' | 'throttled'; retryAfterSeconds?: number };

export type CodeResult =
  | { ok: true; token: string; usedRecoveryCode: boolean; recoveryCodesLeft: number }
  | { ok: false; reason: 'invalid' | 'reused' | 'locked'; retryAfterSeconds?: number };

export interface Enrolment {
  /** base32, for typing into an app by hand */
  secret: string;
  otpauthUri: string;
  /** the QR code of otpauthUri as an SVG document (no external resources) */
  qrSvg: string;
}

export interface UserView {
  id: string;
  email: string;
  name: string;
  role: UserRole;
  tenantId: string | null;
  mfa: boolean;
  sso: boolean;
  disabled: boolean;
  locked: boolean;
  createdAt: string;
  lastLoginAt: string | null;
}

export interface Invitation {
  user: UserView;
  /** one-time link to set a password (shown once): `${publicUrl}/invite/<token>` */
  inviteUrl: string;
  inviteToken: string;
  expiresAt: string;
}

export interface AccountApi {
  login(email: string, password: string, ctx: RequestContext): Promise<LoginResult>;
  /** TOTP code or recovery code, for a session in stage `password`. */
  verifyCode(session: LiveSession, code: string, ctx: RequestContext): Promise<CodeResult>;
  /** Starts (or restarts) enrolment for a session in stage `enrol` or `full` (re-enrol); the secret is kept sealed until confirmed. */
  startEnrolment(session: LiveSession): Promise<Enrolment>;
  /** Confirms with a first code; returns the new session token and ten recovery codes (shown once). */
  confirmEnrolment(session: LiveSession, code: string, ctx: RequestContext): Promise<{ ok: true; token: string; recoveryCodes: string[] } | { ok: false }>;
  logout(session: LiveSession, ctx: RequestContext): Promise<void>;
  logoutEverywhere(session: LiveSession, ctx: RequestContext): Promise<number>;
  changePassword(session: LiveSession, current: string, next: string, ctx: RequestContext): Promise<void>;
  /** Sets the password of an invited user; returns the user (who then logs in normally). */
  acceptInvite(inviteToken: string, password: string, ctx: RequestContext): Promise<UserView>;
  inviteInfo(inviteToken: string): Promise<{ email: string; name: string } | undefined>;

  // administration (principal = who acts; tenant rules and roles are checked inside: 404 for other tenants)
  listUsers(by: Principal): Promise<UserView[]>;
  invite(by: Principal, input: { email: string; name: string; role: Role }, ctx: RequestContext): Promise<Invitation>;
  changeUser(by: Principal, userId: string, patch: { role?: Role; disabled?: boolean; resetMfa?: boolean; name?: string }, ctx: RequestContext): Promise<UserView>;
}
