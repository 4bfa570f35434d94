import type { Clock } from '../clock.js';
import type { Kysely, Transaction } from 'kysely';
import QRCode from 'qrcode';
import type { DB, RecoveryCode, Role, UserRole } from '../../db/schema.js';
import { UserRepository, type UserRow } from '../../db/repositories/user.repository.js';
import { AccountRepository } from '../../db/repositories/account.repository.js';
import type { AuditActor, AuditEvent, AuditService } from '../audit/audit.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import type { Config } from '../config.js';
import { Conflict, DomainError, Forbidden, Invalid, NotFound } from '../errors.js';
import type { Principal } from './principal.js';
import { actorOf } from './principal.js';
import {
  SecretBox, hashPassword, newRecoveryCodes, newTotpSecret, normaliseRecoveryCode, passwordProblem, randomToken, sha256, totpStep, totpUri, verifyPassword,
} from './crypto.js';
import { MFA_ROLES, stageAfterPassword, type LiveSession, type SessionService } from './session.service.js';
import { LoginLimits, type LoginLimitsConfig } from './login-limits.js';
import type { AccountApi, CodeResult, Enrolment, Invitation, LoginResult, RequestContext, UserView } from './account.types.js';

export const INVITE_HOURS = 72;
/** However often an account is locked again, one lock lasts at most a day (or the configured base, if longer). */
const MAX_LOCK_SECONDS = 86_400;

export const normaliseEmail = (email: string) => email.trim().toLowerCase();

export function userView(u: UserRow, now: Date): UserView {
  return {
    id: u.id, email: u.email, name: u.name, role: u.role, tenantId: u.tenant_id,
    mfa: u.totp_enabled_at !== null, sso: u.oidc_subject !== null, disabled: u.disabled_at !== null,
    locked: u.locked_until !== null && u.locked_until > now,
    createdAt: u.created_at.toISOString(), lastLoginAt: u.last_login_at?.toISOString() ?? null,
  };
}

const userActor = (u: UserRow): AuditActor => ({ name: u.email, kind: 'session', userId: u.id });
const ANONYMOUS: AuditActor = { name: 'anonymous', kind: 'anonymous' };

/**
 * A provider admin acting inside a tenant by the tenant's grant (the principal's role is the grant's). Whatever such a
 * person creates there must not outlive the grant: no users, no admins, no reset second factors (like tokens and grants).
 */
export const actsByGrant = (by: Principal): boolean => by.session?.user.role === 'provider-admin' && !!by.tenantId;

const BY_GRANT = 'only the tenant\'s own admins may do this: a provider admin acting by a grant cannot create users or admins, or reset second factors (they would outlive the grant)';

/** The users a principal administers: a tenant's (its admins), or outside every tenant the provider's own admins. */
export function adminScope(by: Principal): string | null {
  if (by.role === 'provider-admin' && !by.tenantId) return null;
  if (by.role !== 'admin' || !by.tenantId) throw new Forbidden(`this needs the role admin; you have ${by.role}`);
  return by.tenantId;
}

/**
 * Sign-in with password and TOTP, sessions, lockout, invitations and the
 * administration of users (issue #5). The JSON routes and the HTML pages both
 * call this; neither re-implements a rule.
 */
