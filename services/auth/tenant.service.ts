import type { Clock } from '../clock.js';
import type { Kysely } from 'kysely';
import type { DB, Role } from '../../db/schema.js';
import type { GrantWithTenant, TenantRow } from '../../db/repositories/provider.repository.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { AuditService } from '../audit/audit.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import { Conflict, Forbidden, Invalid, NotFound } from '../errors.js';
import type { Principal } from './principal.js';
import { actorOf } from './principal.js';
import type { LiveSession, SessionService } from './session.service.js';
import type { AccountService } from './account.service.js';
import type { Invitation, RequestContext } from './account.types.js';

export const GRANT_MAX_DAYS = 90;
/** Lower-case letters, digits and dashes; `_provider` and the like stay reserved. */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

export interface TenantView {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
  disabled: boolean;
  /** the grant in force by which provider admins may enter, if any */
  grant: { id: string; role: Role; expiresAt: string } | null;
}

export interface GrantView {
  id: string;
  tenantId: string;
  tenantSlug: string;
  tenantName: string;
  role: Role;
  reason: string;
  grantedBy: string;
  grantedAt: string;
  expiresAt: string;
  revokedAt: string | null;
  active: boolean;
}

const tenantView = (t: TenantRow, grant: TenantView['grant'] = null): TenantView => ({
  id: t.id, slug: t.slug, name: t.name, createdAt: t.created_at.toISOString(), disabled: t.disabled_at !== null, grant,
});

/** A provider admin: outside every tenant, or inside one by its grant. */
export const isProviderAdmin = (p: Principal) => p.role === 'provider-admin' || p.session?.user.role === 'provider-admin';

/**
 * The service provider's side (issue #5): tenants, the grants by which a
 * tenant lets its provider in, and provider admins entering a tenant. A
 * provider admin sees nothing of a tenant without the tenant's grant; the
 * grant is checked again on every request (SessionService.resolve).
 */
export class TenantService {
  readonly repo: Repositories['providers'];
  private readonly accountRepo: Repositories['accounts'];
  private readonly clock: Clock;

  constructor(
    private readonly db: Kysely<DB>,
    repos: Pick<Repositories, 'providers' | 'accounts'>,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly accounts: AccountService,
    opts: { clock: Clock },
  ) {
    this.repo = repos.providers;
    this.accountRepo = repos.accounts;
    this.clock = opts.clock;
  }

  private static providerOnly(by: Principal): void {
    if (by.kind !== 'bootstrap' && !isProviderAdmin(by)) throw new Forbidden('this needs a provider admin');
  }

  /** The first provider admin, invited with the bootstrap token while there is none. */
  async setupProviderAdmin(by: Principal, input: { email: string; name: string }, ctx: RequestContext): Promise<Invitation> {
    if (by.kind !== 'bootstrap') throw new Forbidden('only the bootstrap token (ERNSTFALL_BOOTSTRAP_TOKEN) sets up the first provider admin');
    const { invitation, rec } = await this.db.transaction().execute(async (trx) => {
      await this.accountRepo.setupLock(trx);
      // an invitation that was never accepted does not count: the bootstrap token may send it again
      if ((await this.accountRepo.enabledAdminsForUpdate(null, trx)).length) throw new Conflict('a provider admin exists already: provider admins invite further ones');
      const r = await this.accounts.createInvited(trx, { tenantId: null, email: input.email, name: input.name, role: 'provider-admin', createdBy: by.name });
      const rec = await this.audit.record({ tenantId: null, action: 'user.created', actor: actorOf(by), subject: { type: 'user', id: r.user.id }, details: { email: r.user.email, role: 'provider-admin', invited: true, firstProviderAdmin: true }, ip: ctx.ip }, trx);
      return { ...r, rec };
    });
    this.audit.anchor(rec);
    return invitation;
  }

