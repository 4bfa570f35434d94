import { describe, expect, it } from 'vitest';
import { amrOf, claimAt, claimValues, emailOf, mapRole, nameOf } from '../../services/auth/oidc-claims.js';
import { safeNext } from '../../services/auth/oidc.service.js';

const map = { 'ef-admins': 'admin', 'ef-ops': 'operator', 'ef-review': 'reviewer', 'ef-audit': 'auditor', '/ernstfall/pruefer': 'reviewer' } as const;

describe('OIDC claims', () => {
  it('reads lists and space/comma separated strings', () => {
    expect(claimValues(['a', ' b ', 3, null, {}])).toEqual(['a', 'b', '3']);
    expect(claimValues('a b,c , d')).toEqual(['a', 'b', 'c', 'd']);
    expect(claimValues(undefined)).toEqual([]);
    expect(claimValues({ roles: ['x'] })).toEqual([]);
  });

  it('walks dotted names (Keycloak realm_access.roles), exact names first (Entra URI claims)', () => {
    expect(claimAt({ realm_access: { roles: ['ef-ops'] } }, 'realm_access.roles')).toEqual(['ef-ops']);
    expect(claimAt({ 'http://schemas.example/claims/groups': ['g'] }, 'http://schemas.example/claims/groups')).toEqual(['g']);
    expect(claimAt({ a: 'x' }, 'a.b')).toBeUndefined();
  });

  it('maps to the highest role; nothing mapped = no access', () => {
    expect(mapRole(['ef-audit', 'ef-ops', 'ef-review'], map)).toBe('reviewer');
    expect(mapRole(['ef-ops', 'ef-admins'], map)).toBe('admin');
    expect(mapRole(['ef-audit', 'ef-ops'], map)).toBe('operator');
    expect(mapRole(['/ernstfall/pruefer'], map)).toBe('reviewer');
    expect(mapRole(['EF-ADMINS', 'staff'], map)).toBeUndefined();
    expect(mapRole([], map)).toBeUndefined();
  });

  it('e-mail from email, else an address-shaped preferred_username/upn; lowercased', () => {
    expect(emailOf({ email: ' Anna@Stadt.DE ' })).toBe('anna@stadt.de');
    expect(emailOf({ preferred_username: 'Anna@stadt.de' })).toBe('anna@stadt.de');
    expect(emailOf({ preferred_username: 'anna', upn: 'anna@stadt.de' })).toBe('anna@stadt.de');
    expect(emailOf({ preferred_username: 'anna' })).toBeUndefined();
  });

  it('names and amr', () => {
    expect(nameOf({ given_name: 'Anna', family_name: 'Amt' }, 'a@b.de')).toBe('Anna Amt');
    expect(nameOf({}, 'a@b.de')).toBe('a@b.de');
    expect(amrOf({ amr: ['pwd', 'otp'] })).toEqual(['pwd', 'otp']);
    expect(amrOf({})).toEqual([]);
  });

  it('next: only same-site relative paths', () => {
    expect(safeNext('/plans/x?tab=runs')).toBe('/plans/x?tab=runs');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'plans', '/a b', '/a\r\nSet-Cookie: x', '/auth/oidc/start', undefined, 42]) {
      expect(safeNext(bad)).toBe('/');
    }
  });
});
