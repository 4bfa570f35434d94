import type { Clock } from '../clock.js';
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import * as oidc from 'openid-client';
import type { DB, Role } from '../../db/schema.js';
import { UserRepository, type UserRow } from '../../db/repositories/user.repository.js';
import { PROVIDER_TENANT_SLUG, TenantRepository, type TenantRow } from '../../db/repositories/tenant.repository.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Container } from '../container.js';
import { ConfigError, type OidcConfig } from '../config.js';
import { DomainError } from '../errors.js';
import type { RequestContext } from './account.types.js';
import { MFA_ROLES, type SessionService } from './session.service.js';
import { SecretBox, safeEqual } from './crypto.js';
import { amrOf, claimAt, claimValues, emailOf, mapRole, nameOf, verifiedEmailOf } from './oidc-claims.js';

export const OIDC_COOKIE = 'ef_oidc';
const STATE_SECONDS = 600;
const DISCOVERY_MAX_AGE_MS = 24 * 3600 * 1000;

/** Why a single sign-on was refused; each has its own test (tests/integration/oidc.test.ts). */
export type SsoReason =
  | 'SSO_STATE_INVALID' | 'SSO_IDP_ERROR' | 'SSO_RESPONSE_INVALID' | 'SSO_UNAVAILABLE'
  | 'SSO_TENANT_UNKNOWN' | 'SSO_TENANT_MISMATCH' | 'SSO_NO_ROLE' | 'SSO_NO_EMAIL' | 'SSO_EMAIL_TAKEN' | 'SSO_EMAIL_UNVERIFIED'
  | 'SSO_USER_DISABLED' | 'SSO_MFA_MISSING';

export class SsoError extends DomainError {
  constructor(readonly reason: SsoReason, statusCode: 400 | 403 | 503, message: string) {
    super(statusCode, { 400: 'BadRequest', 403: 'Forbidden', 503: 'ServiceUnavailable' }[statusCode], message, undefined, { reason });
  }
}

/** What the `ef_oidc` cookie carries between start and callback (sealed: AES-256-GCM, so neither readable nor forgeable). */
interface LoginState { s: string; n: string; v: string; r: string; e: number }

/** A relative, same-site path to return to after login; anything else becomes `/`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 500) return '/';
  // `//host` and `/\host` are protocol-relative to browsers; printable ASCII only (the app's own URLs arrive
  // percent-encoded), so nothing can split the Location header
  if (!/^\/(?![/\\])[\x21-\x5b\x5d-\x7e]*$/.test(next) || next.startsWith('/auth/oidc')) return '/';
  return next;
}

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Single sign-on over OpenID Connect (decision 008): authorization code flow
 * with PKCE, state and nonce; the IdP's groups/roles claim decides the role
 * on every login, users are created just in time, and nobody without a
 * mapped role gets in.
 */
export class OidcService {
  readonly redirectUri: string;
  private readonly users: UserRepository;
  private readonly tenants: TenantRepository;
  private readonly box: SecretBox;
  private readonly insecure: boolean;
  private discovered?: { at: number; config: Promise<oidc.Configuration> };

  constructor(
    private readonly db: Kysely<DB>,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly cfg: OidcConfig,
    publicUrl: string,
    private readonly opts: { allowInsecureIssuer?: boolean; secretKey?: Buffer; log?: Logger; clock: Clock },
  ) {
    this.redirectUri = `${publicUrl.replace(/\/+$/, '')}/auth/oidc/callback`;
    this.users = new UserRepository(db, opts.clock);
    this.tenants = new TenantRepository(db);
    const issuer = new URL(cfg.issuer);
    // plain HTTP only where nobody can listen in: an IdP on the same host (or a test)
    this.insecure = issuer.protocol === 'http:';
    if (this.insecure && !opts.allowInsecureIssuer && !isLoopback(issuer.hostname)) {
      throw new ConfigError(['ERNSTFALL_OIDC_ISSUER: must be https:// (plain http only to a loopback address such as http://127.0.0.1:8081)']);
    }
    if (!opts.secretKey) opts.log?.warn('ERNSTFALL_SECRET_KEY_FILE is not set: single sign-on login state is sealed with a per-process key (a login started on one API process fails on another)');
    this.box = new SecretBox(opts.secretKey ?? randomBytes(32), 'oidc-login-state');
  }

