import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { isProviderAdmin, type TenantService } from '../../auth/tenant.service.js';
import { SESSION_COOKIE, type SessionService } from '../../auth/session.service.js';
import { Forbidden, Unauthorized } from '../../errors.js';
import { GrantSchema, InvitationSchema, NewUserBody, TenantRole, TenantSchema, errorRef } from '../account-schemas.js';

const ctx = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

/** Before the body: a provider admin (inside or outside a tenant) or the bootstrap token. */
async function providerOrBootstrap(req: FastifyRequest): Promise<void> {
  const p = req.principal;
  if (!p) throw new Unauthorized();
  if (p.kind !== 'bootstrap' && !isProviderAdmin(p)) throw new Forbidden('this needs a provider admin');
}

/** Before the body: the tenant's own admin (a provider admin inside by a grant may not change grants). */
async function tenantAdmin(req: FastifyRequest): Promise<void> {
  const p = req.principal;
  if (!p) throw new Unauthorized();
  if (isProviderAdmin(p)) throw new Forbidden('grants are given by the tenant\'s own admins');
  if (p.role !== 'admin') throw new Forbidden(`this needs the role admin; you have ${p.role}`);
}

/** A provider admin's browser session (entering a tenant changes the session). */
function providerSession(req: FastifyRequest) {
  const live = req.principal?.session;
  if (!live) throw new Unauthorized('this needs a browser session of a provider admin');
  if (live.user.role !== 'provider-admin') throw new Forbidden('only provider admins enter tenants');
  return live;
}

/**
 * The service provider's administration: first set-up, tenants, grants (a
 * tenant lets its provider in, with a role, for a time), and entering a tenant
 * by its grant.
 */
/** Before the body is looked at: anyone but the bootstrap token is refused (403, not a 400 about the body). */
async function onlyBootstrap(req: FastifyRequest) {
  if (req.principal?.kind !== 'bootstrap') throw new Forbidden('only the bootstrap token (ERNSTFALL_BOOTSTRAP_TOKEN) may set up the first provider admin');
}

/** A provider admin's own session, also while acting in a tenant with the grant's role. */
async function onlyProviderUser(req: FastifyRequest) {
  if (req.principal?.session?.user.role !== 'provider-admin') throw new Forbidden('only for provider admins, in a browser session');
}

export async function providerRoutes(base: FastifyInstance, opts: { tenants: TenantService; sessions: SessionService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const reissue = async (reply: FastifyReply, token: string): Promise<string> => {
    reply.setCookie(SESSION_COOKIE, token, opts.sessions.cookieOptions());
    const live = await opts.sessions.resolve(token);
    if (!live) throw new Unauthorized('the session ended');
    return live.session.csrf_token;
  };

  app.post('/setup/provider-admin', {
    preValidation: onlyBootstrap,
    schema: {
      tags: ['provider'], summary: 'First set-up: invite the first provider admin (bootstrap token only, only while there is none)',
      body: NewUserBody,
      response: { 201: InvitationSchema, 403: errorRef, 409: errorRef },
    },
  }, async (req, reply) => reply.status(201).send(await opts.tenants.setupProviderAdmin(req.principal!, req.body, ctx(req))));

  app.get('/tenants', {
    config: { provider: true },
    preValidation: providerOrBootstrap,
    schema: { tags: ['provider'], summary: 'Tenants, each with the grant in force (if any)', response: { 200: Type.Object({ items: Type.Array(TenantSchema) }), 403: errorRef } },
  }, async (req) => ({ items: await opts.tenants.listTenants(req.principal!) }));

  app.post('/tenants', {
    config: { provider: true },
    preValidation: providerOrBootstrap,
    schema: {
      tags: ['provider'], summary: 'Create a tenant with its first admin (invited; the link is shown only now)',
      body: Type.Object({
        slug: Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z0-9-]+$' }),
        name: Type.String({ minLength: 1, maxLength: 200 }),
        firstAdmin: NewUserBody,
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ tenant: TenantSchema, invitation: InvitationSchema }), 400: errorRef, 403: errorRef, 409: errorRef },
    },
  }, async (req, reply) => reply.status(201).send(await opts.tenants.createTenant(req.principal!, req.body, ctx(req))));

  app.patch('/tenants/:id', {
    config: { provider: true },
    preValidation: providerOrBootstrap,
    schema: {
      tags: ['provider'], summary: 'Rename or disable a tenant (disabled: nobody signs in, its sessions end, its API tokens stop working)',
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      body: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: TenantSchema, 403: errorRef, 404: errorRef },
    },
  }, async (req) => opts.tenants.changeTenant(req.principal!, req.params.id, req.body, ctx(req)));

  app.post('/grants', {
    preValidation: tenantAdmin,
    schema: {
      tags: ['provider'], summary: 'Let the service provider\'s admins into this tenant with a role until expiresAt (at most 90 days); replaces a grant in force',
      body: Type.Object({
        role: TenantRole,
        reason: Type.String({ minLength: 3, maxLength: 500 }),
        expiresAt: Type.String({ format: 'date-time' }),
      }, { additionalProperties: false }),
      response: { 201: GrantSchema, 400: errorRef, 403: errorRef },
    },
  }, async (req, reply) => reply.status(201).send(await opts.tenants.createGrant(req.principal!, req.body, ctx(req))));

  app.get('/grants', {
    config: { provider: true },
    schema: { tags: ['provider'], summary: 'Tenant admins: this tenant\'s grants (also past ones); provider admins: the grants in force across tenants', response: { 200: Type.Object({ items: Type.Array(GrantSchema) }), 403: errorRef } },
  }, async (req) => ({ items: await opts.tenants.listGrants(req.principal!) }));

  app.delete('/grants/:id', {
    preValidation: tenantAdmin,
    schema: {
      tags: ['provider'], summary: 'Revoke a grant; effective with the provider\'s next request',
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      response: { 204: Type.Null(), 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => {
    await opts.tenants.revokeGrant(req.principal!, req.params.id, ctx(req));
    return reply.status(204).send(null);
  });

  app.post('/provider/enter', {
    config: { provider: true },
    preValidation: onlyProviderUser,
    schema: {
      tags: ['provider'], summary: 'A provider admin enters a tenant that granted access (404 otherwise); the session then acts there with the grant\'s role',
      body: Type.Object({ tenantId: Type.String({ format: 'uuid' }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ tenant: TenantSchema, role: TenantRole, csrfToken: Type.String() }), 401: errorRef, 403: errorRef, 404: errorRef },
    },
  }, async (req, reply) => {
    const r = await opts.tenants.enterTenant(providerSession(req), req.body.tenantId, ctx(req));
    return { tenant: r.tenant, role: r.role, csrfToken: await reissue(reply, r.token) };
  });

  app.post('/provider/leave', {
    config: { provider: true },
    preValidation: onlyProviderUser,
    schema: { tags: ['provider'], summary: 'Leave the tenant: back to the provider\'s own view', response: { 200: Type.Object({ csrfToken: Type.String() }), 401: errorRef, 403: errorRef } },
  }, async (req, reply) => {
    const r = await opts.tenants.leaveTenant(providerSession(req), ctx(req));
    return { csrfToken: await reissue(reply, r.token) };
  });
}
