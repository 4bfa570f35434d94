import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { actsByGrant, type AccountService } from '../../auth/account.service.js';
import { Forbidden, Unauthorized } from '../../errors.js';
import { AnyRole, InvitationSchema, NewUserBody, TenantRole, UserViewSchema, errorRef } from '../account-schemas.js';

/** Before the body is looked at: a tenant's admin, or a provider admin outside every tenant (who manages the provider's admins). */
async function adminOrProvider(req: FastifyRequest): Promise<void> {
  const p = req.principal;
  if (!p) throw new Unauthorized();
  if (p.role !== 'admin' && p.role !== 'provider-admin') throw new Forbidden(`this needs the role admin; you have ${p.role}`);
}

/** Inviting, before the body is looked at: a provider admin inside a tenant by its grant may not (the account would outlive the grant). */
async function inviter(req: FastifyRequest): Promise<void> {
  await adminOrProvider(req);
  if (actsByGrant(req.principal!)) throw new Forbidden('only the tenant\'s own admins invite users: a provider admin acting by a grant cannot (the account would outlive the grant)');
}

/** Users of the tenant (or, for provider admins outside a tenant, the provider's admins): list, invite, change. */
export async function userRoutes(base: FastifyInstance, opts: { accounts: AccountService }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const ctx = (req: FastifyRequest) => ({ ip: req.ip, userAgent: req.headers['user-agent'] });

  app.get('/users', {
    config: { provider: true },
    preValidation: adminOrProvider,
    schema: { tags: ['users'], summary: 'Users of the tenant (provider admins outside a tenant: the provider admins)', response: { 200: Type.Object({ items: Type.Array(UserViewSchema) }), 403: errorRef } },
  }, async (req) => ({ items: await opts.accounts.listUsers(req.principal!) }));

  app.post('/users', {
    config: { provider: true },
    preValidation: inviter,
    schema: {
      tags: ['users'], summary: 'Invite a user: returns a one-time link (72 h) to set a password, shown only now (not by a provider admin acting by a grant: 403)',
      body: Type.Object({ ...NewUserBody.properties, role: AnyRole }, { additionalProperties: false }),
      response: { 201: InvitationSchema, 400: errorRef, 403: errorRef, 409: errorRef },
    },
  }, async (req, reply) => reply.status(201).send(await opts.accounts.invite(req.principal!, req.body, ctx(req))));

  app.patch('/users/:id', {
    config: { provider: true },
    preValidation: adminOrProvider,
    schema: {
      tags: ['users'], summary: 'Change a user: name, role, disable/enable (ends their sessions; their API tokens stop working), reset the second factor (a provider admin acting by a grant may not make admins or reset second factors: 403)',
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      body: Type.Object({
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        role: Type.Optional(TenantRole),
        disabled: Type.Optional(Type.Boolean()),
        resetMfa: Type.Optional(Type.Boolean({ description: 'the user sets up a new authenticator app at the next sign-in' })),
      }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: UserViewSchema, 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req) => opts.accounts.changeUser(req.principal!, req.params.id, req.body, ctx(req)));
}