  get label(): string {
    return this.cfg.label;
  }

  /** Options of the `ef_oidc` cookie: only sent back to /auth/oidc, gone after ten minutes. SameSite=Lax lets the IdP's redirect carry it. */
  stateCookieOptions() {
    return { ...this.sessions.cookieOptions(STATE_SECONDS), path: '/auth/oidc' };
  }

  /** Options of the `ef_session` cookie this login sets (the session service's). */
  sessionCookieOptions() {
    return this.sessions.cookieOptions();
  }

  /** The IdP's metadata and keys, discovered on first use; a failed discovery is retried on the next login. */
  private configuration(): Promise<oidc.Configuration> {
    if (!this.discovered || performance.now() - this.discovered.at > DISCOVERY_MAX_AGE_MS) {
      const config = oidc.discovery(new URL(this.cfg.issuer), this.cfg.clientId, undefined, oidc.ClientSecretBasic(this.cfg.clientSecret), {
        execute: this.insecure ? [oidc.allowInsecureRequests] : [],
        timeout: 10,
      }).catch((err: Error) => {
        this.discovered = undefined;
        this.opts.log?.error({ err: err.message, issuer: this.cfg.issuer }, 'OpenID Connect discovery failed');
        throw new SsoError('SSO_UNAVAILABLE', 503, 'the single sign-on service cannot be reached right now; try again in a minute or sign in with your password');
      });
      this.discovered = { at: performance.now(), config };
    }
    return this.discovered.config;
  }

