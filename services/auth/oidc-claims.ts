import type { Role } from '../../db/schema.js';

/**
 * Reading ernstfall's view of a person out of OpenID Connect claims. Pure
 * functions: what the IdP says in, role/tenant/e-mail out.
 */

/** Which mapped role wins when a person is in several mapped groups (decision 008): the one that may do more. */
export const ROLE_RANK: readonly Role[] = ['admin', 'reviewer', 'operator', 'auditor'];

type Claims = Record<string, unknown>;

/**
 * A claim by name; a dotted name that is not itself a claim walks into
 * objects (Keycloak's realm roles sit in `realm_access.roles`). Entra ID's
 * URI-shaped claim names contain dots too: the exact name is tried first.
 */
export function claimAt(claims: Claims, name: string): unknown {
  if (name in claims) return claims[name];
  let cur: unknown = claims;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Claims)[part];
  }
  return cur;
}

/** The values of a group/role claim: a list, or one string separated by spaces or commas. */
export function claimValues(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string | number => typeof v === 'string' || typeof v === 'number').map(String).map((s) => s.trim()).filter(Boolean);
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** The highest ernstfall role any of the values maps to, or undefined (no access). */
export function mapRole(values: string[], roleMap: Record<string, Role>): Role | undefined {
  const mapped = new Set(values.map((v) => roleMap[v]).filter((r): r is Role => r !== undefined));
  return ROLE_RANK.find((r) => mapped.has(r));
}

/** The e-mail address: `email`, else `preferred_username`/`upn` when they are addresses (Entra ID often sends no `email`). */
export function emailOf(claims: Claims): string | undefined {
  for (const name of ['email', 'preferred_username', 'upn']) {
    const v = claims[name];
    if (typeof v === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim()) && v.length <= 254) return v.trim().toLowerCase();
  }
  return undefined;
}

/**
 * The address the IdP vouches for: the `email` claim, and only when `email_verified` is true (boolean, or the string
 * "true" some IdPs send). Never `preferred_username`/`upn`: they are login names, which many IdPs let anyone choose or
 * an administrator set to any address. Only this address may link an existing local account (decision 008).
 */
export function verifiedEmailOf(claims: Claims): string | undefined {
  const verified = claims.email_verified === true || claims.email_verified === 'true';
  const v = claims.email;
  if (!verified || typeof v !== 'string' || v.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim())) return undefined;
  return v.trim().toLowerCase();
}

/** A display name, at most 200 characters. */
export function nameOf(claims: Claims, email: string): string {
  const str = (k: string) => (typeof claims[k] === 'string' ? (claims[k] as string).trim() : '');
  const name = str('name') || [str('given_name'), str('family_name')].filter(Boolean).join(' ') || email;
  return name.slice(0, 200);
}

/** The authentication methods the IdP reports (`amr`, RFC 8176). */
export function amrOf(claims: Claims): string[] {
  return claimValues(claims.amr);
}
