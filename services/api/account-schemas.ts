import { Type, type TSchema } from '@sinclair/typebox';

/** Response and body schemas shared by the account, user and provider routes. */
export const errorRef = { $ref: 'Error#' };
export const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const TenantRole = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('reviewer'), Type.Literal('auditor')]);
export const AnyRole = Type.Union([TenantRole, Type.Literal('provider-admin')]);
export const Stage = Type.Union([Type.Literal('password'), Type.Literal('enrol'), Type.Literal('full')]);

export const UserViewSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.String(),
  role: AnyRole,
  tenantId: nullable(Type.String({ format: 'uuid' })),
  mfa: Type.Boolean({ description: 'a second factor (TOTP) is set up' }),
  sso: Type.Boolean({ description: 'signs in by single sign-on' }),
  disabled: Type.Boolean(),
  locked: Type.Boolean({ description: 'locked for now after failed attempts' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastLoginAt: nullable(Type.String({ format: 'date-time' })),
});

export const InvitationSchema = Type.Object({
  user: UserViewSchema,
  inviteUrl: Type.String({ description: 'one-time link to set a password; shown only now' }),
  inviteToken: Type.String({ description: 'the secret in the link; shown only now, stored only as SHA-256' }),
  expiresAt: Type.String({ format: 'date-time' }),
});

export const GrantSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenantId: Type.String({ format: 'uuid' }),
  tenantSlug: Type.String(),
  tenantName: Type.String(),
  role: TenantRole,
  reason: Type.String(),
  grantedBy: Type.String(),
  grantedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  revokedAt: nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
});

export const TenantSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  disabled: Type.Boolean(),
  grant: nullable(Type.Object({ id: Type.String({ format: 'uuid' }), role: TenantRole, expiresAt: Type.String({ format: 'date-time' }) })),
});

export const NewUserBody = Type.Object({
  email: Type.String({ format: 'email', maxLength: 200 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
}, { additionalProperties: false });