  async createTenant(by: Principal, input: { slug: string; name: string; firstAdmin: { email: string; name: string } }, ctx: RequestContext): Promise<{ tenant: TenantView; invitation: Invitation }> {
    TenantService.providerOnly(by);
    const slug = input.slug.trim().toLowerCase();
    if (!SLUG.test(slug)) throw new Invalid('invalid tenant', [{ path: 'slug', message: 'lower-case letters, digits and dashes, 1-40 characters' }]);
    const { tenant, invitation, recs } = await this.db.transaction().execute(async (trx) => {
      if (await this.repo.slugTaken(slug, trx)) throw new Conflict(`a tenant with the slug ${slug} exists already`);
      const tenant = await this.repo.insertTenant({ slug, name: input.name.trim() }, trx);
      const r = await this.accounts.createInvited(trx, { tenantId: tenant.id, email: input.firstAdmin.email, name: input.firstAdmin.name, role: 'admin', createdBy: by.name });
      // the tenant's own chain starts with its creation: whoever audits the tenant sees who set it up
      const actor = actorOf(by);
      const recs = [
        await this.audit.record({ tenantId: tenant.id, action: 'tenant.created', actor, subject: { type: 'tenant', id: tenant.id }, details: { slug, name: tenant.name, firstAdmin: r.user.email }, ip: ctx.ip }, trx),
        await this.audit.record({ tenantId: tenant.id, action: 'user.created', actor, subject: { type: 'user', id: r.user.id }, details: { email: r.user.email, role: 'admin', invited: true }, ip: ctx.ip }, trx),
      ];
      return { tenant, invitation: r.invitation, recs };
    });
    recs.forEach((r) => this.audit.anchor(r));
    return { tenant: tenantView(tenant), invitation };
  }

  async listTenants(by: Principal): Promise<TenantView[]> {
    TenantService.providerOnly(by);
    return (await this.repo.listTenants()).map((t) => tenantView(t, t.grant_id ? { id: t.grant_id, role: t.grant_role!, expiresAt: t.grant_expires_at!.toISOString() } : null));
  }

  async changeTenant(by: Principal, id: string, patch: { name?: string; disabled?: boolean }, ctx: RequestContext): Promise<TenantView> {
    TenantService.providerOnly(by);
    const { tenant, rec } = await this.db.transaction().execute(async (trx) => {
      const before = await this.repo.tenant(id, trx);
      if (!before) throw new NotFound(`tenant ${id}`);
      const set: { name?: string; disabled_at?: Date | null } = {};
      const details: Record<string, unknown> = {};
      if (patch.name !== undefined && patch.name.trim() !== before.name) { set.name = patch.name.trim(); details.name = { from: before.name, to: set.name }; }
      if (patch.disabled !== undefined && patch.disabled !== (before.disabled_at !== null)) { set.disabled_at = patch.disabled ? this.clock() : null; details.disabled = patch.disabled; }
      if (!Object.keys(set).length) return { tenant: before };
      const tenant = (await this.repo.updateTenant(id, set, trx))!;
      // a disabled tenant: nobody stays signed in to it (its API tokens stop working too, see TokenRepository.byHash)
      if (set.disabled_at) await this.repo.endTenantSessions(id, trx);
      return { tenant, rec: await this.audit.record({ tenantId: id, action: 'tenant.changed', actor: actorOf(by), subject: { type: 'tenant', id }, details, ip: ctx.ip }, trx) };
    });
    if (rec) this.audit.anchor(rec);
    return tenantView(tenant);
  }

  // ---- grants -------------------------------------------------------------------------------------

  /** A tenant's own admin (never a provider admin acting by a grant: a grant cannot extend itself). */
  private static tenantAdmin(by: Principal): string {
    if (isProviderAdmin(by)) throw new Forbidden('grants are given by the tenant\'s own admins');
    if (by.role !== 'admin' || !by.tenantId) throw new Forbidden(`this needs the role admin; you have ${by.role}`);
    return by.tenantId;
  }

  /** Lets the provider's admins into the tenant with a role until expiresAt; replaces a grant in force. */
  async createGrant(by: Principal, input: { role: Role; reason: string; expiresAt: string }, ctx: RequestContext): Promise<GrantView> {
    const tenantId = TenantService.tenantAdmin(by);
    const expiresAt = new Date(input.expiresAt);
    const now = this.clock();
    if (Number.isNaN(expiresAt.getTime()) || expiresAt <= now || expiresAt.getTime() - now.getTime() > GRANT_MAX_DAYS * 86_400_000) {
      throw new Invalid('invalid grant', [{ path: 'expiresAt', message: `must be in the future and at most ${GRANT_MAX_DAYS} days ahead` }]);
    }
    const { grant, recs } = await this.db.transaction().execute(async (trx) => {
      const actor = actorOf(by);
      const recs: LedgerRecord[] = [];
      const replaced = await this.repo.revokeActiveGrants(tenantId, trx);
      for (const id of replaced) recs.push(await this.audit.record({ tenantId, action: 'grant.revoked', actor, subject: { type: 'grant', id }, details: { replaced: true }, ip: ctx.ip }, trx));
      // whoever is inside enters again under the new grant (and is recorded doing so)
      await this.repo.leaveTenantSessions(tenantId, trx);
      const grant = await this.repo.insertGrant({ tenantId, role: input.role, reason: input.reason.trim(), grantedBy: by.name, expiresAt }, trx);
      recs.push(await this.audit.record({ tenantId, action: 'grant.created', actor, subject: { type: 'grant', id: grant.id }, details: { role: grant.role, reason: grant.reason, expiresAt: grant.expires_at.toISOString() }, ip: ctx.ip }, trx));
      return { grant, recs };
    });
    recs.forEach((r) => this.audit.anchor(r));
    const t = (await this.repo.tenant(tenantId))!;
    return grantView({ ...grant, tenant_slug: t.slug, tenant_name: t.name }, now);
  }