export class AccountService implements AccountApi {
  readonly users: UserRepository;
  readonly repo: AccountRepository;
  /** Failed sign-ins per account key (a keyed hash of what was typed), across API processes; flood records aggregated. */
  readonly limits: LoginLimits;
  private readonly clock: Clock;
  private readonly publicUrl: string;
  private box?: SecretBox;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly cfg: Config['auth'],
    opts: { publicUrl?: string; clock: Clock; loginLimits?: LoginLimitsConfig },
  ) {
    this.users = new UserRepository(db, opts.clock);
    this.repo = new AccountRepository(db, opts.clock);
    this.clock = opts.clock;
    this.publicUrl = (opts.publicUrl ?? '').replace(/\/+$/, '');
    this.limits = new LoginLimits(cfg.secretKey, opts.loginLimits);
  }

  // ---- sign-in ------------------------------------------------------------------------------------

  async login(email: string, password: string, ctx: RequestContext): Promise<LoginResult> {
    const typed = normaliseEmail(email).slice(0, 200);
    // what was typed is never stored (it may be a password typed into the wrong field): the account is its keyed hash
    const account = this.limits.accountKey(typed);
    const throttled = await this.limits.blockedSeconds(account, ctx.counters);
    if (throttled > 0) {
      // the same for known and unknown addresses; counted for the account key's next record
      await this.limits.unrecorded(account, ctx.counters);
      return { ok: false, reason: 'throttled', retryAfterSeconds: throttled };
    }
    const user = await this.users.byEmail(typed);
    if (!user) {
      await verifyPassword(password, null); // same time as a real check: no user enumeration by timing
      await this.limits.failed(account, ctx.counters);
      await this.floodRecord(account, ctx, { tenantId: null, action: 'login.failed', actor: ANONYMOUS, details: { account, reason: 'unknown-user' }, ip: ctx.ip });
      return { ok: false, reason: 'invalid' };
    }
    const lockedFor = this.lockedSeconds(user);
    if (lockedFor > 0) {
      await this.limits.failed(account, ctx.counters);
      await this.floodRecord(account, ctx, { tenantId: user.tenant_id, action: 'login.failed', actor: ANONYMOUS, subject: subj(user), details: { email: user.email, reason: 'locked' }, ip: ctx.ip });
      return { ok: false, reason: 'locked', retryAfterSeconds: lockedFor };
    }
    const ok = await verifyPassword(password, user.password_hash);
    const tenantOff = user.tenant_id !== null && (await this.repo.tenant(user.tenant_id))?.disabled_at;
    if (user.disabled_at || tenantOff) {
      await this.limits.failed(account, ctx.counters);
      await this.floodRecord(account, ctx, { tenantId: user.tenant_id, action: 'login.failed', actor: ANONYMOUS, subject: subj(user), details: { email: user.email, reason: 'disabled' }, ip: ctx.ip });
      return { ok: false, reason: 'invalid' };
    }
    if (!ok) {
      await this.limits.failed(account, ctx.counters);
      return this.failure(user, 'password', ctx);
    }

    const stage = stageAfterPassword(user);
    const done = await this.db.transaction().execute(async (trx) => {
      const u = (await this.repo.lockUser(user.id, trx))!;
      // a parallel wrong attempt may have locked the account while the password was being checked
      const wait = this.lockedSeconds(u);
      if (wait > 0) return { wait };
      // with a second factor, the failure counter is reset only after the code: a known password must not buy fresh code guesses
      // (someone who must still enrol has no code to guess: the password was the whole proof so far)
      if (stage === 'enrol') await this.users.update(u.id, { failed_logins: 0, locked_until: null }, trx);
      if (stage !== 'full') return { wait: 0 };
      await this.users.update(u.id, { failed_logins: 0, locked_until: null, last_login_at: this.clock() }, trx);
      return { wait: 0, rec: await this.audit.record({ tenantId: u.tenant_id, action: 'login.succeeded', actor: userActor(u), subject: subj(u), details: { method: 'password' }, ip: ctx.ip }, trx) };
    });
    if (done.wait > 0) return { ok: false, reason: 'locked', retryAfterSeconds: done.wait };
    if (done.rec) this.audit.anchor(done.rec);
    const { token } = await this.sessions.start(user, { stage, method: 'password', ip: ctx.ip, userAgent: ctx.userAgent });
    return { ok: true, token, stage, user };
  }

  async verifyCode(live: LiveSession, code: string, ctx: RequestContext): Promise<CodeResult> {
    if (live.session.stage !== 'password') throw new Conflict('no code is expected now: this session is not waiting for a second factor');
    const lockedFor = this.lockedSeconds(live.user);
    if (lockedFor > 0) return { ok: false, reason: 'locked', retryAfterSeconds: lockedFor };
    const compact = code.replace(/\s/g, '');
    const isTotp = /^\d{6}$/.test(compact);
    const box = isTotp ? this.secretBox() : undefined;

    type Outcome = { ok: true; recovery: boolean; left: number; rec: LedgerRecord[] } | { ok: false; reason: 'invalid' | 'reused' | 'locked'; wait?: number };
    const out: Outcome = await this.db.transaction().execute(async (trx): Promise<Outcome> => {
      const u = await this.repo.lockUser(live.user.id, trx);
      if (!u || !u.totp_secret_enc || !u.totp_enabled_at) return { ok: false, reason: 'invalid' };
      const wait = this.lockedSeconds(u);
      if (wait > 0) return { ok: false, reason: 'locked', wait };
      const codes = u.recovery_codes;
      let recovery = false;
      if (isTotp) {
        const step = totpStep(box!.open(u.totp_secret_enc), compact, this.clock());
        if (step === null) return { ok: false, reason: 'invalid' };
        if (u.totp_last_step !== null && step <= Number(u.totp_last_step)) return { ok: false, reason: 'reused' };
        await this.users.update(u.id, { totp_last_step: step, failed_logins: 0, locked_until: null, last_login_at: this.clock() }, trx);
      } else {
        const hash = sha256(normaliseRecoveryCode(code));
        const hit = codes.find((c) => c.hash === hash);
        if (!hit) return { ok: false, reason: 'invalid' };
        if (hit.usedAt) return { ok: false, reason: 'reused' };
        hit.usedAt = this.clock().toISOString();
        recovery = true;
        await this.users.update(u.id, { recovery_codes: JSON.stringify(codes), failed_logins: 0, locked_until: null, last_login_at: this.clock() }, trx);
      }
      const left = codes.filter((c) => !c.usedAt).length;
      const rec = [await this.audit.record({ tenantId: u.tenant_id, action: 'login.succeeded', actor: userActor(u), subject: subj(u), details: { method: recovery ? 'password+recovery-code' : 'password+totp' }, ip: ctx.ip }, trx)];
      if (recovery) rec.push(await this.audit.record({ tenantId: u.tenant_id, action: 'mfa.recovery-code-used', actor: userActor(u), subject: subj(u), details: { recoveryCodesLeft: left }, ip: ctx.ip }, trx));
      return { ok: true, recovery, left, rec };
    });
    if (!out.ok) {
      if (out.reason === 'invalid') {
        const f = await this.failure(live.user, 'code', ctx);
        return f.reason === 'locked' ? { ok: false, reason: 'locked', retryAfterSeconds: f.retryAfterSeconds } : { ok: false, reason: 'invalid' };
      }
      if (out.reason === 'reused') await this.record({ tenantId: live.user.tenant_id, action: 'login.failed', actor: ANONYMOUS, subject: subj(live.user), details: { email: live.user.email, reason: 'code-reused' }, ip: ctx.ip });
      return { ok: false, reason: out.reason, ...(out.wait && { retryAfterSeconds: out.wait }) };
    }
    out.rec.forEach((r) => this.audit.anchor(r));
    const token = await this.sessions.advance(live.session, { stage: 'full' });
    return { ok: true, token, usedRecoveryCode: out.recovery, recoveryCodesLeft: out.left };
  }

  /** Seconds the account stays locked (0: not locked). */
  private lockedSeconds(u: Pick<UserRow, 'locked_until'>): number {
    const ms = (u.locked_until?.getTime() ?? 0) - this.clock().getTime();
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  /**
   * One more consecutive failure (wrong password or wrong code). Every
   * maxFailures-th failure locks the account, for lockSeconds the first time
   * and twice as long for each further lock while the failures go on.
   */
  private async failure(user: UserRow, what: 'password' | 'code', ctx: RequestContext): Promise<Extract<LoginResult, { ok: false }>> {
    const r = await this.db.transaction().execute(async (trx) => {
      const u = (await this.repo.lockUser(user.id, trx))!;
      const wait = this.lockedSeconds(u);
      if (wait > 0) return { failures: u.failed_logins, wait, lockSeconds: 0 };
      const failures = u.failed_logins + 1;
      let lockSeconds = 0;
      if (failures % this.cfg.maxFailures === 0) {
        const nth = failures / this.cfg.maxFailures;
        lockSeconds = Math.min(this.cfg.lockSeconds * 2 ** (nth - 1), Math.max(this.cfg.lockSeconds, MAX_LOCK_SECONDS));
      }
      const until = lockSeconds ? new Date(this.clock().getTime() + lockSeconds * 1000) : undefined;
      await this.users.update(u.id, { failed_logins: failures, ...(until && { locked_until: until }) }, trx);
      return { failures, wait: lockSeconds, lockSeconds };
    });
    await this.record({ tenantId: user.tenant_id, action: 'login.failed', actor: ANONYMOUS, subject: subj(user), details: { email: user.email, reason: `wrong-${what}`, failures: r.failures }, ip: ctx.ip });
    if (r.lockSeconds) {
      await this.record({ tenantId: user.tenant_id, action: 'login.locked', actor: { name: 'system', kind: 'system' }, subject: subj(user), details: { email: user.email, failures: r.failures, lockSeconds: r.lockSeconds }, ip: ctx.ip });
    }
    return r.wait > 0 ? { ok: false, reason: 'locked', retryAfterSeconds: r.wait } : { ok: false, reason: 'invalid' };
  }

  // ---- second factor set-up -----------------------------------------------------------------------

  private secretBox(): SecretBox {
    if (!this.cfg.secretKey) {
      throw new DomainError(503, 'ServiceUnavailable', 'two-factor authentication is not configured: set ERNSTFALL_SECRET_KEY_FILE (npm run setup creates .ernstfall/secrets/secret-key)');
    }
    return (this.box ??= new SecretBox(this.cfg.secretKey, 'totp-secret-v1'));
  }

  private static enrolAllowed(live: LiveSession): void {
    // a session that still owes its code must not set up a new second factor instead of entering it
    if (live.session.stage !== 'enrol' && live.session.stage !== 'full') throw new Forbidden('enter the code of your authenticator app first');
  }

  async startEnrolment(live: LiveSession): Promise<Enrolment> {
    AccountService.enrolAllowed(live);
    const box = this.secretBox();
    const secret = newTotpSecret();
    const sealed = box.seal(secret);
    // the working secret stays until the new one is confirmed
    await this.users.update(live.user.id, live.user.totp_enabled_at ? { totp_pending_enc: sealed } : { totp_secret_enc: sealed, totp_pending_enc: null });
    const otpauthUri = totpUri(secret, live.user.email);
    return { secret, otpauthUri, qrSvg: await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) };
  }

  async confirmEnrolment(live: LiveSession, code: string, ctx: RequestContext): Promise<{ ok: true; token: string; recoveryCodes: string[] } | { ok: false }> {
    AccountService.enrolAllowed(live);
    const box = this.secretBox();
    const recoveryCodes = newRecoveryCodes();
    const stored: RecoveryCode[] = recoveryCodes.map((c) => ({ hash: sha256(normaliseRecoveryCode(c)), usedAt: null }));
    const firstLogin = live.session.stage === 'enrol';
    const rec = await this.db.transaction().execute(async (trx) => {
      const u = await this.repo.lockUser(live.user.id, trx);
      const pending = u?.totp_enabled_at ? u.totp_pending_enc : u?.totp_secret_enc;
      if (!u || !pending) return undefined;
      const step = totpStep(box.open(pending), code.replace(/\s/g, ''), this.clock());
      if (step === null) return undefined;
      const now = this.clock();
      await this.users.update(u.id, {
        totp_secret_enc: pending, totp_pending_enc: null, totp_enabled_at: now, totp_last_step: step, recovery_codes: JSON.stringify(stored),
        ...(firstLogin && { failed_logins: 0, locked_until: null, last_login_at: now }),
      }, trx);
      const recs = [await this.audit.record({ tenantId: u.tenant_id, action: 'mfa.enrolled', actor: userActor(u), subject: subj(u), details: { replaced: u.totp_enabled_at !== null }, ip: ctx.ip }, trx)];
      if (firstLogin) recs.push(await this.audit.record({ tenantId: u.tenant_id, action: 'login.succeeded', actor: userActor(u), subject: subj(u), details: { method: 'password+totp-enrolment' }, ip: ctx.ip }, trx));
      return recs;
    });
    if (!rec) return { ok: false };
    rec.forEach((r) => this.audit.anchor(r));
    const token = await this.sessions.advance(live.session, { stage: 'full' });
    return { ok: true, token, recoveryCodes };
  }

  // ---- sessions and password ----------------------------------------------------------------------

  async logout(live: LiveSession, ctx: RequestContext): Promise<void> {
    await this.sessions.end(live.session.id);
    await this.record({ tenantId: live.user.tenant_id, action: 'logout', actor: userActor(live.user), subject: subj(live.user), ip: ctx.ip });
  }

  async logoutEverywhere(live: LiveSession, ctx: RequestContext): Promise<number> {
    const n = await this.sessions.endAll(live.user.id);
    await this.record({ tenantId: live.user.tenant_id, action: 'logout.everywhere', actor: userActor(live.user), subject: subj(live.user), details: { sessionsEnded: n }, ip: ctx.ip });
    return n;
  }

  async changePassword(live: LiveSession, current: string, next: string, ctx: RequestContext): Promise<void> {
    const lockedFor = this.lockedSeconds(live.user);
    if (lockedFor > 0) throw new DomainError(423, 'Locked', `too many failed attempts: try again in ${lockedFor} s`, undefined, { retryAfterSeconds: lockedFor });
    if (!(await verifyPassword(current, live.user.password_hash))) {
      // a stolen session must not be a free password oracle
      await this.failure(live.user, 'password', ctx);
      throw new Invalid('the current password is wrong', [{ path: 'current', message: 'wrong password' }]);
    }
    const problem = passwordProblem(next, live.user.email);
    if (problem) throw new Invalid('the new password does not meet the rules', [{ path: 'next', message: problem }]);
    const hash = await hashPassword(next);
    const rec = await this.db.transaction().execute(async (trx) => {
      await this.users.update(live.user.id, { password_hash: hash, failed_logins: 0 }, trx);
      const ended = await this.repo.revokeOtherSessions(live.user.id, live.session.id, trx);
      return this.audit.record({ tenantId: live.user.tenant_id, action: 'password.changed', actor: userActor(live.user), subject: subj(live.user), details: { otherSessionsEnded: ended }, ip: ctx.ip }, trx);
    });
    this.audit.anchor(rec);
  }

  // ---- invitations --------------------------------------------------------------------------------

  /** Creates an invited user (no password yet) inside the caller's transaction; the caller records the audit event it returns. */
  async createInvited(trx: Transaction<DB>, input: { tenantId: string | null; email: string; name: string; role: UserRole; createdBy: string }): Promise<{ invitation: Invitation; user: UserRow; renewed: boolean }> {
    const email = normaliseEmail(input.email);
    const token = randomToken('efi_');
    const expiresAt = new Date(this.clock().getTime() + INVITE_HOURS * 3600_000);
    const existing = await this.users.byEmail(email, trx);
    let user: UserRow;
    if (existing) {
      // an invitation not yet accepted may be sent again (new link, the old one stops working); anything else is a conflict
      const pending = existing.password_hash === null && existing.oidc_subject === null && existing.tenant_id === input.tenantId && !existing.disabled_at;
      if (!pending) throw new Conflict('this e-mail address is already in use');
      user = (await this.users.update(existing.id, { invite_token_hash: sha256(token), invite_expires_at: expiresAt, name: input.name, role: input.role }, trx))!;
    } else {
      user = await this.users.insert({
        tenant_id: input.tenantId, email, name: input.name, role: input.role, created_by: input.createdBy,
        invite_token_hash: sha256(token), invite_expires_at: expiresAt,
      }, trx);
    }
    return { user, renewed: !!existing, invitation: { user: userView(user, this.clock()), inviteUrl: `${this.publicUrl}/invite/${token}`, inviteToken: token, expiresAt: expiresAt.toISOString() } };
  }

  async invite(by: Principal, input: { email: string; name: string; role: Role | UserRole }, ctx: RequestContext): Promise<Invitation> {
    const tenantId = adminScope(by);
    // an account invited by grant would let the provider back in after the grant ends (an admin could even grant anew)
    if (actsByGrant(by)) throw new Forbidden(BY_GRANT);
    let role = input.role;
    if (tenantId === null) {
      // outside every tenant a provider admin invites only further provider admins
      if (role !== 'admin' && role !== 'provider-admin') throw new Invalid('provider admins invite only provider admins', [{ path: 'role', message: 'must be admin (a provider admin)' }]);
      role = 'provider-admin';
    } else if (role === 'provider-admin') {
      throw new Invalid('provider admins are invited by provider admins', [{ path: 'role', message: 'must be admin, operator, reviewer or auditor' }]);
    }
    const { invitation, rec } = await this.db.transaction().execute(async (trx) => {
      const r = await this.createInvited(trx, { tenantId, email: input.email, name: input.name, role, createdBy: by.name });
      const rec = await this.audit.record({ tenantId, action: 'user.created', actor: actorOf(by), subject: subj(r.user), details: { email: r.user.email, role, invited: true, ...(r.renewed && { invitedAgain: true }) }, ip: ctx.ip }, trx);
      return { ...r, rec };
    });
    this.audit.anchor(rec);
    return invitation;
  }

  async inviteInfo(inviteToken: string): Promise<{ email: string; name: string } | undefined> {
    if (!inviteToken.startsWith('efi_') || inviteToken.length > 100) return undefined;
    const u = await this.users.byInvite(sha256(inviteToken));
    return u && !u.disabled_at ? { email: u.email, name: u.name } : undefined;
  }

  async acceptInvite(inviteToken: string, password: string, ctx: RequestContext): Promise<UserView> {
    const info = await this.inviteInfo(inviteToken);
    if (!info) throw new NotFound('invitation (unknown, used or expired)');
    const problem = passwordProblem(password, info.email);
    if (problem) throw new Invalid('the password does not meet the rules', [{ path: 'password', message: problem }]);
    const hash = await hashPassword(password);
    const { user, rec } = await this.db.transaction().execute(async (trx) => {
      const user = await this.repo.acceptInvite(sha256(inviteToken), hash, trx);
      if (!user) return { user };
      return { user, rec: await this.audit.record({ tenantId: user.tenant_id, action: 'invite.accepted', actor: userActor(user), subject: subj(user), ip: ctx.ip }, trx) };
    });
    if (!user || !rec) throw new NotFound('invitation (unknown, used or expired)');
    this.audit.anchor(rec);
    return userView(user, this.clock());
  }

  /** Who is signed in, in which stage, acting in which tenant with which role (GET /auth/me and the pages' header). */
  async me(live: LiveSession): Promise<{ user: UserView; stage: LiveSession['session']['stage']; role: UserRole; tenant: { id: string; slug: string; name: string } | null; viaProviderGrant: boolean; csrfToken: string }> {
    const t = live.tenantId ? await this.repo.tenant(live.tenantId) : undefined;
    return {
      user: userView(live.user, this.clock()), stage: live.session.stage, role: live.role,
      tenant: t ? { id: t.id, slug: t.slug, name: t.name } : null,
      viaProviderGrant: live.user.role === 'provider-admin' && live.tenantId !== null,
      csrfToken: live.session.csrf_token,
    };
  }

  // ---- administration -----------------------------------------------------------------------------

  async listUsers(by: Principal): Promise<UserView[]> {
    const now = this.clock();
    return (await this.users.list(adminScope(by))).map((u) => userView(u, now));
  }

  async changeUser(by: Principal, userId: string, patch: { role?: Role; disabled?: boolean; resetMfa?: boolean; name?: string }, ctx: RequestContext): Promise<UserView> {
    const tenantId = adminScope(by);
    if (patch.resetMfa && actsByGrant(by)) throw new Forbidden(BY_GRANT);
    const { user, recs } = await this.db.transaction().execute(async (trx) => {
      const admins = await this.repo.enabledAdminsForUpdate(tenantId, trx);
      const u = await this.users.inTenant(tenantId, userId, trx);
      if (!u) throw new NotFound(`user ${userId}`);
      if (patch.role !== undefined && tenantId === null) throw new Invalid('provider admins have no other role', [{ path: 'role', message: 'cannot be changed for a provider admin' }]);
      const set: Parameters<UserRepository['update']>[1] = {};
      const events: Omit<AuditEvent, 'tenantId' | 'actor' | 'subject' | 'ip'>[] = [];
      const changed: Record<string, { from: unknown; to: unknown }> = {};
      if (patch.name !== undefined && patch.name !== u.name) { set.name = patch.name; changed.name = { from: u.name, to: patch.name }; }
      if (patch.role !== undefined && patch.role !== u.role) { set.role = patch.role; changed.role = { from: u.role, to: patch.role }; }
      // making someone admin by grant is creating an admin (the form sends the unchanged role along: only a change counts)
      if (set.role === 'admin' && actsByGrant(by)) throw new Forbidden(BY_GRANT);
      if (Object.keys(changed).length) events.push({ action: 'user.changed', details: changed });
      if (patch.disabled === true && !u.disabled_at) { set.disabled_at = this.clock(); events.push({ action: 'user.disabled' }); }
      if (patch.disabled === false && u.disabled_at) { Object.assign(set, { disabled_at: null, failed_logins: 0, locked_until: null }); events.push({ action: 'user.enabled' }); }
      if (patch.resetMfa) {
        Object.assign(set, { totp_secret_enc: null, totp_pending_enc: null, totp_enabled_at: null, totp_last_step: null, recovery_codes: '[]' });
        events.push({ action: 'mfa.reset', details: { hadMfa: u.totp_enabled_at !== null } });
      }
      // nobody may leave a tenant (or the provider) without an enabled admin
      const stillAdmin = (set.role ?? u.role) === u.role && !set.disabled_at;
      if (admins.includes(u.id) && !stillAdmin && admins.length === 1) {
        throw new Conflict(u.id === by.userId ? 'you are the last enabled admin: make someone else admin first' : 'this is the last enabled admin');
      }
      if (!events.length) return { user: u, recs: [] };
      const user = (await this.users.update(u.id, set, trx))!;
      // a promotion to a role that needs a second factor: sessions signed in without one end
      const needsMfaNow = set.role !== undefined && MFA_ROLES.includes(set.role) && !MFA_ROLES.includes(u.role) && !u.totp_enabled_at;
      if (set.disabled_at || patch.resetMfa || needsMfaNow) await this.users.revokeAllSessions(u.id, trx);
      // tokens may not carry more than their user's role: a demotion revokes the tokens above it
      if (set.role && set.role !== 'admin') await this.repo.revokeTokensExcept(u.id, [set.role as Role], trx);
      const recs: LedgerRecord[] = [];
      for (const e of events) recs.push(await this.audit.record({ ...e, tenantId, actor: actorOf(by), subject: subj(u), ip: ctx.ip }, trx));
      return { user, recs };
    });
    recs.forEach((r) => this.audit.anchor(r));
    return userView(user, this.clock());
  }

  // ---- helpers ------------------------------------------------------------------------------------

  /**
   * A failed sign-in that can come in floods (unknown address, locked or disabled account): at most one record per
   * account key and window; the record carries how many failures of the key got none of their own since its previous one.
   */
  private async floodRecord(account: string, ctx: RequestContext, e: AuditEvent): Promise<void> {
    const slot = await this.limits.recordSlot(account, ctx.counters);
    if (!slot.record) return;
    await this.record({ ...e, details: { ...e.details, ...(slot.unrecordedBefore > 0 && { unrecordedBefore: slot.unrecordedBefore }) } });
  }

  /** Records an event in a transaction of its own (login events: the attempt already happened, whatever the ledger says). */
  private async record(e: AuditEvent): Promise<void> {
    await this.audit.record(e);
  }
}

const subj = (u: Pick<UserRow, 'id'>) => ({ type: 'user', id: u.id });