  /** The IdP's authorization URL and the sealed cookie value that must come back with the answer. */
  async start(next?: string): Promise<{ url: string; cookie: string }> {
    const config = await this.configuration();
    const state: LoginState = { s: oidc.randomState(), n: oidc.randomNonce(), v: oidc.randomPKCECodeVerifier(), r: safeNext(next), e: this.opts.clock().getTime() + STATE_SECONDS * 1000 };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(state.v),
      code_challenge_method: 'S256',
      state: state.s,
      nonce: state.n,
    });
    return { url: url.href, cookie: this.box.seal(JSON.stringify(state)) };
  }

  private openState(cookie: string | undefined): LoginState {
    try {
      const st = JSON.parse(this.box.open(cookie ?? '')) as LoginState;
      if (typeof st.s === 'string' && typeof st.n === 'string' && typeof st.v === 'string' && st.e > this.opts.clock().getTime()) return st;
    } catch { /* forged, from another key, or absent: same answer */ }
    throw new SsoError('SSO_STATE_INVALID', 400, 'this sign-in is unknown or has expired (ten minutes); start again');
  }

  /** The claims of the person: the ID token's, completed from userinfo when the role claim or e-mail is missing there. */
  private async claims(config: oidc.Configuration, tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>): Promise<{ claims: Record<string, unknown>; amr: string[] }> {
    const id = tokens.claims();
    if (!id) throw new SsoError('SSO_RESPONSE_INVALID', 400, 'the identity provider sent no ID token');
    let claims: Record<string, unknown> = { ...id };
    if (claimAt(claims, this.cfg.rolesClaim) === undefined || !emailOf(claims)) {
      const info = await oidc.fetchUserInfo(config, tokens.access_token, id.sub).catch((err: unknown) => { throw this.protocolError(err); });
      claims = { ...info, ...id };
    }
    // `amr` counts only from the signed ID token
    return { claims, amr: amrOf(id) };
  }

  private protocolError(err: unknown): SsoError {
    if (err instanceof SsoError) return err;
    if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError) {
      this.opts.log?.warn({ error: err.error, description: err.error_description }, 'identity provider refused the sign-in');
      return new SsoError('SSO_IDP_ERROR', 403, `the identity provider refused the sign-in (${err.error}${err.error_description ? `: ${err.error_description.slice(0, 200)}` : ''})`);
    }
    if (err instanceof oidc.ClientError) {
      this.opts.log?.warn({ err: err.message, code: err.code, cause: (err.cause as Error | undefined)?.message }, 'single sign-on response rejected');
      return new SsoError('SSO_RESPONSE_INVALID', 400, 'the answer of the identity provider could not be verified; start again');
    }
    this.opts.log?.error({ err: (err as Error)?.message }, 'single sign-on request failed');
    return new SsoError('SSO_UNAVAILABLE', 503, 'the single sign-on service cannot be reached right now; try again in a minute');
  }

  /**
   * Completes a login from the URL the IdP redirected the browser to. Returns
   * the new session token (stage full, method oidc) and where to go next.
   */
  async callback(currentUrl: URL, cookie: string | undefined, ctx: RequestContext): Promise<{ token: string; user: UserRow; next: string }> {
    const st = this.openState(cookie);
    const returned = currentUrl.searchParams.get('state');
    if (!returned || !safeEqual(returned, st.s)) throw new SsoError('SSO_STATE_INVALID', 400, 'this sign-in does not belong to this browser (state mismatch); start again');
    const config = await this.configuration();
    const issuer = config.serverMetadata().issuer;
    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: st.v, expectedState: st.s, expectedNonce: st.n, idTokenExpected: true })
      .catch((err: unknown) => { throw this.protocolError(err); });
    const { claims, amr } = await this.claims(config, tokens);
    const sub = String(claims.sub);
    const email = emailOf(claims);
    // the address counts as the person's only when the IdP says it verified it (not preferred_username/upn, not an unverified email)
    const emailVerified = email !== undefined && verifiedEmailOf(claims) === email;
    let user = await this.users.byOidc(issuer, sub);
    // like a failed password login: anonymous actor, the claimed identity in the details
    const refuse = async (reason: SsoReason, message: string, tenantId: string | null, extra: Record<string, unknown> = {}): Promise<never> => {
      await this.audit.record({
        tenantId, action: 'login.failed', actor: { name: 'anonymous', kind: 'anonymous' }, ...(user && { subject: { type: 'user', id: user.id } }),
        details: { method: 'oidc', issuer, subject: sub, ...(email && { email }), reason: reason.toLowerCase().replace(/_/g, '-'), ...extra }, ip: ctx.ip,
      });
      throw new SsoError(reason, 403, message);
    };

    const tenant = await this.tenantOf(claims);
    if (!tenant) return refuse('SSO_TENANT_UNKNOWN', 'your account belongs to no tenant known here (or the tenant is disabled); ask your IT', null);
    const role = mapRole(claimValues(claimAt(claims, this.cfg.rolesClaim)), this.cfg.roleMap);
    if (!role) {
      // removed from every mapped group: the IdP is the source of truth, so sessions still open end as well
      if (user) await this.sessions.endAll(user.id);
      return refuse('SSO_NO_ROLE', `no ernstfall role for your account; ask your IT to add you to one of the groups ${Object.keys(this.cfg.roleMap).join(', ')}`, tenant.id);
    }
    if (user && user.tenant_id !== tenant.id) return refuse('SSO_TENANT_MISMATCH', 'your account belongs to another tenant here; ask your IT', user.tenant_id);
    if (!email) return refuse('SSO_NO_EMAIL', 'the identity provider sent no e-mail address for your account (claim email); ask your IT', tenant.id);
    let link: UserRow | undefined;
    if (!user) {
      link = await this.users.byEmail(email);
      if (link && (link.tenant_id !== tenant.id || link.oidc_subject !== null)) {
        return refuse('SSO_EMAIL_TAKEN', 'another account here already uses your e-mail address; ask your administrator', tenant.id);
      }
      // linking takes the local account over (its password goes): only by an address the IdP verified, never by a login name
      if (link && !emailVerified) {
        return refuse('SSO_EMAIL_UNVERIFIED', 'an account here has your e-mail address, but the identity provider does not confirm that the address is yours (email_verified); ask your administrator', tenant.id);
      }
    }
    const target = user ?? link;
    if (target?.disabled_at) return refuse('SSO_USER_DISABLED', 'your ernstfall account is disabled; ask your administrator', tenant.id);
    if (MFA_ROLES.includes(role) && this.cfg.mfaAmr.length && !amr.some((m) => this.cfg.mfaAmr.includes(m))) {
      return refuse('SSO_MFA_MISSING', `the role ${role} needs a second factor: sign in at your organisation's login with a second factor (${this.cfg.mfaAmr.join(', ')}) and try again`, tenant.id, { role, amr });
    }

    user = await this.provision({ issuer, sub, email, emailVerified, name: nameOf(claims, email), role, tenant, existing: user, link });
    const { token } = await this.sessions.start(user, { stage: 'full', method: 'oidc', ip: ctx.ip, userAgent: ctx.userAgent });
    await this.audit.record({
      tenantId: user.tenant_id, action: 'login.succeeded', actor: { name: user.email, kind: 'session', userId: user.id },
      subject: { type: 'user', id: user.id }, details: { method: 'oidc', issuer, role, ...(amr.length && { amr }) }, ip: ctx.ip,
    });
    return { token, user, next: st.r };
  }

  private async tenantOf(claims: Record<string, unknown>): Promise<TenantRow | undefined> {
    let slug = this.cfg.tenant;
    if (this.cfg.tenantClaim) {
      const v = claimValues(claimAt(claims, this.cfg.tenantClaim));
      // a configured tenant claim that is missing or ambiguous never falls back to the default tenant
      if (v.length !== 1) return undefined;
      slug = v[0]!;
    }
    if (slug === PROVIDER_TENANT_SLUG) return undefined;
    const t = await this.tenants.bySlug(slug);
    return t && !t.disabled_at ? t : undefined;
  }

  /** Creates, links or updates the user; the IdP's role and name win on every login. */
  private async provision(p: { issuer: string; sub: string; email: string; emailVerified: boolean; name: string; role: Role; tenant: TenantRow; existing?: UserRow; link?: UserRow }): Promise<UserRow> {
    const records: LedgerRecord[] = [];
    const system = { name: `sso:${p.issuer}`, kind: 'system' as const };
    const user = await this.db.transaction().execute(async (trx) => {
      const now = this.opts.clock();
      if (p.existing) {
        // the address follows the IdP too when the IdP verified it, unless another account already has it
        const email = p.email !== p.existing.email && p.emailVerified && !(await this.users.byEmail(p.email, trx)) ? p.email : p.existing.email;
        const u = (await this.users.update(p.existing.id, { role: p.role, name: p.name, email, last_login_at: now }, trx))!;
        if (u.role !== p.existing.role || u.email !== p.existing.email) {
          records.push(await this.audit.record({ tenantId: u.tenant_id, action: 'user.changed', actor: system, subject: { type: 'user', id: u.id },
            details: { method: 'oidc', ...(u.role !== p.existing.role && { role: { from: p.existing.role, to: u.role } }), ...(u.email !== p.existing.email && { email: { from: p.existing.email, to: u.email } }) } }, trx));
        }
        return u;
      }
      if (p.link) {
        // from now on the IdP decides: the local password and any open invitation stop working
        const u = (await this.users.update(p.link.id, {
          oidc_issuer: p.issuer, oidc_subject: p.sub, role: p.role, name: p.name, password_hash: null, invite_token_hash: null, invite_expires_at: null, last_login_at: now,
        }, trx))!;
        records.push(await this.audit.record({ tenantId: u.tenant_id, action: 'user.changed', actor: system, subject: { type: 'user', id: u.id },
          details: { method: 'oidc', linked: true, role: { from: p.link.role, to: u.role } } }, trx));
        return u;
      }
      const u = await this.users.insert({
        tenant_id: p.tenant.id, email: p.email, name: p.name, role: p.role, oidc_issuer: p.issuer, oidc_subject: p.sub, created_by: system.name, last_login_at: now,
      }, trx);
      records.push(await this.audit.record({ tenantId: u.tenant_id, action: 'user.created', actor: system, subject: { type: 'user', id: u.id }, details: { method: 'oidc', role: u.role } }, trx));
      return u;
    });
    for (const r of records) this.audit.anchor(r);
    return user;
  }
}

/** The service when single sign-on is configured (ERNSTFALL_OIDC_ISSUER), else undefined. */
export function createOidcService(c: Container): OidcService | undefined {
  const { oidc: cfg, secretKey } = c.config.auth;
  if (!cfg || !c.config.http.publicUrl) return undefined;
  return new OidcService(c.db, c.sessions, c.audit, cfg, c.config.http.publicUrl, { secretKey, log: c.log.child({ component: 'oidc' }), clock: c.clock });
}