  async revokeGrant(by: Principal, id: string, ctx: RequestContext): Promise<void> {
    const tenantId = TenantService.tenantAdmin(by);
    const rec = await this.db.transaction().execute(async (trx) => {
      const g = await this.repo.grant(tenantId, id, trx);
      if (!g) throw new NotFound(`grant ${id}`);
      if (!(await this.repo.revokeGrant(id, trx))) throw new Conflict('this grant is revoked already');
      // effective at once: the next request of an admin inside finds no grant (SessionService.resolve); sessions leave the tenant
      await this.repo.leaveTenantSessions(tenantId, trx);
      return this.audit.record({ tenantId, action: 'grant.revoked', actor: actorOf(by), subject: { type: 'grant', id }, details: { role: g.role }, ip: ctx.ip }, trx);
    });
    this.audit.anchor(rec);
  }

  /** A tenant admin: the tenant's grants (also past ones); a provider admin: the grants in force across tenants. */
  async listGrants(by: Principal): Promise<GrantView[]> {
    const now = this.clock();
    if (isProviderAdmin(by)) return (await this.repo.activeGrants()).map((g) => grantView(g, now));
    return (await this.repo.grantsOf(TenantService.tenantAdmin(by))).map((g) => grantView(g, now));
  }

  // ---- entering a tenant --------------------------------------------------------------------------

  /** A provider admin enters a tenant that granted access (404 otherwise); returns the new session token. */
  async enterTenant(live: LiveSession, tenantId: string, ctx: RequestContext = {}): Promise<{ token: string; tenant: TenantView; role: Role }> {
    if (live.user.role !== 'provider-admin') throw new Forbidden('only provider admins enter tenants');
    const tenant = await this.repo.tenant(tenantId);
    const grant = tenant && !tenant.disabled_at ? await this.sessions.activeGrant(tenantId) : undefined;
    // no grant looks exactly like no tenant: the provider learns nothing about tenants that did not let it in
    if (!tenant || !grant) throw new NotFound(`tenant ${tenantId}`);
    const token = await this.sessions.advance(live.session, { actingTenantId: tenantId });
    await this.audit.record({ tenantId, action: 'provider.entered-tenant', actor: { name: live.user.email, kind: 'session', userId: live.user.id, viaProviderGrant: true }, subject: { type: 'grant', id: grant.id }, details: { role: grant.role }, ip: ctx.ip });
    return { token, tenant: tenantView(tenant, { id: grant.id, role: grant.role, expiresAt: grant.expires_at.toISOString() }), role: grant.role };
  }

  async leaveTenant(live: LiveSession, ctx: RequestContext = {}): Promise<{ token: string }> {
    if (live.user.role !== 'provider-admin') throw new Forbidden('only provider admins enter and leave tenants');
    const was = live.session.acting_tenant_id;
    const token = await this.sessions.advance(live.session, { actingTenantId: null });
    if (was) await this.audit.record({ tenantId: was, action: 'provider.left-tenant', actor: { name: live.user.email, kind: 'session', userId: live.user.id, viaProviderGrant: true }, subject: { type: 'tenant', id: was }, ip: ctx.ip });
    return { token };
  }
}

function grantView(g: GrantWithTenant, now: Date): GrantView {
  return {
    id: g.id, tenantId: g.tenant_id, tenantSlug: g.tenant_slug, tenantName: g.tenant_name, role: g.role, reason: g.reason,
    grantedBy: g.granted_by, grantedAt: g.granted_at.toISOString(), expiresAt: g.expires_at.toISOString(),
    revokedAt: g.revoked_at?.toISOString() ?? null, active: g.revoked_at === null && g.expires_at > now,
  };
}
